"""A provider wrapper that enforces the federation's policy as a safety net.

The plan already honours the policy; this wrapper makes sure no code path can
get around it: changes the policy forbids are dropped and logged, never sent.
``sync`` allows everything, ``upsert-only`` no deletes, ``create-only`` only creates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ingressfed.model import Change, ChangeAction, Changes, Policy, RecordSet
from providers.base import ApplyResult, Capabilities, Provider

__all__ = ["PolicyProvider", "allowed"]

log = logging.getLogger(__name__)


def allowed(change: Change, policy: Policy) -> bool:
    if policy is Policy.SYNC:
        return True
    if policy is Policy.UPSERT_ONLY:
        return change.action is not ChangeAction.DELETE
    return change.action is ChangeAction.CREATE


class PolicyProvider:
    """``PolicyProvider(inner, policy)``: same shape as ``inner``; forbidden changes never reach it."""

    def __init__(self, inner: Provider, policy: Policy) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.zone: str = inner.zone
        self.capabilities: Capabilities = inner.capabilities
        self.policy = Policy(policy)
        self.dropped = 0

    async def records(self) -> list[RecordSet]:
        return await self.inner.records()

    def invalidate(self) -> None:
        """Pass a full resync through to a cache underneath, if there is one."""
        inner_invalidate = getattr(self.inner, "invalidate", None)
        if callable(inner_invalidate):
            inner_invalidate()

    async def apply(self, changes: Changes) -> ApplyResult:
        keep = tuple(c for c in changes.items if allowed(c, self.policy))
        for c in changes.items:
            if not allowed(c, self.policy):
                self.dropped += 1
                log.warning(
                    "policy %s forbids %s %s %s; not applied",
                    self.policy.value,
                    c.action.value,
                    c.record.type.value,
                    c.record.name,
                    extra={"record": c.record.name, "policy": self.policy.value},
                )
        if not keep:
            return ApplyResult(applied=0, failed={})
        return await self.inner.apply(Changes(keep))

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        return self.inner.adjust(desired)

    async def close(self) -> None:
        await self.inner.close()
