"""An edge's health report and its JSON wire form (pure).

An edge sends, every few seconds, its whole view (not changes: a lost report
is repaired by the next one, and a view that never changed is still counted)
of every backend it routes to, grouped by cluster, plus the public addresses it
serves on. A backend is ``[host, port, up]``: a report of 1,000 backends is
about 25 KiB and decodes in a few times what ``json.loads`` alone costs::

    {"format": "ingressfed.health/v1", "edge": "edge-eu", "sequence": 17,
     "addresses": ["203.0.113.7"],
     "clusters": [{"name": "eu", "backends": [["10.0.0.5", 80, true], ...]}, ...]}

Optionally (an edge that checks its peers, even before it has results: ``[]``; older edges and
edges with peer checks off omit it) ``"peers": [[name, reachable],
...]``: whether this edge reached each other edge's public address in its last round of checks.
At most :data:`MAX_PEERS` entries, each name once, never the reporting edge itself.

Decoding is strict: a field of the wrong type, an unknown key, an address that
is not an IP, a cluster named twice, or more than :data:`MAX_BACKENDS` backends
raises :class:`ReportFormatError` naming the field, and nothing is applied.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ingressfed.errors import IngressfedError

__all__ = [
    "FORMAT",
    "MAX_ADDRESSES",
    "MAX_BACKENDS",
    "MAX_PEERS",
    "BackendState",
    "ClusterReport",
    "HealthReport",
    "ReportFormatError",
    "decode_report",
    "encode_report",
]

FORMAT = "ingressfed.health/v1"
MAX_BACKENDS = 50_000
MAX_ADDRESSES = 16
MAX_PEERS = 1000
_MAX_TEXT = 253


class ReportFormatError(IngressfedError, ValueError):
    """A health report does not have the wire form; the message names the field."""


# One backend as an edge sees it: (host, port, up). A plain tuple: a report carries thousands,
# built on every decode.
BackendState = tuple[str, int, bool]


@dataclass(frozen=True, slots=True)
class ClusterReport:
    name: str
    backends: tuple[BackendState, ...]

    @property
    def up(self) -> bool:
        """Whether any of the cluster's backends is usable from the reporting edge."""
        return any(up for _, _, up in self.backends)


@dataclass(frozen=True, slots=True)
class HealthReport:
    edge: str
    sequence: int
    addresses: tuple[str, ...]
    clusters: tuple[ClusterReport, ...]
    # (edge, reachable from here); None: this edge does not check its peers (no section on the wire)
    peers: tuple[tuple[str, bool], ...] | None = None

    def cluster_health(self) -> dict[str, bool]:
        return {c.name: c.up for c in self.clusters}

    @property
    def backend_count(self) -> int:
        return sum(len(c.backends) for c in self.clusters)

    @property
    def backends_up(self) -> int:
        return sum(1 for c in self.clusters for _, _, up in c.backends if up)


class _ClusterWire(TypedDict):
    name: str
    backends: list[tuple[str, int, bool]]


class _ReportWire(TypedDict):
    format: str
    edge: str
    sequence: int
    addresses: list[str]
    clusters: list[_ClusterWire]


class _ReportWireWithPeers(_ReportWire):
    peers: list[tuple[str, bool]]


def encode_report(report: HealthReport) -> bytes:
    doc: _ReportWire = {
        "format": FORMAT,
        "edge": report.edge,
        "sequence": report.sequence,
        "addresses": list(report.addresses),
        "clusters": [{"name": c.name, "backends": list(c.backends)} for c in report.clusters],
    }
    if report.peers is not None:
        # Only from an edge that checks its peers: a controller from before peer checks accepts the rest.
        doc = _ReportWireWithPeers(**doc, peers=list(report.peers))
    return json.dumps(doc, separators=(",", ":")).encode()


_REPORT_KEYS = frozenset(_ReportWire.__annotations__)
_REPORT_KEYS_WITH_PEERS = _REPORT_KEYS | {"peers"}
_CLUSTER_KEYS = frozenset(_ClusterWire.__annotations__)


