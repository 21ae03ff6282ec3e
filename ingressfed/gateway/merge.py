"""One object (namespace/name) seen in several member clusters: merged, or in conflict.

Copies with equal specs are one object served from every cluster. When copies disagree, the
rule is the one the Multi-Cluster Services API uses for conflicting ServiceExports: the oldest
copy (creation timestamp, then cluster name) is served, and every copy says so in its status,
so an operator sees the disagreement on each object and nothing is decided by arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ingressfed.gateway.resources import Meta

__all__ = ["Merged", "merge_copies"]


class _HasMeta(Protocol):
    @property
    def meta(self) -> Meta: ...


T = TypeVar("T", bound=_HasMeta)


@dataclass(frozen=True, slots=True)
class Merged(Generic[T]):
    winner: T
    copies: tuple[T, ...]  # every copy, oldest first (the winner is copies[0])
    conflicting: tuple[T, ...] = ()  # copies whose spec differs from the winner's

    @property
    def key(self) -> tuple[str, str]:
        return self.winner.meta.key

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(c.meta.cluster for c in self.copies)

    def conflict_message(self) -> str:
        if not self.conflicting:
            return ""
        others = ", ".join(sorted(c.meta.cluster for c in self.conflicting))
        return (
            f"the spec of {self.key[0]}/{self.key[1]} differs between member clusters: the copy in "
            f"{self.winner.meta.cluster} (the oldest) is served; {others} differ. Make the copies equal."
        )


def merge_copies(objects: Iterable[T], spec: Callable[[T], Hashable]) -> list[Merged[T]]:
    """Group by (namespace, name); in each group the oldest copy wins. Sorted by key."""
    groups: dict[tuple[str, str], list[T]] = {}
    for obj in objects:
        groups.setdefault(obj.meta.key, []).append(obj)
    out: list[Merged[T]] = []
    for key in sorted(groups):
        copies = sorted(groups[key], key=lambda o: (o.meta.created or "~", o.meta.cluster))
        winner = copies[0]
        ref = spec(winner)
        out.append(
            Merged(
                winner=winner,
                copies=tuple(copies),
                conflicting=tuple(c for c in copies[1:] if spec(c) != ref),
            )
        )
    return out
