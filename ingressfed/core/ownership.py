"""Ownership of record sets through TXT companions.

(``parse_owner`` and ``companion`` are memoised: they are pure and run for
every owned name on every reconcile.)

Every name the controller publishes gets one companion TXT record at
``_ingressfed.<name>``. It sits on a child label, never at ``<name>`` itself,
so it cannot collide with a CNAME there (external-dns issue #262), and one
companion covers all address records (A, AAAA, CNAME) at the name, so an
A<->CNAME swap leaves it untouched. Record sets whose name has no companion
with our owner id are foreign: the plan never changes or deletes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from ingressfed.model import RecordSet, RecordType

__all__ = [
    "COMPANION_PREFIX",
    "HERITAGE",
    "Ownership",
    "companion",
    "companion_name",
    "is_companion_name",
    "owned_names",
    "owner_value",
    "parse_owner",
]

COMPANION_PREFIX = "_ingressfed"
HERITAGE = "ingressfed"


@dataclass(frozen=True, slots=True)
class Ownership:
    owner: str
    resource: str


def companion_name(name: str) -> str:
    return f"{COMPANION_PREFIX}.{name}"


def is_companion_name(name: str) -> bool:
    return name.startswith(COMPANION_PREFIX + ".")


def owned_name(companion: str) -> str:
    return companion[len(COMPANION_PREFIX) + 1 :]


def owner_value(owner_id: str, resource: str) -> str:
    """Labels in a fixed order, so equal ownership renders to equal text."""
    return f'"heritage={HERITAGE},ingressfed/owner={owner_id},ingressfed/resource={resource}"'


@functools.lru_cache(maxsize=1 << 17)
def parse_owner(txt_value: str) -> Ownership | None:
    """The ownership a TXT value states, or None when it is not ours in form."""
    text = txt_value.strip()
    # A TXT value may arrive split into several quoted strings; join them.
    if text.startswith('"'):
        parts = [p for p in text.split('"') if p.strip()]
        text = "".join(parts)
    labels: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            return None
        labels[key.strip()] = value.strip()
    if labels.get("heritage") != HERITAGE:
        return None
    owner = labels.get("ingressfed/owner", "")
    resource = labels.get("ingressfed/resource", "")
    if not owner:
        return None
    return Ownership(owner=owner, resource=resource)


@functools.lru_cache(maxsize=1 << 17)
def companion(rs_name: str, *, owner_id: str, resource: str, ttl: int) -> RecordSet:
    return RecordSet(
        name=companion_name(rs_name),
        type=RecordType.TXT,
        ttl=ttl,
        values=(owner_value(owner_id, resource),),
    )


def owned_names(current: Iterable[RecordSet], owner_id: str) -> dict[str, str]:
    """Names whose companion names ``owner_id``, mapped to the resource stated."""
    out: dict[str, str] = {}
    for rs in current:
        if rs.type is not RecordType.TXT or not is_companion_name(rs.name):
            continue
        for value in rs.values:
            own = parse_owner(value)
            if own is not None and own.owner == owner_id:
                out[owned_name(rs.name)] = own.resource
                break
    return out
