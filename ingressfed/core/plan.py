"""Plan: the changes that turn the zone's current record sets into the desired ones.

A purely computational function. It only ever touches names the owner owns
(a ``_ingressfed.<name>`` TXT companion naming ``owner_id``) or names that are
entirely free; everything else is reported as a conflict and left alone.
Changes come grouped by name, in a safe order inside each group, so a
provider that must split a plan into batches can keep each name whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ingressfed.core.desired import Desired
from ingressfed.core.ownership import (
    companion,
    companion_name,
    is_companion_name,
    owned_name,
    owned_names,
    parse_owner,
)
from ingressfed.model import ADDRESS_TYPES, Change, ChangeAction, Changes, Policy, RecordSet, RecordType

__all__ = ["Conflict", "Plan", "plan"]


@dataclass(frozen=True, slots=True)
class Conflict:
    name: str
    reason: str
    resource: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    changes: Changes
    conflicts: tuple[Conflict, ...] = ()


def _allowed(action: ChangeAction, policy: Policy) -> bool:
    if policy is Policy.SYNC:
        return True
    if policy is Policy.UPSERT_ONLY:
        return action is not ChangeAction.DELETE
    return action is ChangeAction.CREATE


def _conflicts_with_cname(a: RecordType, b: RecordType) -> bool:
    return (a is RecordType.CNAME) != (b is RecordType.CNAME)


def _name_changes(
    cur: list[RecordSet], want: list[RecordSet]
) -> tuple[list[Change], list[Change], list[Change]]:
    """Deletes, updates, creates among one name's address record sets."""
    cur_by_key = {rs.key: rs for rs in cur}
    want_by_key = {rs.key: rs for rs in want}
    stale = [rs for k, rs in sorted(cur_by_key.items(), key=_key_order) if k not in want_by_key]
    updates: list[Change] = []
    creates: list[Change] = []
    for key, rs in sorted(want_by_key.items(), key=_key_order):
        old = cur_by_key.get(key)
        if old is not None:
            if old != rs:
                updates.append(Change(ChangeAction.UPDATE, old=old, new=rs))
            continue
        # A set of a type that excludes a stale one at the same identifier replaces
        # it in one change (A -> CNAME), instead of a delete and a create.
        swap = next(
            (
                s
                for s in stale
                if s.set_identifier == rs.set_identifier and _conflicts_with_cname(s.type, rs.type)
            ),
            None,
        )
        if swap is not None:
            stale.remove(swap)
            updates.append(Change(ChangeAction.UPDATE, old=swap, new=rs))
        else:
            creates.append(Change(ChangeAction.CREATE, new=rs))
    deletes = [Change(ChangeAction.DELETE, old=rs) for rs in stale]
    return deletes, updates, creates


def _key_order(item: tuple[tuple[str, RecordType, str | None], RecordSet]) -> tuple[str, str, str]:
    (name, rtype, ident), _ = item
    return (name, rtype.value, ident or "")


def _valid_end_state(sets: list[RecordSet]) -> bool:
    """CNAME may not share a name (and identifier) with any other data."""
    by_ident: dict[str | None, set[RecordType]] = defaultdict(set)
    for rs in sets:
        by_ident[rs.set_identifier].add(rs.type)
    types_all = {t for ts in by_ident.values() for t in ts}
    return RecordType.CNAME not in types_all or len(types_all) == 1


