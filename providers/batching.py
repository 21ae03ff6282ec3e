"""Batches and failure isolation shared by every provider.

``split`` cuts a plan's changes into batches under a provider's limits (number
of changes, of values, of value characters; each provider says what a change
costs, e.g. Route53 counts an UPSERT twice) and never separates the changes of
one name (a name and its ``_ingressfed`` companion form one group), because an
A->CNAME swap half applied is worse than not applied. The plan emits a name's
changes contiguously; ``split`` relies on that and keeps order.

``apply_isolating`` applies one batch through a provider's atomic
``apply_batch``; when the backend refuses it for a permanent reason it drops
the group the error names, or bisects, so every good group is applied and each
bad one is reported in ``ApplyResult.failed``. A transient error propagates:
the reconcile retries next cycle. ``Backoff``/``retrying`` give providers the
jittered exponential backoff for in-call retries (throttling).

Nothing here does I/O: the callables passed in do.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ingressfed.core.ownership import COMPANION_PREFIX
from ingressfed.errors import PermanentProviderError, ProviderError
from ingressfed.model import Change, Changes
from providers.base import ApplyResult

__all__ = [
    "Backoff",
    "BatchLimits",
    "Cost",
    "apply_in_batches",
    "apply_isolating",
    "default_cost",
    "group_key",
    "groups",
    "retrying",
    "split",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cost:
    """What one change (or a batch) weighs against a provider's request limits."""

    changes: int = 0
    values: int = 0
    chars: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.changes + other.changes, self.values + other.values, self.chars + other.chars)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """Per-request limits; None means unlimited."""

    max_changes: int | None = 1000
    max_values: int | None = None
    max_chars: int | None = None

    def fits(self, cost: Cost) -> bool:
        return (
            (self.max_changes is None or cost.changes <= self.max_changes)
            and (self.max_values is None or cost.values <= self.max_values)
            and (self.max_chars is None or cost.chars <= self.max_chars)
        )


def default_cost(change: Change) -> Cost:
    """One change; the values it writes (or removes) and their characters."""
    rs = change.record
    return Cost(changes=1, values=len(rs.values), chars=sum(len(v) for v in rs.values))


def group_key(change: Change) -> str:
    """The name a change belongs to: its own, or the name its companion TXT claims."""
    name = change.record.name
    prefix = COMPANION_PREFIX + "."
    return name[len(prefix) :] if name.startswith(prefix) else name


def groups(changes: Changes) -> list[tuple[Change, ...]]:
    """Contiguous runs of changes with the same ``group_key``, in order."""
    out: list[list[Change]] = []
    last: str | None = None
    for change in changes.items:
        key = group_key(change)
        if out and key == last:
            out[-1].append(change)
        else:
            out.append([change])
        last = key
    return [tuple(g) for g in out]


def _total(items: Sequence[Change], cost: Callable[[Change], Cost]) -> Cost:
    total = Cost()
    for c in items:
        total = total + cost(c)
    return total


def split(
    changes: Changes, limits: BatchLimits, *, cost: Callable[[Change], Cost] = default_cost
) -> list[Changes]:
    """Batches under ``limits`` that keep each name's changes together.

    A group too big for one batch is split change by change (it cannot be
    helped); a single change over the limits goes alone and the backend judges it.
    """
    batches: list[list[Change]] = []
    current: list[Change] = []
    current_cost = Cost()

    def flush() -> None:
        nonlocal current, current_cost
        if current:
            batches.append(current)
        current, current_cost = [], Cost()

    for group in groups(changes):
        group_cost = _total(group, cost)
        if limits.fits(current_cost + group_cost):
            current.extend(group)
            current_cost = current_cost + group_cost
            continue
        flush()
        if limits.fits(group_cost):
            current, current_cost = list(group), group_cost
            continue
        log.warning(
            "changes for %s exceed one batch; applying them in several",
            group_key(group[0]),
            extra={"record": group_key(group[0])},
        )
        for change in group:
            c = cost(change)
            if not limits.fits(current_cost + c):
                flush()
            current.append(change)
            current_cost = current_cost + c
        flush()
    flush()
    return [Changes(tuple(b)) for b in batches]


