"""Prometheus metrics of one proxy, in its own registry so several proxies can share a process.

The per-request counters are plain integers (``proxy/tallies``, compiled with the request path)
gathered by a custom collector at scrape time: prometheus_client's own counters take a lock per
increment, which the data path does not need (it runs on one event loop thread).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ingressfed.proxy.tallies import LATENCY_BUCKETS, Tallies

__all__ = ["LATENCY_BUCKETS", "ProxyMetrics"]


class _HotPath(Collector):
    def __init__(self, metrics: ProxyMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "ingressfed_proxy_requests",
            "Requests answered, by serving cluster ('' when the proxy answered itself) and status code",
            labels=["cluster", "code"],
        )
        for (cluster, code), count in sorted(self.metrics.tallies.requests.items()):
            requests.add_metric([cluster, str(code)], count)
        yield requests
        latency = HistogramMetricFamily(
            "ingressfed_proxy_upstream_latency_seconds",
            "Time from request sent upstream to response headers received",
            labels=["cluster"],
        )
        for cluster, hist in sorted(self.metrics.tallies.latencies.items()):
            cumulative, running = [], 0
            for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), hist.buckets, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            latency.add_metric([cluster], cumulative, hist.total)
        yield latency


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.tallies = Tallies()
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

    @property
    def request_counts(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (serving cluster or "", status code)."""
        return self.tallies.requests
