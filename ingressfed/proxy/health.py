"""Backend health as pure state transitions: active checks and passive ejection.

Nothing here does I/O or reads a clock: the checker and the data path feed outcomes in
with ``now`` and keep the returned state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "BackendHealth",
    "CheckThresholds",
    "EjectionPolicy",
    "is_available",
    "observe_check",
    "observe_request",
]


@dataclass(frozen=True, slots=True)
class CheckThresholds:
    unhealthy: int = 2  # consecutive failed checks that take a backend down
    healthy: int = 2  # consecutive passed checks that bring it back


@dataclass(frozen=True, slots=True)
class EjectionPolicy:
    consecutive_failures: int = 3
    base_seconds: float = 2.0
    max_seconds: float = 60.0


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
        return replace(state, request_failures=0, ejections=0, ejected_until=None)
    if state.ejected_until is not None and now < state.ejected_until:
        return state  # already out; late results of requests sent before the ejection
    on_probation = state.ejections > 0
    failures = state.request_failures + 1
    if on_probation or failures >= policy.consecutive_failures:
        backoff = min(policy.max_seconds, policy.base_seconds * (2**state.ejections))
        return replace(state, request_failures=0, ejections=state.ejections + 1, ejected_until=now + backoff)
    return replace(state, request_failures=failures)


def is_available(state: BackendHealth, *, now: float) -> bool:
    return state.checked_up and (state.ejected_until is None or now >= state.ejected_until)