def _failed_names(group_list: Sequence[tuple[Change, ...]], reason: str) -> dict[str, str]:
    return {c.record.name: reason for g in group_list for c in g}


async def apply_isolating(apply_batch: Callable[[Changes], Awaitable[None]], changes: Changes) -> ApplyResult:
    """Apply ``changes`` (one batch, atomic) so a bad group fails alone.

    On a permanent error: if it names a record in the batch, that record's group
    is reported failed and the rest retried at once; if it is ``batch_wide`` (no
    record to blame) it propagates at once; otherwise the batch is bisected at a
    group boundary. A group is the smallest unit: it is applied or
    reported whole.
    """
    if not changes:
        return ApplyResult(applied=0, failed={})
    try:
        await apply_batch(changes)
    except PermanentProviderError as err:
        if err.batch_wide:
            raise
        return await _isolate(apply_batch, groups(changes), err)
    return ApplyResult(applied=len(changes), failed={})


async def _isolate(
    apply_batch: Callable[[Changes], Awaitable[None]],
    group_list: list[tuple[Change, ...]],
    err: ProviderError,
) -> ApplyResult:
    reason = str(err)
    if len(group_list) == 1:
        name = group_key(group_list[0][0])
        log.warning("record set %s refused: %s", name, reason, extra={"record": name})
        return ApplyResult(applied=0, failed=_failed_names(group_list, reason))
    named = [g for g in group_list if err.record is not None and any(c.record.name == err.record for c in g)]
    if len(named) == 1:
        bad = named[0]
        log.warning("record set %s refused: %s", err.record, reason, extra={"record": err.record})
        rest = [g for g in group_list if g is not bad]
        result = await apply_isolating(apply_batch, Changes(tuple(c for g in rest for c in g)))
        return ApplyResult(result.applied, {**result.failed, **_failed_names([bad], reason)})
    middle = len(group_list) // 2
    applied = 0
    failed: dict[str, str] = {}
    for half in (group_list[:middle], group_list[middle:]):
        result = await apply_isolating(apply_batch, Changes(tuple(c for g in half for c in g)))
        applied += result.applied
        failed.update(result.failed)
    return ApplyResult(applied=applied, failed=failed)


async def apply_in_batches(
    apply_batch: Callable[[Changes], Awaitable[None]],
    changes: Changes,
    limits: BatchLimits,
    *,
    cost: Callable[[Change], Cost] = default_cost,
) -> ApplyResult:
    """``split`` then ``apply_isolating`` each batch, in order. A transient error
    stops here and propagates; batches before it stay applied (the next plan
    starts from what is there)."""
    applied = 0
    failed: dict[str, str] = {}
    for batch in split(changes, limits, cost=cost):
        result = await apply_isolating(apply_batch, batch)
        applied += result.applied
        failed.update(result.failed)
    return ApplyResult(applied=applied, failed=failed)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits U(0, min(cap, base * 2**n))."""

    base: float = 0.2
    cap: float = 10.0
    attempts: int = 6  # calls in total, the first included

    def delay(self, attempt: int, rand: float) -> float:
        return rand * min(self.cap, self.base * float(2**attempt))


async def retrying(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: Callable[[BaseException], bool],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Await ``call()`` until it succeeds, retrying errors ``retry_on`` accepts,
    at most ``backoff.attempts`` calls; the last error propagates."""
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as err:
            attempt += 1
            if attempt >= backoff.attempts or not retry_on(err):
                raise
            wait = backoff.delay(attempt - 1, rand())
            log.info("retrying after %.2fs: %s", wait, err)
            await sleep(wait)
