"""Backend health as pure state transitions: active checks and passive ejection.

Nothing here does I/O or reads a clock: the checker and the data path feed outcomes in
with ``now`` and keep the returned state.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

__all__ = [
    "BackendHealth",
    "CheckThresholds",
    "EjectionPolicy",
    "eject",
    "is_available",
    "latency_outliers",
    "observe_check",
    "observe_request",
    "smoothed",
]


@dataclass(frozen=True, slots=True)
class CheckThresholds:
    unhealthy: int = 2  # consecutive failed checks that take a backend down
    healthy: int = 2  # consecutive passed checks that bring it back


@dataclass(frozen=True, slots=True)
class EjectionPolicy:
    consecutive_failures: int = 3  # connect errors, 5xx, lost connections and per-try timeouts
    base_seconds: float = 2.0
    max_seconds: float = 60.0
    # Latency outliers: a backend whose smoothed time to first byte is over latency_factor x the
    # median of the other backends (and over latency_floor seconds) is ejected like a failing one.
    latency_factor: float = 5.0
    latency_floor: float = 0.5
    latency_alpha: float = 0.3  # weight of a new sample in the smoothed latency
    latency_streak: int = 3  # consecutive answers over latency_floor before latency can eject


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """One backend's health. A new backend is presumed up until a check says otherwise,
    so that a fresh route table serves at once."""

    checked_up: bool = True
    check_failures: int = 0
    check_successes: int = 0
    request_failures: int = 0  # consecutive passive failures since the last success
    ejections: int = 0  # consecutive ejections; grows the backoff
    ejected_until: float | None = None


def observe_check(
    state: BackendHealth, ok: bool, *, now: float, thresholds: CheckThresholds
) -> BackendHealth:
    """Fold one active check result into the state (``now`` kept for symmetry and future use)."""
    del now
    if ok:
        successes = state.check_successes + 1
        up = state.checked_up or successes >= thresholds.healthy
        return replace(state, checked_up=up, check_failures=0, check_successes=successes)
    failures = state.check_failures + 1
    up = state.checked_up and failures < thresholds.unhealthy
    return replace(state, checked_up=up, check_failures=failures, check_successes=0)


def observe_request(
    state: BackendHealth, failed: bool, *, now: float, policy: EjectionPolicy
) -> BackendHealth:
    """Fold one proxied request outcome (connect error or 5xx = failed) into the state.

    After an ejection expires the backend is on probation: its first failure ejects it again
    with a doubled backoff; its first success clears the record.
    """
    if not failed:
        if state.request_failures == 0 and state.ejections == 0 and state.ejected_until is None:
            return state
        if state.ejected_until is not None and now < state.ejected_until:
            return state  # a late success of a request sent before the ejection does not end it
        return replace(state, request_failures=0, ejections=0, ejected_until=None)
    if state.ejected_until is not None and now < state.ejected_until:
        return state  # already out; late results of requests sent before the ejection
    on_probation = state.ejections > 0
    failures = state.request_failures + 1
    if on_probation or failures >= policy.consecutive_failures:
        return eject(state, now=now, policy=policy)
    return replace(state, request_failures=failures)


def eject(state: BackendHealth, *, now: float, policy: EjectionPolicy) -> BackendHealth:
    """Take a backend out for its next backoff (doubling per consecutive ejection)."""
    backoff = min(policy.max_seconds, policy.base_seconds * (2**state.ejections))
    return replace(state, request_failures=0, ejections=state.ejections + 1, ejected_until=now + backoff)


def smoothed(previous: float | None, sample: float, *, alpha: float) -> float:
    """Exponentially weighted moving average of times to first byte."""
    return sample if previous is None else previous + alpha * (sample - previous)


def latency_outliers(latencies: Mapping[K, float], *, factor: float, floor: float) -> frozenset[K]:
    """The keys whose latency is above ``floor`` and more than ``factor`` times the median of the
    others. Needs at least one other sample to compare with; at most half can be outliers, so a
    slow fleet is never ejected whole."""
    if len(latencies) < 2:
        return frozenset()
    ordered = sorted(latencies.values())
    found = []
    for key, value in latencies.items():
        if value > floor and value > factor * _median_without(ordered, value):
            found.append(key)
    if len(found) * 2 > len(latencies):
        return frozenset()
    return frozenset(found)


def _median_without(ordered: list[float], value: float) -> float:
    """Median of ``ordered`` (sorted) with one occurrence of ``value`` removed, in O(log n)."""
    skip = bisect_left(ordered, value)
    m = len(ordered) - 1

    def at(j: int) -> float:
        return ordered[j] if j < skip else ordered[j + 1]

    return at(m // 2) if m % 2 else (at(m // 2 - 1) + at(m // 2)) / 2


def is_available(state: BackendHealth, *, now: float) -> bool:
    return state.checked_up and (state.ejected_until is None or now >= state.ejected_until)
