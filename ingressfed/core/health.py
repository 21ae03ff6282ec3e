"""Cluster health as a pure state machine (time is an argument).

Federation v1 reported a member ``Ready`` when its API server answered its
health check, ``NotReady`` when it answered "not ready", and ``Offline`` when
it could not be reached. A status changes only after ``failure_threshold``
consecutive failures (or ``success_threshold`` consecutive successes), so one
lost probe does not move DNS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ingressfed.model import Cluster, ClusterStatus

__all__ = [
    "ClusterHealth",
    "HealthThresholds",
    "ProbeOutcome",
    "cluster_serves",
    "expire",
    "observe",
]


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    period: float = 10.0
    timeout: float = 3.0
    failure_threshold: int = 3
    success_threshold: int = 1

    def __post_init__(self) -> None:
        if self.period <= 0 or self.timeout <= 0:
            raise ValueError("period and timeout must be > 0")
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError("failure and success thresholds must be >= 1")


class ProbeOutcome(StrEnum):
    OK = "ok"
    NOT_READY = "not-ready"  # the API server answered, but not ready
    UNREACHABLE = "unreachable"  # connect error or timeout


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    # A member starts NotReady until its first successful probe(s).
    status: ClusterStatus = ClusterStatus.NOT_READY
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_probe_time: float | None = None
    last_transition_time: float | None = None
    reason: str = "NotProbed"


def observe(
    state: ClusterHealth, outcome: ProbeOutcome, *, now: float, thresholds: HealthThresholds
) -> ClusterHealth:
    """The health after one probe outcome at ``now``."""
    if outcome is ProbeOutcome.OK:
        successes = state.consecutive_successes + 1
        nxt = replace(state, consecutive_successes=successes, consecutive_failures=0, last_probe_time=now)
        if state.status is not ClusterStatus.READY and successes >= thresholds.success_threshold:
            return replace(nxt, status=ClusterStatus.READY, last_transition_time=now, reason="ProbeSucceeded")
        return nxt
    failures = state.consecutive_failures + 1
    nxt = replace(state, consecutive_failures=failures, consecutive_successes=0, last_probe_time=now)
    target = ClusterStatus.OFFLINE if outcome is ProbeOutcome.UNREACHABLE else ClusterStatus.NOT_READY
    reason = "Unreachable" if outcome is ProbeOutcome.UNREACHABLE else "NotReady"
    first_probe = state.last_probe_time is None
    if state.status is not target and (failures >= thresholds.failure_threshold or first_probe):
        # A member that never answered is reported at once: there is nothing to hold on to.
        return replace(nxt, status=target, last_transition_time=now, reason=reason)
    return nxt


def expire(state: ClusterHealth, *, now: float, thresholds: HealthThresholds) -> ClusterHealth:
    """Offline when no probe result arrived for ``failure_threshold`` periods (probe loop stuck)."""
    if state.last_probe_time is None or state.status is ClusterStatus.OFFLINE:
        return state
    window = thresholds.failure_threshold * thresholds.period + thresholds.timeout
    if now - state.last_probe_time > window:
        return replace(state, status=ClusterStatus.OFFLINE, last_transition_time=now, reason="ProbeStale")
    return state


def cluster_serves(cluster: Cluster) -> bool:
    """May this cluster's targets appear in DNS?

    A dead data plane removes it whatever the API server says; an unreachable
    API server alone does not remove a cluster whose data plane still answers.
    """
    if cluster.data_plane_healthy is False:
        return False
    if cluster.status is ClusterStatus.OFFLINE:
        return cluster.data_plane_healthy is True
    return True
