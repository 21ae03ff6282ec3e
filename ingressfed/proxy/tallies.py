"""The per-request numbers the data path keeps: requests by cluster and status, and upstream
latency buckets. Plain integers on one event loop thread, no locks; ``proxy/metrics`` turns
them into Prometheus families at scrape time.

A module of its own so that it can be compiled with the request path (ADR 0016): ``metrics``
cannot be, its collector has a prometheus_client base, and every request paid two interpreted
calls into it (about 5 % of the proxy's instructions per request, callgrind).
"""

from __future__ import annotations

from typing import Final

__all__ = ["LATENCY_BUCKETS", "ClusterTally", "LatencyBuckets", "Tallies"]

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
_CODES: Final = 1000  # status codes have three digits (llhttp refuses any other)


class LatencyBuckets:
    """One cluster's histogram: ``buckets[i]`` counts observations at most ``LATENCY_BUCKETS[i]``
    (and above the bound before it); the last one is +Inf."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(_BOUNDS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        i = 0
        for bound in _BOUNDS:  # most answers land in the first buckets
            if seconds <= bound:
                break
            i += 1
        self.buckets[i] += 1
        self.total += seconds
        self.count += 1


class ClusterTally:
    """One cluster's numbers: requests by status code (an index, not a dict key), and upstream
    latency."""

    def __init__(self) -> None:
        self.codes = [0] * _CODES
        self.latency = LatencyBuckets()


class Tallies:
    def __init__(self) -> None:
        # cluster ("" when the proxy answered itself) -> its tally, keyed by the cluster's
        # long-lived name (its hash is cached), not by a (cluster, status) tuple built, hashed and
        # compared per request; the last cluster's tally is at hand without a lookup.
        self.by_cluster: dict[str, ClusterTally] = {}
        self._last = "\0"  # no cluster is named so
        self._last_tally = ClusterTally()

    def tally(self, cluster: str) -> ClusterTally:
        if cluster == self._last:
            return self._last_tally
        found = self.by_cluster.get(cluster)
        if found is None:
            found = self.by_cluster[cluster] = ClusterTally()
        self._last = cluster
        self._last_tally = found
        return found

    @property
    def requests(self) -> dict[tuple[str, int], int]:
        """Requests answered, by (serving cluster or "", status code)."""
        return {
            (cluster, code): n
            for cluster, tally in self.by_cluster.items()
            for code, n in enumerate(tally.codes)
            if n
        }

    @property
    def latencies(self) -> dict[str, LatencyBuckets]:
        """Upstream latency, for the clusters that have answered."""
        return {c: t.latency for c, t in self.by_cluster.items() if t.latency.count}

    def count_request(self, cluster: str, code: int) -> None:
        if 0 <= code < _CODES:
            self.tally(cluster).codes[code] += 1

    def observe_latency(self, cluster: str, seconds: float) -> None:
        self.tally(cluster).latency.observe(seconds)
