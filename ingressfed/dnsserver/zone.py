"""The zone an embedded DNS server serves, as one immutable value.

``ZoneData`` is what the embedded provider stores, persists and hands to its
subscribers, and what a remote feed gives a DNS server that has no provider:
the apex settings (SOA, NS) plus the record sets. It is pure data; building
the wire-format index lives in :mod:`ingressfed.dnsserver.index`.

The JSON form (``zone_data_to_json`` / ``zone_data_from_json``) is the zone
file format; parsing validates every field and names it in errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ingressfed.errors import ConfigError
from ingressfed.model import Change, ChangeAction, Location, RecordSet, RecordType, Routing

__all__ = [
    "ZONE_FILE_VERSION",
    "SoaSettings",
    "ZoneData",
    "changes_from_json",
    "changes_to_json",
    "next_serial",
    "record_to_json",
    "zone_data_from_json",
    "zone_data_from_records",
    "zone_data_to_json",
]

ZONE_FILE_VERSION = 1
_MAX_SERIAL = 0xFFFFFFFF
_MAX_TTL = 0x7FFFFFFF
_FOLD_MIN = 1024


@dataclass(frozen=True, slots=True)
class SoaSettings:
    """Apex settings. ``nameservers`` and ``hostmaster`` are absolute names
    without the trailing dot; ``hostmaster`` in mailbox-as-name form
    (``hostmaster.example.com``). ``glue``: addresses of the in-zone
    nameservers, served as their A/AAAA records (and in the additional
    section of NS answers), so a zone delegated to these servers resolves."""

    nameservers: tuple[str, ...]
    hostmaster: str
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    # Negative answers are cached this long (RFC 2308); short, because a name
    # the controller is about to create should not stay NXDOMAIN for long.
    minimum: int = 30
    ttl: int = 3600
    glue: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @staticmethod
    def default(zone: str) -> SoaSettings:
        zone = zone.rstrip(".").lower()
        return SoaSettings(nameservers=(f"ns1.{zone}",), hostmaster=f"hostmaster.{zone}")


def _order(rs: RecordSet) -> tuple[str, str, str]:
    return (rs.name, rs.type.value, rs.set_identifier or "")


class ZoneData:
    """One version of a zone: apex settings and record sets (sorted by name, type, set id).

    Immutable. A version made with :meth:`following` holds only the changes from the
    version before it; its ``records`` are worked out on first use (and kept), so a
    store that changes a few sets in a zone of 100k pays for the changes, not the zone,
    until someone asks for the whole zone (a full render, a snapshot on disk).
    ``pending`` counts the changes not yet folded into a materialised ancestor, so the
    owner of a long chain knows when to fold it (:attr:`records` does)."""

    __slots__ = ("_base", "_changes", "_records", "pending", "serial", "size", "soa", "zone")

    def __init__(self, zone: str, serial: int, soa: SoaSettings, records: Iterable[RecordSet] = ()) -> None:
        self.zone = zone.rstrip(".").lower()
        self.serial = serial
        self.soa = soa
        self._records: tuple[RecordSet, ...] | None = tuple(records)
        self._base: ZoneData | None = None
        self._changes: tuple[Change, ...] = ()
        self.pending = 0
        self.size = len(self._records)

    @classmethod
    def following(cls, base: ZoneData, changes: Iterable[Change], *, serial: int) -> ZoneData:
        """``base`` with ``changes`` applied (each ``old`` removed, each ``new`` added), at ``serial``."""
        out = cls(base.zone, serial, base.soa)
        out._records = None
        out._base = base
        out._changes = tuple(changes)
        out.pending = base.pending + len(out._changes)
        out.size = base.size + sum((c.new is not None) - (c.old is not None) for c in out._changes)
        return out

    @property
    def needs_folding(self) -> bool:
        """Whether enough changes are pending that reading :attr:`records` once (O(zone)) is
        due: every version since the last materialised one is held until then. Folding
        when the pending changes reach a quarter of the zone keeps it O(log n) per change."""
        return self.pending > max(_FOLD_MIN, self.size // 4)

    @property
    def records(self) -> tuple[RecordSet, ...]:
        if self._records is not None:
            return self._records
        chain: list[ZoneData] = []
        node: ZoneData = self
        while node._records is None:
            chain.append(node)
            assert node._base is not None
            node = node._base
        sets = {rs.key: rs for rs in node._records}
        for link in reversed(chain):
            for change in link._changes:
                if change.old is not None:
                    sets.pop(change.old.key, None)
                if change.new is not None:
                    sets[change.new.key] = change.new
        # Assigned before the links are dropped: another thread reading meanwhile sees one or the other.
        self._records = tuple(sorted(sets.values(), key=_order))
        self._base = None
        self._changes = ()
        self.pending = 0
        self.size = len(self._records)
        return self._records

    def replace(self, *, serial: int | None = None, records: Iterable[RecordSet] | None = None) -> ZoneData:
        return ZoneData(
            self.zone,
            self.serial if serial is None else serial,
            self.soa,
            self.records if records is None else records,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ZoneData):
            return NotImplemented
        return (self.zone, self.serial, self.soa, self.records) == (
            other.zone,
            other.serial,
            other.soa,
            other.records,
        )

    __hash__ = None  # type: ignore[assignment]  # compared by content, which is large and lazy

    def __repr__(self) -> str:
        held = len(self._records) if self._records is not None else f"{self.pending} changes pending"
        return f"ZoneData(zone={self.zone!r}, serial={self.serial}, records={held})"


def zone_data_from_records(
    zone: str, records: Iterable[RecordSet], *, serial: int = 1, soa: SoaSettings | None = None
) -> ZoneData:
    """A zone from record sets alone (what a remote feed provides)."""
    zone = zone.rstrip(".").lower()
    ordered = tuple(sorted(records, key=_order))
    return ZoneData(zone=zone, serial=serial, soa=soa or SoaSettings.default(zone), records=ordered)


def next_serial(serial: int) -> int:
    """The next SOA serial: increments, wrapping past 2**32-1 to 1 (never 0)."""
    return serial % _MAX_SERIAL + 1


def _routing_to_json(r: Routing) -> dict[str, Any]:
    out: dict[str, Any] = {"cluster": r.cluster, "region": r.region, "weight": r.weight}
    if r.location is not None:
        out["location"] = {"lat": r.location.lat, "lon": r.location.lon}
    if r.continent is not None:
        out["continent"] = r.continent
    if r.country is not None:
        out["country"] = r.country
    if r.weighted:
        out["weighted"] = True
    return out


def record_to_json(rs: RecordSet) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": rs.name,
        "type": rs.type.value,
        "ttl": rs.ttl,
        "values": list(rs.values),
    }
    if rs.set_identifier is not None:
        item["setIdentifier"] = rs.set_identifier
    if rs.routing is not None:
        item["routing"] = _routing_to_json(rs.routing)
    return item


def changes_to_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """Changes in the zone file's record form: ``{"old": record or null, "new": record or null}``."""
    return [
        {
            "old": record_to_json(c.old) if c.old is not None else None,
            "new": record_to_json(c.new) if c.new is not None else None,
        }
        for c in changes
    ]


