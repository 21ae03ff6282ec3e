"""Prometheus metrics of the controller, and a provider wrapper that counts real calls."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingressfed.errors import ProviderError
from ingressfed.model import Changes, RecordSet
from providers.base import ApplyResult, Capabilities, Provider

__all__ = ["ControllerMetrics", "MeteredProvider"]


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconciles = Counter("ingressfed_reconciles", "Reconcile runs by result", ["result"], registry=r)
        self.changes_applied = Counter(
            "ingressfed_changes_applied",
            "Record-set changes applied by action and type",
            ["action", "type"],
            registry=r,
        )
        self.provider_calls = Counter(
            "ingressfed_provider_calls", "Calls made to the DNS provider", ["provider", "op"], registry=r
        )
        self.provider_errors = Counter(
            "ingressfed_provider_errors", "DNS provider errors", ["provider", "kind"], registry=r
        )
        self.records_owned = Gauge(
            "ingressfed_records_owned", "Record sets owned (TXT companions included)", registry=r
        )
        self.snapshot_objects = Gauge(
            "ingressfed_snapshot_objects", "Objects in the current snapshot", ["kind"], registry=r
        )
        self.conflicts = Gauge(
            "ingressfed_conflicts", "Names skipped because another owner holds them", registry=r
        )
        self.problems = Gauge("ingressfed_problems", "Objects that could not be published", registry=r)
        self.failed_records = Gauge(
            "ingressfed_failed_records", "Record sets the provider rejected", registry=r
        )
        self.change_to_applied = Histogram(
            "ingressfed_change_to_applied_seconds",
            "Time from an observed change to its records applied",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "ingressfed_reconcile_duration_seconds", "Wall time of one reconcile", registry=r
        )
        self.last_success = Gauge(
            "ingressfed_last_successful_reconcile_timestamp_seconds",
            "Unix time of the last good reconcile",
            registry=r,
        )


class MeteredProvider:
    """Counts and times the calls that really reach the provider (below any cache)."""

    def __init__(self, inner: Provider, metrics: ControllerMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.name = inner.name
        self.zone = inner.zone
        self.capabilities: Capabilities = inner.capabilities

    async def records(self) -> list[RecordSet]:
        self.metrics.provider_calls.labels(self.name, "records").inc()
        try:
            return await self.inner.records()
        except ProviderError as e:
            self._error(e)
            raise

    async def apply(self, changes: Changes) -> ApplyResult:
        self.metrics.provider_calls.labels(self.name, "apply").inc()
        try:
            return await self.inner.apply(changes)
        except ProviderError as e:
            self._error(e)
            raise

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        return self.inner.adjust(desired)

    async def close(self) -> None:
        await self.inner.close()

    def _error(self, e: ProviderError) -> None:
        self.metrics.provider_errors.labels(self.name, "transient" if e.transient else "permanent").inc()


def now_unix() -> float:
    return time.time()
