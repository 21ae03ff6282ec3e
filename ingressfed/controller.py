"""The reconcile loop: one pipeline, level-triggered, debounced.

    store.snapshot() -> desired_state -> provider.adjust -> provider.records
        -> plan -> provider.apply (only when the plan has changes) -> sinks

Sources never act: they write the Store, whose change callback calls
``schedule()``. A burst of changes within ``debounce`` seconds becomes one
reconcile; a full resync (fresh provider read) runs every ``resync`` seconds.
Provider errors never stop the loop: transient ones retry with backoff,
permanent ones surface in metrics and on the objects' status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ingressfed.core.desired import Desired, DesiredState, desired_state
from ingressfed.core.ownership import is_companion_name, owned_name, owned_names
from ingressfed.core.plan import Plan, plan
from ingressfed.core.routes import desired_routes
from ingressfed.errors import ProviderError
from ingressfed.metrics import ControllerMetrics
from ingressfed.model import Changes, Federation, RecordSet, Route, Snapshot
from ingressfed.store import Store
from providers.base import Provider

__all__ = ["Controller", "ControllerSettings", "ReconcileOutcome", "Sink", "applied_state"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    debounce: float = 0.2
    resync: float = 60.0
    routed: bool = False
    routed_services: bool | None = None  # None: as ``routed``
    retry_min: float = 1.0
    retry_max: float = 60.0
    # The provider's zone lives in this process (the embedded provider): every replica writes its
    # own copy, standby or not, so each replica's DNS server answers the full zone (see the ADR
    # "standby controllers serve DNS"). Leadership then gates only what replicas share: external
    # DNS providers and status write-back.
    zone_is_local: bool = False


@dataclass(frozen=True, slots=True)
class ReconcileOutcome:
    snapshot: Snapshot
    desired: DesiredState
    plan: Plan
    routes: tuple[Route, ...]
    records: tuple[RecordSet, ...]  # the zone as it stands after this reconcile
    applied: int = 0
    failed: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


Sink = Callable[[ReconcileOutcome], None]


@runtime_checkable
class Invalidatable(Protocol):
    def invalidate(self) -> None: ...


def applied_state(
    current: Sequence[RecordSet], changes: Changes, failed: Mapping[str, str]
) -> tuple[RecordSet, ...]:
    """The zone after ``changes`` where every name not in ``failed`` went through.

    Order is not meaningful (consumers that need one sort); nothing is re-sorted
    here because this runs on every reconcile over the whole zone.
    """
    if not changes:
        return tuple(current)
    removed: set[RecordSet] = set()
    added: list[RecordSet] = []
    for c in changes.items:
        name = c.record.name
        if name in failed or (is_companion_name(name) and owned_name(name) in failed):
            continue
        if c.old is not None:
            removed.add(c.old)
        if c.new is not None:
            added.append(c.new)
    return tuple(rs for rs in current if rs not in removed) + tuple(added)


class Controller:
    def __init__(
        self,
        *,
        federation: Federation,
        store: Store,
        provider: Provider,
        settings: ControllerSettings | None = None,
        metrics: ControllerMetrics | None = None,
        sinks: Sequence[Sink] = (),
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.federation = federation
        self.store = store
        self.provider = provider
        self.settings = settings or ControllerSettings()
        self.metrics = metrics or ControllerMetrics()
        self.sinks = list(sinks)
        self.is_leader = is_leader
        self.clock = clock
        self._sleep = sleep  # the debounce wait; tests pass one they release themselves
        self._dirty = asyncio.Event()
        self._full_pending = False
        self._first_change: float | None = None
        self._failures = 0
        self._retry_at: float | None = None
        self.last: ReconcileOutcome | None = None
        self.reconciles = 0
        # Records other parts add to the desired state (ACME dns-01 TXT): planned, owned and
        # removed like any other, through the same provider.
        self.extra_desired: list[Callable[[], Sequence[Desired]]] = []
        store.on_change = self.schedule

    def schedule(self, *, full: bool = False) -> None:
        """Mark the snapshot dirty; cheap, safe to call from any source callback.

        ``full`` also drops the provider cache so the next reconcile re-reads the zone.
        """
        if full:
            self._full_pending = True
        if self._first_change is None:
            self._first_change = self.clock()
        self._dirty.set()

    async def run(self) -> None:
        """Reconcile forever: on changes (debounced), on retry deadlines and on resync."""
        next_resync = self.clock()
        while True:
            now = self.clock()
            deadlines = [next_resync] + ([self._retry_at] if self._retry_at is not None else [])
            timeout = max(0.0, min(deadlines) - now)
            if not self._dirty.is_set():
                # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that
                # arrives as the event is set, and the loop would not stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._dirty.wait()
            if self._dirty.is_set() and self.settings.debounce > 0:
                await self._sleep(self.settings.debounce)
            now = self.clock()
            full = now >= next_resync
            if full:
                next_resync = now + self.settings.resync
            retry_due = self._retry_at is not None and now >= self._retry_at
            if self._dirty.is_set() or full or retry_due:
                await self.reconcile_once(full=full)

    def _desired(self, snap: Snapshot) -> tuple[DesiredState, list[Desired]]:
        state = desired_state(
            self.federation,
            snap,
            routed=self.settings.routed,
            routed_services=self.settings.routed_services,
            weighted=self.provider.capabilities.weighted,
        )
        wanted = list(state.records)
        for extra in self.extra_desired:
            wanted.extend(extra())
        records = [d.record for d in wanted]
        adjusted = self.provider.adjust(records)
        if len(adjusted) == len(records) and all(a is b for a, b in zip(adjusted, records, strict=True)):
            return state, wanted  # the common case: the provider changed nothing
        resource_of = {d.record.name: d.resource for d in wanted}
        return state, [Desired(rs, resource_of[rs.name]) for rs in adjusted if rs.name in resource_of]

    async def reconcile_once(self, *, full: bool = False) -> ReconcileOutcome:
        self._dirty.clear()
        started = self.clock()
        first_change, self._first_change = self._first_change, None
        snap = self.store.snapshot()
        state, desired = self._desired(snap)
        routes = desired_routes(snap)
        self._observe_snapshot(snap, state)
        full, self._full_pending = full or self._full_pending, False
        if full and isinstance(self.provider, Invalidatable):
            self.provider.invalidate()
        outcome: ReconcileOutcome
        try:
            current = await self.provider.records()
            p = plan(current, desired, owner_id=self.federation.owner_id, policy=self.federation.policy)
            applied, failed = 0, {}
            # Read once: leadership gained between two reads would publish (feed, status) changes
            # this reconcile never sent to the provider.
            leading = self.is_leader() or self.settings.zone_is_local
            if p.changes and leading:
                result = await self.provider.apply(p.changes)
                applied, failed = result.applied, dict(result.failed)
                self._count_changes(p.changes, failed)
            records = applied_state(current, p.changes, failed) if leading else tuple(current)
            outcome = ReconcileOutcome(snap, state, p, routes, records, applied, failed)
            self._failures, self._retry_at = 0, None
            self.metrics.reconciles.labels("success" if not failed else "partial").inc()
            self.metrics.conflicts.set(len(p.conflicts))
            self.metrics.failed_records.set(len(failed))
            if full or self.reconciles == 0:
                # A scan of the whole zone: kept off the per-change path, refreshed each resync.
                self.metrics.records_owned.set(_count_owned(records, self.federation.owner_id))
            self.metrics.last_success.set(time.time())
            if first_change is not None:
                self.metrics.change_to_applied.observe(max(0.0, self.clock() - first_change))
            for conflict in p.conflicts:
                log.warning(
                    "%s left untouched: %s", conflict.name, conflict.reason, extra={"record": conflict.name}
                )
            for name, reason in failed.items():
                log.error("provider rejected record set %s: %s", name, reason, extra={"record": name})
        except ProviderError as e:
            self._failures += 1
            delay = min(self.settings.retry_max, self.settings.retry_min * 2 ** (self._failures - 1))
            self._retry_at = self.clock() + delay
            if first_change is not None and self._first_change is None:
                self._first_change = first_change  # still not applied
            kind = "transient" if e.transient else "permanent"
            self.metrics.reconciles.labels(f"error-{kind}").inc()
            log.error("reconcile failed (%s), retrying in %.1fs: %s", kind, delay, e)
            prior = self.last.records if self.last else ()
            outcome = ReconcileOutcome(snap, state, Plan(Changes()), routes, prior, error=str(e))
        finally:
            self.metrics.reconcile_duration.observe(max(0.0, self.clock() - started))
        self.reconciles += 1
        self.last = outcome
        for sink in self.sinks:
            try:
                sink(outcome)
            except Exception:
                # A broken consumer (status writer, feed) must not stop DNS programming.
                log.exception("reconcile sink failed")
        return outcome

    def _observe_snapshot(self, snap: Snapshot, state: DesiredState) -> None:
        self.metrics.snapshot_objects.labels("clusters").set(len(snap.clusters))
        self.metrics.snapshot_objects.labels("services").set(len(snap.services))
        self.metrics.snapshot_objects.labels("ingresses").set(len(snap.ingresses))
        self.metrics.problems.set(len(state.problems))

    def _count_changes(self, changes: Changes, failed: Mapping[str, str]) -> None:
        for c in changes.items:
            if c.record.name in failed:
                continue
            self.metrics.changes_applied.labels(c.action.value, c.record.type.value).inc()


def _count_owned(records: Sequence[RecordSet], owner_id: str) -> int:
    """Record sets (companions included) at names the owner holds."""
    owned = owned_names(records, owner_id)
    return len(owned) + sum(1 for r in records if r.name in owned)
