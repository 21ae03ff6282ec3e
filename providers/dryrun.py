"""A provider wrapper for ``--dry-run``: reads the real zone, prints the plan, changes nothing.

The plan is printed as a table (action, type, name, TTL, values; an UPDATE
shows old -> new). The same plan seen again on the next reconcile is not
printed again, so a dry run's output is the list of distinct plans.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ingressfed.model import Change, Changes, RecordSet
from providers.base import ApplyResult, Capabilities, Provider

__all__ = ["DryRunProvider", "format_changes"]

log = logging.getLogger(__name__)


def _values(rs: RecordSet) -> str:
    return ", ".join(rs.values)


def _row(change: Change) -> list[str]:
    rs = change.record
    ident = rs.set_identifier or ""
    if change.old is not None and change.new is not None:
        old, new = change.old, change.new
        rtype = old.type.value if old.type is new.type else f"{old.type.value}->{new.type.value}"
        ttl = str(new.ttl) if old.ttl == new.ttl else f"{old.ttl}->{new.ttl}"
        values = _values(new) if old.values == new.values else f"{_values(old)} -> {_values(new)}"
        return [change.action.value, rtype, rs.name, ident, ttl, values]
    return [change.action.value, rs.type.value, rs.name, ident, str(rs.ttl), _values(rs)]


def format_changes(changes: Changes, *, zone: str) -> str:
    """A readable table of ``changes`` (pure)."""
    if not changes:
        return f"dry run: zone {zone}: no changes"
    header = ["ACTION", "TYPE", "NAME", "SET-ID", "TTL", "VALUES"]
    rows = [_row(c) for c in changes.items]
    if not any(r[3] for r in rows):
        # No routed sets: leave the set-identifier column out.
        header = header[:3] + header[4:]
        rows = [r[:3] + r[4:] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"dry run: zone {zone}: {len(changes)} change(s), none applied"]
    for r in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


class DryRunProvider:
    """``DryRunProvider(inner, *, out=print)``: ``apply`` writes the table to ``out`` (or, with
    ``out=None``, to the log at INFO) and reports the result as simulated."""

    def __init__(self, inner: Provider, *, out: Callable[[str], None] | None = print) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.zone: str = inner.zone
        self.capabilities: Capabilities = inner.capabilities
        self.out = out
        self._last: Changes | None = None

    async def records(self) -> list[RecordSet]:
        return await self.inner.records()

    def invalidate(self) -> None:
        """Pass a full resync through to a cache underneath, if there is one."""
        inner_invalidate = getattr(self.inner, "invalidate", None)
        if callable(inner_invalidate):
            inner_invalidate()

    async def apply(self, changes: Changes) -> ApplyResult:
        if changes == self._last:
            log.debug("dry run: same plan as before, not printed again")
            return ApplyResult(applied=0, failed={}, simulated=True)
        self._last = changes
        text = format_changes(changes, zone=self.inner.zone)
        if self.out is not None:
            self.out(text)
            # Already on the user's screen: the log keeps it for debugging only.
            log.debug("%s", text, extra={"zone": self.inner.zone, "changes": len(changes)})
        else:
            log.info("%s", text, extra={"zone": self.inner.zone, "changes": len(changes)})
        return ApplyResult(applied=0, failed={}, simulated=True)

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        return self.inner.adjust(desired)

    async def close(self) -> None:
        await self.inner.close()