def _object(doc: object, path: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise ReportFormatError(f"{path}: must be an object, got {_kind(doc)}")
    if doc.keys() == keys:
        return doc
    missing = sorted(keys - doc.keys())
    if missing:
        raise ReportFormatError(f"{path}.{missing[0]}: is required")
    extra = sorted(doc.keys() - keys)
    raise ReportFormatError(f"{path}.{extra[0]}: unknown field; allowed: {', '.join(sorted(keys))}")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ReportFormatError(f"{path}: must be a non-empty string, got {_kind(value)}")
    if len(value) > _MAX_TEXT:
        raise ReportFormatError(f"{path}: longer than {_MAX_TEXT} characters")
    return value


def _int(value: object, path: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReportFormatError(f"{path}: must be an integer, got {_kind(value)}")
    if not lo <= value <= hi:
        raise ReportFormatError(f"{path}: {value} must be between {lo} and {hi}")
    return value


def _list(value: object, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise ReportFormatError(f"{path}: must be a list, got {_kind(value)}")
    if len(value) > limit:
        raise ReportFormatError(f"{path}: {len(value)} entries; at most {limit} are accepted")
    return value


def _addresses(items: Iterable[Any], path: str) -> tuple[str, ...]:
    out = []
    for i, a in enumerate(items):
        where = f"{path}[{i}]"
        try:
            out.append(ipaddress.ip_address(_text(a, where)).compressed)
        except ValueError:
            raise ReportFormatError(f"{where}: {a!r} is not an IP address") from None
    return tuple(sorted(set(out)))


def _backends(items: list[Any], path: str) -> tuple[BackendState, ...]:
    out = []
    for j, item in enumerate(items):
        # The common case in one test per field, the field path built only for an error:
        # a report carries thousands of these.
        if type(item) is list and len(item) == 3:
            host, port, up = item
            if (
                type(host) is str
                and 0 < len(host) <= _MAX_TEXT
                and type(port) is int
                and 1 <= port <= 65535
                and type(up) is bool
            ):
                out.append((host, port, up))
                continue
            where = f"{path}[{j}]"
            _text(host, f"{where}[0]")
            _int(port, f"{where}[1]", 1, 65535)
            raise ReportFormatError(f"{where}[2]: must be a boolean, got {_kind(up)}")
        raise ReportFormatError(f"{path}[{j}]: must be [host, port, up], got {_kind(item)}")
    return tuple(out)


def decode_report(data: bytes) -> HealthReport:
    """Parse and validate one report (see the module doc)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportFormatError(f"report: not JSON: {exc}") from None
    optional = isinstance(doc, dict) and "peers" in doc
    r = _object(doc, "report", _REPORT_KEYS_WITH_PEERS if optional else _REPORT_KEYS)
    if r["format"] != FORMAT:
        raise ReportFormatError(f"report.format: {r['format']!r} is not supported; expected {FORMAT!r}")
    clusters: list[ClusterReport] = []
    seen: set[str] = set()
    total = 0
    for i, c in enumerate(_list(r["clusters"], "report.clusters", MAX_BACKENDS)):
        where = f"report.clusters[{i}]"
        cd = _object(c, where, _CLUSTER_KEYS)
        name = _text(cd["name"], f"{where}.name")
        if name in seen:
            raise ReportFormatError(f"{where}.name: {name!r} appears twice")
        seen.add(name)
        items = _list(cd["backends"], f"{where}.backends", MAX_BACKENDS)
        total += len(items)
        if total > MAX_BACKENDS:
            raise ReportFormatError(
                f"report.clusters: more than {MAX_BACKENDS} backends; at most that many are accepted"
            )
        clusters.append(ClusterReport(name, _backends(items, f"{where}.backends")))
    edge = _text(r["edge"], "report.edge")
    return HealthReport(
        edge=edge,
        sequence=_int(r["sequence"], "report.sequence", 0, 2**63 - 1),
        addresses=_addresses(_list(r["addresses"], "report.addresses", MAX_ADDRESSES), "report.addresses"),
        clusters=tuple(clusters),
        peers=_peers(_list(r["peers"], "report.peers", MAX_PEERS), edge) if optional else None,
    )


def _peers(items: list[Any], edge: str) -> tuple[tuple[str, bool], ...]:
    out: dict[str, bool] = {}
    for i, item in enumerate(items):
        where = f"report.peers[{i}]"
        if type(item) is not list or len(item) != 2:
            raise ReportFormatError(f"{where}: must be [edge, reachable], got {_kind(item)}")
        name = _text(item[0], f"{where}[0]")
        if type(item[1]) is not bool:
            raise ReportFormatError(f"{where}[1]: must be a boolean, got {_kind(item[1])}")
        if name == edge:
            raise ReportFormatError(
                f"{where}[0]: {name!r} is the reporting edge; an edge does not vouch for itself"
            )
        if name in out:
            raise ReportFormatError(f"{where}[0]: {name!r} appears twice")
        out[name] = item[1]
    return tuple(sorted(out.items()))
