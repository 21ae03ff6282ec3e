"""A provider wrapper that answers ``records()`` from memory.

The zone is read once and then kept in step with what this process applies,
so an idle federation makes zero provider calls between full resyncs (the
controller calls ``invalidate()`` on its resync period). Anything that may
leave memory and zone apart (an error in ``apply``, a batch only partly known
to have applied) drops the copy, and the next ``records()`` reads the zone again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ingressfed.model import Changes, RecordKey, RecordSet
from providers.base import ApplyResult, Capabilities, Provider
from providers.batching import group_key

__all__ = ["CachedProvider"]

log = logging.getLogger(__name__)


class CachedProvider:
    """``CachedProvider(inner)``: same shape as ``inner``; reads it only when the copy is gone."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.zone: str = inner.zone
        self.capabilities: Capabilities = inner.capabilities
        self._sets: dict[RecordKey, RecordSet] | None = None
        self.hits = 0
        self.fetches = 0

    @property
    def fresh(self) -> bool:
        """Whether the next ``records()`` is served from memory."""
        return self._sets is not None

    def invalidate(self) -> None:
        """Forget the copy: the next ``records()`` reads the zone (full resync)."""
        self._sets = None

    async def records(self) -> list[RecordSet]:
        if self._sets is None:
            fetched = await self.inner.records()
            self.fetches += 1
            self._sets = {rs.key: rs for rs in fetched}
        else:
            self.hits += 1
        return list(self._sets.values())

    async def apply(self, changes: Changes) -> ApplyResult:
        if not changes:
            return ApplyResult(applied=0, failed={})
        try:
            result = await self.inner.apply(changes)
        except BaseException:
            # Some batches may have landed before the error: only the zone knows.
            self.invalidate()
            raise
        if self._sets is not None and not result.simulated:
            self._record(changes, result)
        return result

    def _record(self, changes: Changes, result: ApplyResult) -> None:
        failed_groups = {group_key(c) for c in changes.items if c.record.name in result.failed}
        done = [c for c in changes.items if group_key(c) not in failed_groups]
        if result.applied != len(done):
            log.info(
                "provider %s reported %d changes applied, expected %d; re-reading the zone next time",
                self.inner.name,
                result.applied,
                len(done),
            )
            self.invalidate()
            return
        assert self._sets is not None
        for change in done:
            if change.old is not None:
                self._sets.pop(change.old.key, None)
            if change.new is not None:
                self._sets[change.new.key] = change.new

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        return self.inner.adjust(desired)

    async def close(self) -> None:
        self._sets = None
        await self.inner.close()
