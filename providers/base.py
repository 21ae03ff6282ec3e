"""The provider interface: as small as external-dns's, async, typed.

A provider holds one zone. ``records()`` returns every record set in it
(foreign ones included: ownership is decided above, by the registry wrapper).
``apply(changes)`` writes a batch, atomically where the backend allows.
``adjust(desired)`` lets a provider rewrite the desired sets into what it can
store (drop AAAA, collapse routed sets, clamp TTLs) *before* planning, so a
plan never proposes what the provider would reject and never flaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ingressfed.model import Changes, RecordSet, RecordType

__all__ = ["ApplyResult", "BaseProvider", "Capabilities", "Provider", "ProviderFactory"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    record_types: frozenset[RecordType] = frozenset(
        {RecordType.A, RecordType.AAAA, RecordType.CNAME, RecordType.TXT}
    )
    routing: bool = False  # per-cluster routed sets (set_identifier + routing)
    # weighted shares (``Routing.weighted``: a Service's ``steering: weighted``), answered by weight
    weighted: bool = False
    max_batch: int = 1000  # changes per apply call before the caller should split
    min_ttl: int = 0


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What happened to a batch. ``failed`` maps record-set names to the reason;
    a bad record fails alone and everything else is applied."""

    applied: int
    failed: Mapping[str, str]
    # Nothing was meant to be written (a dry run): callers must not treat the
    # changes as applied, nor the zero count as a surprise.
    simulated: bool = False


@runtime_checkable
class Provider(Protocol):
    name: str
    zone: str
    capabilities: Capabilities

    async def records(self) -> list[RecordSet]: ...

    async def apply(self, changes: Changes) -> ApplyResult: ...

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]: ...

    async def close(self) -> None: ...


class ProviderFactory(Protocol):
    """What the entry point ``ingressfed.providers`` names: a callable taking the
    zone and the provider's ``options`` mapping from config."""

    def __call__(self, *, zone: str, options: Mapping[str, Any]) -> Provider: ...


class BaseProvider:
    """Defaults for the optional parts of the protocol."""

    name: str = "base"
    zone: str = ""
    capabilities: Capabilities = Capabilities()

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        """Drop record types the provider cannot hold, clamp TTLs and, without
        routing support (or weighted sets without weighted support), merge per-cluster routed
        sets into one plain set."""
        caps = self.capabilities
        out: list[RecordSet] = []
        merged: dict[tuple[str, RecordType], RecordSet] = {}
        for rs in desired:
            weighted = rs.routing is not None and rs.routing.weighted
            if rs.set_identifier is not None and not (caps.weighted if weighted else caps.routing):
                k = (rs.name, rs.type)
                prev = merged.get(k)
                values = rs.values + (prev.values if prev else ())
                ttl = min(rs.ttl, prev.ttl) if prev else rs.ttl
                merged[k] = RecordSet(rs.name, rs.type, ttl, values)
                continue
            if rs.type not in caps.record_types:
                continue
            if rs.ttl < caps.min_ttl:
                out.append(
                    RecordSet(rs.name, rs.type, caps.min_ttl, rs.values, rs.set_identifier, rs.routing)
                )
            else:
                out.append(rs)
        for rs in merged.values():
            if rs.type in caps.record_types:
                ttl = max(rs.ttl, caps.min_ttl)
                out.append(RecordSet(rs.name, rs.type, ttl, rs.values))
        return out

    async def close(self) -> None:
        return None
