"""Requests per second and error rate per cluster from two samples of the proxy's counters (pure).

The proxy counts answered requests by serving cluster and status code
(``ingressfed_proxy_requests``); a rate is the difference of two samples over
the time between them. A counter that went down (a proxy restart) counts from
zero, as Prometheus' ``rate()`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ClusterRate", "Sample", "request_rates"]

Counts = Mapping[tuple[str, str], float]  # (cluster, status code) -> requests so far


@dataclass(frozen=True, slots=True)
class Sample:
    time: float  # seconds on any clock, the same for both samples
    counts: Counts


@dataclass(frozen=True, slots=True)
class ClusterRate:
    requests_per_second: float
    error_rate: float | None  # share of 5xx answers; None when there were no requests


def _is_error(code: str) -> bool:
    return code.startswith("5")


def request_rates(older: Sample, newer: Sample) -> dict[str, ClusterRate]:
    """Per serving cluster ('' is the proxy answering itself, e.g. 503 with no backend)."""
    span = newer.time - older.time
    if span <= 0:
        return {}
    total: dict[str, float] = {}
    errors: dict[str, float] = {}
    for (cluster, code), value in newer.counts.items():
        before = older.counts.get((cluster, code), 0.0)
        delta = value - before if value >= before else value
        total[cluster] = total.get(cluster, 0.0) + delta
        if _is_error(code):
            errors[cluster] = errors.get(cluster, 0.0) + delta
    return {
        cluster: ClusterRate(
            requests_per_second=n / span, error_rate=(errors.get(cluster, 0.0) / n) if n > 0 else None
        )
        for cluster, n in total.items()
    }
