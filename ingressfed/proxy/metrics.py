"""Prometheus metrics of one proxy, in its own registry so several proxies can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ProxyMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "ingressfed_proxy_requests",
            "Requests answered, by serving cluster ('' when none) and status code",
            ["cluster", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ingressfed_proxy_upstream_latency_seconds",
            "Time from request sent upstream to response headers received",
            ["cluster"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
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
        self.active_connections = Gauge(
            "ingressfed_proxy_active_connections", "Open client connections", registry=self.registry
        )
        self.backend_up = Gauge(
            "ingressfed_proxy_backend_up",
            "1 when the backend may receive traffic",
            ["cluster", "backend"],
            registry=self.registry,
        )
        # labels() costs a lock and a dict lookup; the hot path keeps the children it has seen.
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def count_request(self, cluster: str, code: int) -> None:
        child = self._request_children.get((cluster, code))
        if child is None:
            child = self._request_children[(cluster, code)] = self.requests.labels(cluster, str(code))
        child.inc()

    def observe_latency(self, cluster: str, seconds: float) -> None:
        child = self._latency_children.get(cluster)
        if child is None:
            child = self._latency_children[cluster] = self.latency.labels(cluster)
        child.observe(seconds)
