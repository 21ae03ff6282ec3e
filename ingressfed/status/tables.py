"""kubectl-style tables for ``ingressfed get <resource> --controller URL`` (pure).

One :class:`Table` per resource the read API serves (``/v1/status/<resource>``).
To add a resource (``edges``, ``certificates``): serve its items from the
controller with ``StatusState.add_resource(name, items)`` and add a ``Table``
with the same name to :data:`TABLES` below; ``-o json|yaml`` needs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TABLES", "Column", "Table", "short_age", "table_rows"]

Item = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    value: Callable[[Item, float], str]  # (item, now in unix seconds) -> cell
    wide: bool = False  # shown with -o wide only


@dataclass(frozen=True, slots=True)
class Table:
    resource: str
    columns: tuple[Column, ...]
    sort_key: Callable[[Item], Any] = lambda item: str(item.get("name", ""))


def short_age(seconds: float | None) -> str:
    """kubectl's short age: 45s, 12m, 3h, 7d."""
    if seconds is None:
        return "<unknown>"
    secs = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size * (2 if unit != "m" else 1):
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _field(name: str, default: str = "") -> Callable[[Item, float], str]:
    def get(item: Item, _now: float) -> str:
        value = item.get(name)
        return default if value is None or value == "" else str(value)

    return get


def _since(name: str) -> Callable[[Item, float], str]:
    def get(item: Item, now: float) -> str:
        then = item.get(name)
        return short_age(now - then) if isinstance(then, int | float) else "<unknown>"

    return get


def _data_plane(item: Item, _now: float) -> str:
    return {True: "Healthy", False: "Failing"}.get(item.get("dataPlaneHealthy"), "Unchecked")  # type: ignore[arg-type]


def _location(item: Item, _now: float) -> str:
    loc = item.get("location")
    return f"{loc['lat']:.2f},{loc['lon']:.2f}" if isinstance(loc, Mapping) else "<unknown>"


def _rps(item: Item, _now: float) -> str:
    rps = item.get("requestsPerSecond")
    return "-" if rps is None else f"{rps:.1f}"


def _errors(item: Item, _now: float) -> str:
    rate = item.get("errorRate")
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _reasons(item: Item, _now: float) -> str:
    return "; ".join(r.split(":", 1)[0] for r in item.get("reasons") or []) or "-"


def _route_clusters(item: Item, _now: float) -> str:
    return ",".join(sorted({str(b.get("cluster")) for b in item.get("backends") or []})) or "<none>"


def _route_backends(item: Item, _now: float) -> str:
    return ",".join(f"{b.get('cluster')}={b.get('address')}" for b in item.get("backends") or []) or "<none>"


def _edge_backends(item: Item, _now: float) -> str:
    up, total = item.get("backendsUp"), item.get("backends")
    return "-" if up is None or total is None else f"{up}/{total}"


def _addresses(item: Item, _now: float) -> str:
    return ",".join(str(a) for a in item.get("addresses") or []) or "<none>"


def _values(item: Item, _now: float) -> str:
    return ",".join(str(v) for v in item.get("values") or [])


TABLES: dict[str, Table] = {
    t.resource: t
    for t in (
        Table(
            "clusters",
            (
                Column("NAME", _field("name")),
                Column("STATUS", _field("status")),
                Column("DATA PLANE", _data_plane),
                Column("HEALTH", _field("health")),
                Column("LAST TRANSITION", _since("lastTransition")),
                Column("REGION", _field("region"), wide=True),
                Column("ZONE", _field("zone"), wide=True),
                Column("LOCATION", _location, wide=True),
                Column("REQ/S", _rps, wide=True),
                Column("ERRORS", _errors, wide=True),
                Column("REASONS", _reasons, wide=True),
            ),
        ),
        Table(
            "edges",
            (
                Column("NAME", _field("name")),
                Column("CLUSTER", _field("cluster")),
                Column("ADDRESSES", _addresses),
                Column("STATUS", _field("status")),
                Column("AGE", _since("firstReport")),  # since its first report to this controller
                Column("REGION", _field("region"), wide=True),
                Column("HEALTH", _field("health"), wide=True),
                Column("LAST REPORT", _since("lastReport"), wide=True),
                Column("BACKENDS UP", _edge_backends, wide=True),
                Column("REASONS", _reasons, wide=True),
            ),
        ),
        Table(
            "certificates",
            (
                Column("HOST", _field("host")),
                Column("SOURCE", _field("source")),
                Column("NOT-AFTER", _field("notAfter", "-")),
                Column("STATUS", _field("status")),
                Column("FINGERPRINT", _field("fingerprint", "-"), wide=True),
            ),
            sort_key=lambda i: (str(i.get("host", "")), str(i.get("source", ""))),
        ),
        Table(
            "routes",
            (
                Column("HOST", _field("host")),
                Column("PATH", _field("path")),
                Column("CLUSTERS", _route_clusters),
                Column("PATH TYPE", _field("pathType"), wide=True),
                Column("BACKENDS", _route_backends, wide=True),
            ),
            sort_key=lambda i: (str(i.get("host", "")), str(i.get("path", ""))),
        ),
        Table(
            "records",
            (
                Column("NAME", _field("name")),
                Column("TYPE", _field("type")),
                Column("TTL", _field("ttl")),
                Column("VALUES", _values),
                Column("SET", _field("setIdentifier", "-"), wide=True),
                Column("CLUSTER", _field("cluster", "-"), wide=True),
            ),
            sort_key=lambda i: (
                str(i.get("name", "")),
                str(i.get("type", "")),
                str(i.get("setIdentifier") or ""),
            ),
        ),
        Table(
            "events",
            (
                Column("LAST SEEN", _since("time")),
                Column("TYPE", lambda i, _: "Warning" if i.get("warning") else "Normal"),
                Column("KIND", _field("kind")),
                Column("OBJECT", _field("object", "-")),
                Column("MESSAGE", _field("message")),
            ),
            sort_key=lambda i: -float(i.get("time") or 0),
        ),
    )
}


def table_rows(table: Table, items: Sequence[Item], *, now: float, wide: bool) -> list[list[str]]:
    """Header row then one row per item, in the table's order."""
    columns = [c for c in table.columns if wide or not c.wide]
    rows = [[c.header for c in columns]]
    for item in sorted(items, key=table.sort_key):
        rows.append([_cell(c.value(item, now)) for c in columns])
    return rows


def _cell(text: str) -> str:
    # One line of printable text: a name with a newline must not forge a row, nor one with an
    # escape sequence repaint the operator's terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split())) or "-"