def changes_from_json(raw: Any, *, source: str) -> tuple[Change, ...]:
    """Parse :func:`changes_to_json`'s form; raises ConfigError listing every problem."""
    rd = _Reader()
    out: list[Change] = []
    if not isinstance(raw, list):
        raise ConfigError([f"{source}: got {type(raw).__name__}, expected a list of changes"])
    for i, item in enumerate(raw):
        obj = rd.mapping(item, f"{source}[{i}]")
        old = rd.record(obj["old"], f"{source}[{i}].old") if obj.get("old") is not None else None
        new = rd.record(obj["new"], f"{source}[{i}].new") if obj.get("new") is not None else None
        if old is None and new is None:
            if not rd.problems:
                rd.problems.append(f"{source}[{i}]: neither old nor new")
            continue
        action = ChangeAction.UPDATE if old and new else ChangeAction.CREATE if new else ChangeAction.DELETE
        out.append(Change(action, old=old, new=new))
    if rd.problems:
        raise ConfigError(rd.problems)
    return tuple(out)


def zone_data_to_json(data: ZoneData) -> dict[str, Any]:
    records = [record_to_json(rs) for rs in data.records]
    soa = data.soa
    return {
        "version": ZONE_FILE_VERSION,
        "zone": data.zone,
        "serial": data.serial,
        "soa": {
            "nameservers": list(soa.nameservers),
            "hostmaster": soa.hostmaster,
            "refresh": soa.refresh,
            "retry": soa.retry,
            "expire": soa.expire,
            "minimum": soa.minimum,
            "ttl": soa.ttl,
            "glue": [{"name": n, "addresses": list(a)} for n, a in soa.glue],
        },
        "records": records,
    }


