"""Cloud DNS record sets as the REST API spells them, and the pure decisions about them.

The google-cloud-dns library models only ``rrdatas``: a record set with a
``routingPolicy`` (geo, weighted round robin, primary/backup) has none, and
the library's ``from_api_repr`` fails on it. So ingressfed reads and writes
the JSON resources itself (through the library's authenticated connection)
and maps them here:

- a plain set is one :class:`RecordSet`;
- a ``geo`` policy this provider writes (``routing: geolocation``) is one
  routed RecordSet per item, ``set_identifier`` = the item's GCP region;
- a ``wrr`` policy in the form this provider writes (a Service's ``steering:
  weighted``: items of a whole-number weight and rrdatas only) is one weighted
  share per item. Cloud DNS items carry no name, so a share's identifier is its
  position among the items ordered by their data (``w000``, ``w001``...), the
  same on write (``wrr_shares``) and read: whether the name is ours is the
  companion TXT's to say, as for every set;
- any other policy (``primaryBackup``, geo when we do not write geo, a wrr or
  geo with fencing, health-checked targets or fractional weights) is foreign: it reads as one
  plain RecordSet holding every address, so ownership sees a set that is not
  ours, and a Change that would touch it is refused as a conflict.

Cloud DNS keeps one resource per (name, type): a Change replaces the whole
resource (exact deletion plus addition), so :func:`change_for` builds the
after-state of each touched (name, type) from the zone as read and the
batch's changes. Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geo.distance import great_circle_km
from geo.regions import REGIONS, region_location
from ingressfed.errors import RecordConflictError
from ingressfed.model import ChangeAction, Changes, RecordSet, RecordType, Routing

__all__ = [
    "GCP_REGIONS",
    "TXT_STRING_MAX",
    "ZoneState",
    "change_for",
    "from_raw",
    "gcp_location",
    "split_txt",
    "to_raw",
    "wrr_shares",
]

NameType = tuple[str, RecordType]

_NAME_VALUED = (RecordType.CNAME, RecordType.NS)
# GCP names regions ``us-east1``; AWS ``us-east-1`` and Azure ``eastus`` never match.
GCP_REGIONS = tuple(sorted(r for r in REGIONS if re.fullmatch(r"[a-z]+-[a-z]+[0-9]+", r)))
TXT_STRING_MAX = 255  # octets per character-string (RFC 1035 section 3.3)
_TXT_UNIT = re.compile(r"\\[0-9]{3}|\\.|[^\\]")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def gcp_location(routing: Routing) -> str | None:
    """The GCP region a geo item for this cluster is keyed by: its own region when that is a
    GCP region, else the GCP region nearest to its location; None when it has neither."""
    if routing.region in GCP_REGIONS:
        return routing.region
    here = routing.location or region_location(routing.region)
    if here is None:
        return None
    known = [(great_circle_km(here, loc), r) for r in GCP_REGIONS if (loc := region_location(r)) is not None]
    return min(known)[1] if known else None


def split_txt(value: str) -> str:
    """TXT presentation data with every character-string cut to at most 255 octets."""
    strings = _QUOTED.findall(value) if value.startswith('"') else [value]
    out: list[str] = []
    for s in strings:
        units = _TXT_UNIT.findall(s)  # an escape (\" or \123) is one octet: never cut inside one
        if not units:
            out.append('""')
        for i in range(0, len(units), TXT_STRING_MAX):
            out.append('"' + "".join(units[i : i + TXT_STRING_MAX]) + '"')
    return " ".join(out)


def _values_out(rs: RecordSet) -> list[str]:
    if rs.type in _NAME_VALUED:
        return [v + "." for v in rs.values]
    return list(rs.values)


def _strip_kind(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_kind(x) for k, x in v.items() if k != "kind"}
    if isinstance(v, list):
        return [_strip_kind(x) for x in v]
    return v


def _all_rrdatas(v: Any) -> list[str]:
    """Every ``rrdatas`` value anywhere inside a routing policy."""
    if isinstance(v, dict):
        found = [str(x) for x in v.get("rrdatas", []) if isinstance(x, str)]
        return found + [x for k, sub in v.items() if k != "rrdatas" for x in _all_rrdatas(sub)]
    if isinstance(v, list):
        return [x for sub in v for x in _all_rrdatas(sub)]
    return []


def _our_geo(policy: Mapping[str, Any]) -> bool:
    """A geo policy in the form this provider writes (plain items, no fencing, no health checks)."""
    geo = policy.get("geo")
    if set(policy) != {"geo"} or not isinstance(geo, Mapping) or geo.get("enableFencing"):
        return False
    items = geo.get("items")
    return isinstance(items, list) and all(
        isinstance(i, Mapping) and set(i) == {"location", "rrdatas"} and i["rrdatas"] for i in items
    )


def _our_wrr(policy: Mapping[str, Any]) -> bool:
    """A wrr policy in the form this provider writes (whole-number weights, plain items)."""
    wrr = policy.get("wrr")
    if set(policy) != {"wrr"} or not isinstance(wrr, Mapping) or set(wrr) != {"items"}:
        return False
    items = wrr.get("items")
    return (
        isinstance(items, list)
        and bool(items)
        and all(
            isinstance(i, Mapping)
            and set(i) == {"weight", "rrdatas"}
            and i["rrdatas"]
            and isinstance(i["weight"], int | float)
            and not isinstance(i["weight"], bool)
            and float(i["weight"]).is_integer()
            and i["weight"] >= 0
            for i in items
        )
    )


def _share_id(position: int) -> str:
    return f"w{position:03d}"


def wrr_shares(
    name: str, rtype: RecordType, ttl: int, shares: Iterable[tuple[tuple[str, ...], int]]
) -> list[RecordSet]:
    """Weighted shares ((values, weight)) as this provider reads them back: ordered by data,
    identified by position, one TTL. Pure."""
    ordered = sorted(shares)
    return [
        RecordSet(name, rtype, ttl, values, _share_id(i), Routing(_share_id(i), "", weight=w, weighted=True))
        for i, (values, w) in enumerate(ordered)
    ]


def from_raw(raw: Mapping[str, Any], *, geo: bool) -> tuple[list[RecordSet], str | None]:
    """Our record sets for one Cloud DNS resource, and why it is foreign (None: it is not).

    Types ingressfed does not model read as no sets."""
    try:
        rtype = RecordType(str(raw.get("type")))
    except ValueError:
        return [], None
    name = str(raw["name"])
    ttl = int(raw.get("ttl", 0))
    policy = raw.get("routingPolicy")
    if policy is None:
        return [RecordSet(name, rtype, ttl, tuple(raw.get("rrdatas") or ()))], None
    policy = _strip_kind(policy)
    if _our_wrr(policy):
        shares = [(tuple(i["rrdatas"]), int(i["weight"])) for i in policy["wrr"]["items"]]
        return wrr_shares(name, rtype, ttl, shares), None
    if geo and _our_geo(policy):
        out = []
        for item in policy["geo"]["items"]:
            loc = str(item["location"])
            out.append(RecordSet(name, rtype, ttl, tuple(item["rrdatas"]), loc, Routing(loc, loc)))
        return out, None
    kind = next(iter(policy), "unknown") if isinstance(policy, dict) else "unknown"
    return [RecordSet(name, rtype, ttl, tuple(sorted(set(_all_rrdatas(policy)))))], f"{kind} routing policy"


def to_raw(sets: Iterable[RecordSet]) -> dict[str, Any] | None:
    """The one Cloud DNS resource holding all of our sets at one (name, type); None for none.

    Routed sets become a ``geo`` routing policy (``rrdatas`` absent, as the API
    requires), one item per set, keyed by its set identifier (a GCP region)."""
    sets = sorted(sets, key=lambda rs: rs.set_identifier or "")
    if not sets:
        return None
    first = sets[0]
    raw: dict[str, Any] = {
        "name": first.name + ".",
        "type": first.type.value,
        "ttl": min(s.ttl for s in sets),
    }
    routed = [s for s in sets if s.set_identifier is not None]
    if not routed:
        raw["rrdatas"] = _values_out(first)
        return raw
    if all(s.routing is not None and s.routing.weighted for s in routed):
        # Cloud DNS's weight is a double: written as one, so what is read back compares equal.
        wrr = [
            {"weight": float(s.routing.weight if s.routing else 0), "rrdatas": _values_out(s)} for s in routed
        ]
        raw["routingPolicy"] = {"wrr": {"items": wrr}}
        return raw
    items = [{"location": s.set_identifier, "rrdatas": _values_out(s)} for s in routed]
    raw["routingPolicy"] = {"geo": {"items": items}}
    return raw


def same_resource(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two resources hold the same data (order of values and ``kind`` fields aside)."""

    def norm(r: Mapping[str, Any] | None) -> str | None:
        if r is None:
            return None

        def sort(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: sort(x) for k, x in v.items()}
            if isinstance(v, list):
                return sorted((sort(x) for x in v), key=json.dumps)
            return v

        body = _strip_kind(dict(r))
        body.setdefault("rrdatas", [])
        body["name"] = str(body["name"]).lower()
        if not body["rrdatas"]:
            body["rrdatas"] = []
        return json.dumps(sort(body), sort_keys=True)

    return norm(a) == norm(b)


