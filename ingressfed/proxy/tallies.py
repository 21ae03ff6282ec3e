"""The per-request numbers the data path keeps: requests by cluster and status, and upstream
latency buckets. Plain integers on one event loop thread, no locks; ``proxy/metrics`` turns
them into Prometheus families at scrape time.

A module of its own so that it can be compiled with the request path (ADR 0016): ``metrics``
cannot be, its collector has a prometheus_client base, and every request paid two interpreted
calls into it (about 5 % of the proxy's instructions per request, callgrind).
"""

from __future__ import annotations

from typing import Final

__all__ = ["LATENCY_BUCKETS", "LatencyBuckets", "Tallies"]

# A list, not a Final tuple: mypyc keeps a Final tuple of floats unboxed and builds a new tuple of
# new floats on every use.
_BOUNDS: Final[list[float]] = [
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
]
LATENCY_BUCKETS = tuple(_BOUNDS)  # the histogram's upper bounds, for the scrape


class LatencyBuckets:
    """One cluster's histogram: ``buckets[i]`` counts observations at most ``LATENCY_BUCKETS[i]``
    (and above the bound before it); the last one is +Inf."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(_BOUNDS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        i = 0
        for bound in _BOUNDS:  # most answers land in the first buckets
            if seconds <= bound:
                break
            i += 1
        self.buckets[i] += 1
        self.total += seconds


class Tallies:
    def __init__(self) -> None:
        # cluster ("" when the proxy answered itself) -> status -> count: keyed by the cluster's
        # long-lived name (its hash is cached) and a small int, not by a (cluster, status) tuple
        # built, hashed and compared per request.
        self.by_cluster: dict[str, dict[int, int]] = {}
        self.latencies: dict[str, LatencyBuckets] = {}

    @property
    def requests(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (serving cluster or "", status code)."""
        return {(cluster, code): n for cluster, codes in self.by_cluster.items() for code, n in codes.items()}

    def count_request(self, cluster: str, code: int) -> None:
        counts = self.by_cluster.get(cluster)
        if counts is None:
            counts = self.by_cluster[cluster] = {}
        counts[code] = counts.get(code, 0) + 1

    def observe_latency(self, cluster: str, seconds: float) -> None:
        hist = self.latencies.get(cluster)
        if hist is None:
            hist = self.latencies[cluster] = LatencyBuckets()
        hist.observe(seconds)