class _Reader:
    """Collects every problem with a path, so one error lists them all."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def int_(
        self, obj: Mapping[str, Any], key: str, path: str, *, lo: int, hi: int, default: int | None = None
    ) -> int:
        v = obj.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.problems.append(f"{path}.{key}: got {v!r}, expected an integer in {lo}..{hi}")
            return lo
        return v

    def str_(self, obj: Mapping[str, Any], key: str, path: str) -> str:
        v = obj.get(key)
        if not isinstance(v, str) or not v:
            self.problems.append(f"{path}.{key}: got {v!r}, expected a non-empty string")
            return ""
        return v

    def float_(self, obj: Mapping[str, Any], key: str, path: str, *, lo: float, hi: float) -> float:
        v = obj.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            self.problems.append(f"{path}.{key}: got {v!r}, expected a number in {lo}..{hi}")
            return 0.0
        return float(v)

    def mapping(self, v: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            self.problems.append(f"{path}: got {type(v).__name__}, expected an object")
            return {}
        return v

    def glue(self, v: Any, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if not isinstance(v, list):
            self.problems.append(f"{path}: got {type(v).__name__}, expected a list")
            return ()
        out = []
        for i, item in enumerate(v):
            obj = self.mapping(item, f"{path}[{i}]")
            addrs = obj.get("addresses")
            if not isinstance(addrs, list) or not addrs or not all(isinstance(a, str) for a in addrs):
                self.problems.append(f"{path}[{i}].addresses: got {addrs!r}, expected a list of addresses")
                continue
            out.append((self.str_(obj, "name", f"{path}[{i}]").rstrip(".").lower(), tuple(addrs)))
        return tuple(out)

    def routing(self, v: Any, path: str) -> Routing:
        obj = self.mapping(v, path)
        loc: Location | None = None
        if obj.get("location") is not None:
            lobj = self.mapping(obj["location"], f"{path}.location")
            loc = Location(
                lat=self.float_(lobj, "lat", f"{path}.location", lo=-90, hi=90),
                lon=self.float_(lobj, "lon", f"{path}.location", lo=-180, hi=180),
            )
        opt = {k: obj.get(k) for k in ("continent", "country")}
        for k, val in opt.items():
            if val is not None and not isinstance(val, str):
                self.problems.append(f"{path}.{k}: got {val!r}, expected a string or null")
                opt[k] = None
        weighted = obj.get("weighted", False)
        if not isinstance(weighted, bool):
            self.problems.append(f"{path}.weighted: got {weighted!r}, expected true or false")
            weighted = False
        return Routing(
            cluster=self.str_(obj, "cluster", path),
            region=obj.get("region", "") if isinstance(obj.get("region", ""), str) else "",
            location=loc,
            weight=self.int_(obj, "weight", path, lo=1, hi=1000, default=100),
            continent=opt["continent"],
            country=opt["country"],
            weighted=weighted,
        )

    def record(self, v: Any, path: str) -> RecordSet | None:
        obj = self.mapping(v, path)
        before = len(self.problems)
        name = self.str_(obj, "name", path)
        tname = obj.get("type")
        try:
            rtype = RecordType(str(tname))
        except ValueError:
            self.problems.append(
                f"{path}.type: got {tname!r}, expected one of {[t.value for t in RecordType]}"
            )
            rtype = RecordType.A
        ttl = self.int_(obj, "ttl", path, lo=0, hi=_MAX_TTL)
        values = obj.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(x, str) for x in values):
            self.problems.append(f"{path}.values: got {values!r}, expected a non-empty list of strings")
            values = []
        sid = obj.get("setIdentifier")
        if sid is not None and not isinstance(sid, str):
            self.problems.append(f"{path}.setIdentifier: got {sid!r}, expected a string or null")
            sid = None
        routing = self.routing(obj["routing"], f"{path}.routing") if obj.get("routing") is not None else None
        if len(self.problems) != before:
            return None
        return RecordSet(name, rtype, ttl, tuple(values), sid, routing)


def zone_data_from_json(doc: Any, *, source: str = "zone file") -> ZoneData:
    """Parse the zone file form; raises ConfigError listing every problem."""
    rd = _Reader()
    top = rd.mapping(doc, source)
    if top.get("version") != ZONE_FILE_VERSION:
        rd.problems.append(f"{source}.version: got {top.get('version')!r}, expected {ZONE_FILE_VERSION}")
    zone = rd.str_(top, "zone", source)
    serial = rd.int_(top, "serial", source, lo=0, hi=_MAX_SERIAL)
    sobj = rd.mapping(top.get("soa"), f"{source}.soa")
    ns = sobj.get("nameservers")
    if not isinstance(ns, list) or not ns or not all(isinstance(x, str) and x for x in ns):
        rd.problems.append(f"{source}.soa.nameservers: got {ns!r}, expected a non-empty list of names")
        ns = ["invalid"]
    soa = SoaSettings(
        nameservers=tuple(n.rstrip(".").lower() for n in ns),
        hostmaster=rd.str_(sobj, "hostmaster", f"{source}.soa").rstrip(".").lower(),
        refresh=rd.int_(sobj, "refresh", f"{source}.soa", lo=1, hi=_MAX_TTL, default=3600),
        retry=rd.int_(sobj, "retry", f"{source}.soa", lo=1, hi=_MAX_TTL, default=600),
        expire=rd.int_(sobj, "expire", f"{source}.soa", lo=1, hi=_MAX_TTL, default=86400),
        minimum=rd.int_(sobj, "minimum", f"{source}.soa", lo=0, hi=_MAX_TTL, default=30),
        ttl=rd.int_(sobj, "ttl", f"{source}.soa", lo=0, hi=_MAX_TTL, default=3600),
        glue=rd.glue(sobj.get("glue", []), f"{source}.soa.glue"),
    )
    raw = top.get("records", [])
    records: list[RecordSet] = []
    if not isinstance(raw, list):
        rd.problems.append(f"{source}.records: got {type(raw).__name__}, expected a list")
        raw = []
    for i, item in enumerate(raw):
        rs = rd.record(item, f"{source}.records[{i}]")
        if rs is not None:
            records.append(rs)
    if rd.problems:
        raise ConfigError(rd.problems)
    return zone_data_from_records(zone, records, serial=serial, soa=soa)
