"""How a strict authoritative store applies a batch: the rules the in-memory and embedded
providers share. Pure: a batch is staged against a copy of the zone and either yields the new
zone or raises naming the first record set that breaks a rule.

- CREATE (or the new side of UPDATE) of a set that exists: RecordConflictError.
- DELETE/UPDATE whose ``old`` is missing or differs from what is stored: RecordNotFoundError.
- A record set the store cannot hold (``problem`` says why): InvalidRecordError.
- After the batch, a CNAME beside other data at one name, or a plain set beside routed sets of
  the same type: RecordConflictError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ingressfed.errors import InvalidRecordError, RecordConflictError, RecordNotFoundError
from ingressfed.model import Change, Changes, RecordKey, RecordSet, RecordType

__all__ = ["check_names", "stage"]


def stage(
    current: Mapping[RecordKey, RecordSet],
    changes: Changes,
    *,
    provider: str,
    problem: Callable[[RecordSet], str | None],
) -> dict[RecordKey, RecordSet]:
    """The zone after ``changes``, or the error for the first change the store refuses."""
    staged = dict(current)
    for change in changes.items:
        _stage_one(staged, change, provider, problem)
    check_names(staged, {c.record.name for c in changes.items}, provider=provider)
    return staged


def _stage_one(
    staged: dict[RecordKey, RecordSet],
    change: Change,
    provider: str,
    problem: Callable[[RecordSet], str | None],
) -> None:
    name = change.record.name
    new, old = change.new, change.old
    if new is not None:
        why = problem(new)
        if why:
            raise InvalidRecordError(f"{new.type} {new.name}: {why}", provider=provider, record=name)
    if old is not None:
        stored = staged.get(old.key)
        if stored != old:
            what = "does not exist" if stored is None else f"differs (is {stored.values}, ttl {stored.ttl})"
            raise RecordNotFoundError(
                f"{change.action} {old.type} {old.name}: the set {what}", provider=provider, record=name
            )
        del staged[old.key]
    if new is not None:
        if new.key in staged:
            raise RecordConflictError(
                f"{change.action} {new.type} {new.name}: the set already exists",
                provider=provider,
                record=name,
            )
        if old is not None and old.name != new.name:
            raise InvalidRecordError(
                f"UPDATE may not rename {old.name} to {new.name}", provider=provider, record=name
            )
        staged[new.key] = new


def check_names(staged: Mapping[RecordKey, RecordSet], touched: set[str], *, provider: str) -> None:
    """Exclusivity rules at every name the batch touched."""
    by_name: dict[str, list[RecordSet]] = {}
    for rs in staged.values():
        if rs.name in touched:
            by_name.setdefault(rs.name, []).append(rs)
    for name in sorted(by_name):
        sets = by_name[name]
        types = {rs.type for rs in sets}
        if RecordType.CNAME in types and len(types) > 1:
            others = ", ".join(sorted(t for t in types if t is not RecordType.CNAME))
            raise RecordConflictError(
                f"CNAME at {name} beside other data ({others})", provider=provider, record=name
            )
        for rtype in types:
            idents = {rs.set_identifier for rs in sets if rs.type is rtype}
            if None in idents and len(idents) > 1:
                raise RecordConflictError(
                    f"{rtype} {name}: a plain set beside routed sets", provider=provider, record=name
                )
