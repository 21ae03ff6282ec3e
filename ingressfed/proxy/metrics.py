"""Prometheus metrics of one proxy, in its own registry so several proxies can share a process.

The per-request counters are plain integers gathered by a custom collector at scrape time:
prometheus_client's own counters take a lock per increment, which the data path does not need
(it runs on one event loop thread).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["LATENCY_BUCKETS", "ProxyMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Latency:
    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class _HotPath(Collector):
    def __init__(self, metrics: ProxyMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "ingressfed_proxy_requests",
            "Requests answered, by serving cluster ('' when the proxy answered itself) and status code",
            labels=["cluster", "code"],
        )
        for (cluster, code), count in sorted(self.metrics.request_counts.items()):
            requests.add_metric([cluster, str(code)], count)
        yield requests
        latency = HistogramMetricFamily(
            "ingressfed_proxy_upstream_latency_seconds",
            "Time from request sent upstream to response headers received",
            labels=["cluster"],
        )
        for cluster, hist in sorted(self.metrics.latencies.items()):
            cumulative, running = [], 0
            for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), hist.buckets, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            latency.add_metric([cluster], cumulative, hist.total)
        yield latency


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.request_counts: dict[tuple[str, int], int] = {}
        self.latencies: dict[str, _Latency] = {}
        self.registry.register(_HotPath(self))
        self.retries = Counter(
            "ingressfed_proxy_retries",
            "Requests retried on another attempt",
            ["cluster"],
            registry=self.registry,
        )
        self.ejections = Counter(
            "ingressfed_proxy_ejections",
            "Backends passively ejected after consecutive failures",
            ["cluster"],
            registry=self.registry,
        )
        self.client_timeouts = Counter(
            "ingressfed_proxy_client_timeouts",
            "Client connections closed by a deadline: head (request head too slow), body (request "
            "body silent or below the minimum rate), idle (keep-alive without a request), send (a "
            "client reading nothing of its response)",
            ["phase"],
            registry=self.registry,
        )
        self.refused_connections = Counter(
            "ingressfed_proxy_refused_connections",
            "Client connections refused at accept: total or per_client connection cap reached",
            ["reason"],
            registry=self.registry,
        )
        self.per_try_timeouts = Counter(
            "ingressfed_proxy_per_try_timeouts",
            "Attempts given up after timeouts.perTry without a response byte, by cluster",
            ["cluster"],
            registry=self.registry,
        )
        self.retry_budget_exhausted = Counter(
            "ingressfed_proxy_retry_budget_exhausted",
            "Retries not made because the retry budget was spent",
            registry=self.registry,
        )
        self.active_connections = Gauge(
            "ingressfed_proxy_active_connections", "Open client connections", registry=self.registry
        )
        self.backend_up = Gauge(
            "ingressfed_proxy_backend_up",
            "1 when the backend may receive traffic",
            ["cluster", "backend"],
            registry=self.registry,
        )

    def count_request(self, cluster: str, code: int) -> None:
        key = (cluster, code)
        counts = self.request_counts
        counts[key] = counts.get(key, 0) + 1

    def observe_latency(self, cluster: str, seconds: float) -> None:
        hist = self.latencies.get(cluster)
        if hist is None:
            hist = self.latencies[cluster] = _Latency()
        hist.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist.total += seconds