@dataclass
class ZoneState:
    """The zone as last read (and written since): our sets, the raw resources, the foreign ones."""

    sets: dict[NameType, dict[str | None, RecordSet]] = field(default_factory=dict)
    raw: dict[NameType, dict[str, Any]] = field(default_factory=dict)
    foreign: dict[NameType, str] = field(default_factory=dict)

    @classmethod
    def of(cls, resources: Iterable[Mapping[str, Any]], *, geo: bool) -> ZoneState:
        state = cls()
        for raw in resources:
            sets, foreign = from_raw(raw, geo=geo)
            if not sets:
                continue
            nt = (sets[0].name, sets[0].type)
            state.sets[nt] = {rs.set_identifier: rs for rs in sets}
            state.raw[nt] = _strip_kind(dict(raw))
            if foreign is not None:
                state.foreign[nt] = foreign
        return state

    def records(self) -> list[RecordSet]:
        return [rs for by_id in self.sets.values() for rs in by_id.values()]

    def applied(self, deletions: Sequence[Mapping[str, Any]], additions: Sequence[Mapping[str, Any]]) -> None:
        """Follow a Change the server accepted."""
        for raw in deletions:
            nt = (str(raw["name"]).rstrip(".").lower(), RecordType(str(raw["type"])))
            self.sets.pop(nt, None)
            self.raw.pop(nt, None)
            self.foreign.pop(nt, None)
        for raw in additions:
            sets, _ = from_raw(raw, geo=True)
            nt = (sets[0].name, sets[0].type)
            self.sets[nt] = {rs.set_identifier: rs for rs in sets}
            self.raw[nt] = dict(raw)


