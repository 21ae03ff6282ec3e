"""An edge's health report and its JSON wire form (pure).

An edge sends, every few seconds, its whole view (not changes: a lost report
is repaired by the next one, and a view that never changed is still counted)
of every backend it routes to, plus the public addresses it serves on::

    {"format": "ingressfed.health/v1", "edge": "edge-eu", "sequence": 17,
     "addresses": ["203.0.113.7"],
     "backends": [{"cluster": "eu", "host": "10.0.0.5", "port": 80, "up": true}, ...]}

Decoding is strict: a field of the wrong type, an unknown key, an address that
is not an IP, or more than :data:`MAX_BACKENDS` backends raises
:class:`ReportFormatError` naming the field, and nothing is applied.
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
    "BackendState",
    "HealthReport",
    "ReportFormatError",
    "decode_report",
    "encode_report",
]

FORMAT = "ingressfed.health/v1"
MAX_BACKENDS = 50_000
MAX_ADDRESSES = 16
_MAX_TEXT = 253


class ReportFormatError(IngressfedError, ValueError):
    """A health report does not have the wire form; the message names the field."""


@dataclass(frozen=True, slots=True)
class BackendState:
    cluster: str
    host: str
    port: int
    up: bool


@dataclass(frozen=True, slots=True)
class HealthReport:
    edge: str
    sequence: int
    addresses: tuple[str, ...]
    backends: tuple[BackendState, ...]

    def clusters(self) -> dict[str, bool]:
        """Per cluster: whether any of its backends is usable from this edge."""
        out: dict[str, bool] = {}
        for b in self.backends:
            out[b.cluster] = out.get(b.cluster, False) or b.up
        return out


class _BackendWire(TypedDict):
    cluster: str
    host: str
    port: int
    up: bool


class _ReportWire(TypedDict):
    format: str
    edge: str
    sequence: int
    addresses: list[str]
    backends: list[_BackendWire]


def encode_report(report: HealthReport) -> bytes:
    doc: _ReportWire = {
        "format": FORMAT,
        "edge": report.edge,
        "sequence": report.sequence,
        "addresses": list(report.addresses),
        "backends": [
            {"cluster": b.cluster, "host": b.host, "port": b.port, "up": b.up} for b in report.backends
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


_REPORT_KEYS = frozenset(_ReportWire.__annotations__)
_BACKEND_KEYS = frozenset(_BackendWire.__annotations__)


def _object(doc: object, path: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise ReportFormatError(f"{path}: must be an object, got {_kind(doc)}")
    missing = sorted(keys - doc.keys())
    if missing:
        raise ReportFormatError(f"{path}.{missing[0]}: is required")
    extra = sorted(doc.keys() - keys)
    if extra:
        raise ReportFormatError(f"{path}.{extra[0]}: unknown field; allowed: {', '.join(sorted(keys))}")
    return doc


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


def decode_report(data: bytes) -> HealthReport:
    """Parse and validate one report (see the module doc)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportFormatError(f"report: not JSON: {exc}") from None
    r = _object(doc, "report", _REPORT_KEYS)
    if r["format"] != FORMAT:
        raise ReportFormatError(f"report.format: {r['format']!r} is not supported; expected {FORMAT!r}")
    backends = []
    for i, b in enumerate(_list(r["backends"], "report.backends", MAX_BACKENDS)):
        where = f"report.backends[{i}]"
        bd = _object(b, where, _BACKEND_KEYS)
        up = bd["up"]
        if not isinstance(up, bool):
            raise ReportFormatError(f"{where}.up: must be a boolean, got {_kind(up)}")
        backends.append(
            BackendState(
                cluster=_text(bd["cluster"], f"{where}.cluster"),
                host=_text(bd["host"], f"{where}.host"),
                port=_int(bd["port"], f"{where}.port", 1, 65535),
                up=up,
            )
        )
    return HealthReport(
        edge=_text(r["edge"], "report.edge"),
        sequence=_int(r["sequence"], "report.sequence", 0, 2**63 - 1),
        addresses=_addresses(_list(r["addresses"], "report.addresses", MAX_ADDRESSES), "report.addresses"),
        backends=tuple(backends),
    )