def plan(
    current: Sequence[RecordSet],
    desired: Sequence[Desired],
    *,
    owner_id: str,
    policy: Policy = Policy.SYNC,
) -> Plan:
    want_by_name: dict[str, list[RecordSet]] = defaultdict(list)
    resource_of: dict[str, str] = {}
    for d in desired:
        want_by_name[d.record.name].append(d.record)
        resource_of.setdefault(d.record.name, d.resource)
    # Only names whose record sets differ between zone and desire (companions included) can
    # need work; at 100k+ sets that is a set difference instead of a walk over every name.
    want_all = {d.record for d in desired}
    for name, sets in want_by_name.items():
        want_all.add(
            companion(name, owner_id=owner_id, resource=resource_of[name], ttl=min(r.ttl for r in sets))
        )
    cur_all_set = set(current)
    touched = {_base(rs.name) for rs in cur_all_set.symmetric_difference(want_all)}
    cur_by_name: dict[str, list[RecordSet]] = defaultdict(list)
    companions: dict[str, RecordSet] = {}
    for rs in current:
        if rs.name in touched:
            cur_by_name[rs.name].append(rs)
        elif rs.type is RecordType.TXT and is_companion_name(rs.name) and owned_name(rs.name) in touched:
            companions[rs.name] = rs
    owned = owned_names(companions.values(), owner_id)

    items: list[Change] = []
    conflicts: list[Conflict] = []
    for name in sorted(touched & (want_by_name.keys() | owned.keys())):
        want = want_by_name.get(name, [])
        resource = resource_of.get(name, owned.get(name, ""))
        cur_all = cur_by_name.get(name, [])
        managed = _CHALLENGE_TYPES if resource.startswith(CHALLENGE_RESOURCE) else ADDRESS_TYPES
        cur = [rs for rs in cur_all if rs.type in managed]
        others = [rs for rs in cur_all if rs.type not in managed]
        comp_cur = companions.get(companion_name(name))
        ours = name in owned

        if not ours:
            reason = None
            if cur:
                reason = "record sets exist here that ingressfed does not own; left untouched"
            elif comp_cur is not None:
                own = next((o for o in map(parse_owner, comp_cur.values) if o), None)
                who = own.owner if own else "someone else"
                reason = f"the name is owned by {who}; left untouched"
            if reason:
                conflicts.append(Conflict(name, reason, resource))
                continue

        if any(rs.type is RecordType.CNAME for rs in want) and others:
            conflicts.append(
                Conflict(name, "a CNAME cannot share a name with other record types present here", resource)
            )
            continue

        deletes, updates, creates = _name_changes(cur, want)
        comp_changes_first: list[Change] = []
        comp_changes_last: list[Change] = []
        if want:
            ttl = min(rs.ttl for rs in want)
            comp_want = companion(name, owner_id=owner_id, resource=resource, ttl=ttl)
            if comp_cur is None:
                comp_changes_first.append(Change(ChangeAction.CREATE, new=comp_want))
            elif comp_cur != comp_want:
                comp_changes_first.append(Change(ChangeAction.UPDATE, old=comp_cur, new=comp_want))
        elif comp_cur is not None:
            comp_changes_last.append(Change(ChangeAction.DELETE, old=comp_cur))

        group = comp_changes_first + deletes + updates + creates + comp_changes_last
        allowed = [c for c in group if _allowed(c.action, policy)]
        if len(allowed) != len(group):
            end = _end_state(cur, allowed)
            if not _valid_end_state(end):
                conflicts.append(
                    Conflict(name, f"policy {policy.value} forbids the changes this name needs", resource)
                )
                continue
        items.extend(allowed)
    return Plan(changes=Changes(tuple(items)), conflicts=tuple(conflicts))


# ACME dns-01 names (``_acme-challenge.<host>``, resource ``acme/<name>``): their TXT set is ours to
# replace and remove. Elsewhere TXT records at an owned name are the user's (SPF, site
# verification) and are never touched.
CHALLENGE_RESOURCE = "acme/"
_CHALLENGE_TYPES = frozenset({RecordType.TXT})


def _base(name: str) -> str:
    """The name a record set belongs to for planning (a companion belongs to its owner name)."""
    return owned_name(name) if is_companion_name(name) else name


def _end_state(cur: list[RecordSet], changes: list[Change]) -> list[RecordSet]:
    state = {rs.key: rs for rs in cur}
    for c in changes:
        if c.old is not None and c.old.type in ADDRESS_TYPES:
            state.pop(c.old.key, None)
        if c.new is not None and c.new.type in ADDRESS_TYPES:
            state[c.new.key] = c.new
    return list(state.values())