def change_for(
    changes: Changes, state: ZoneState, *, provider: str = "clouddns"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One atomic Change (deletions, additions of whole resources) for a batch, against ``state``.

    Deletions are the exact current resources; what is already in place is
    dropped; a CREATE colliding with different data someone else wrote, or any
    change to a resource with a foreign routing policy, is a conflict naming
    the record (we refuse to overwrite what is not ours)."""
    after: dict[NameType, dict[str | None, RecordSet]] = {}
    order: list[NameType] = []

    def at(rs: RecordSet) -> dict[str | None, RecordSet]:
        nt = (rs.name, rs.type)
        if nt not in after:
            after[nt] = dict(state.sets.get(nt, {}))
            order.append(nt)
        return after[nt]

    for c in changes.items:
        if c.old is not None:
            at(c.old).pop(c.old.set_identifier, None)
        if c.action is ChangeAction.DELETE:
            continue
        new = c.new
        assert new is not None
        here = at(new).get(new.set_identifier)
        moved = c.action is ChangeAction.UPDATE and c.old is not None and c.old.type != new.type
        if here is not None and here != new and (c.action is ChangeAction.CREATE or moved):
            raise RecordConflictError(
                f"{new.type} {new.name} already exists with other data: {list(here.values)}",
                provider=provider,
                record=new.name,
            )
        at(new)[new.set_identifier] = new
    deletions: list[dict[str, Any]] = []
    additions: list[dict[str, Any]] = []
    for nt in order:
        before = state.raw.get(nt)
        wanted = to_raw(after[nt].values())
        if same_resource(before, wanted):
            continue
        if nt in state.foreign:
            raise RecordConflictError(
                f"{nt[1]} {nt[0]} has a Cloud DNS {state.foreign[nt]} that ingressfed did not write; "
                "left alone (remove it, or stop publishing this name)",
                provider=provider,
                record=nt[0],
            )
        if before is not None:
            deletions.append(before)
        if wanted is not None:
            additions.append(wanted)
    return deletions, additions
