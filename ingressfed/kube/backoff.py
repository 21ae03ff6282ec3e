"""Reconnect delays: capped exponential backoff with jitter, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REPORT_REPEAT", "BackoffPolicy", "FailureStreak", "backoff_delay", "failure_report"]

# While a member stays unreachable its watches fail on every retry; one report per streak, then one
# every REPORT_REPEAT seconds, keeps the log and the Events readable.
REPORT_REPEAT = 300.0


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5  # fraction of the delay that is randomised

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff needs 0 < base <= cap, factor >= 1, 0 <= jitter <= 1")


def backoff_delay(attempt: int, *, policy: BackoffPolicy, rand: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based); ``rand`` in [0, 1).

    The jitter spreads reconnects of many informers after an API server restart
    so that they do not arrive together.
    """
    exponent = min(max(attempt, 0), 64)  # past the cap the value no longer matters
    ceiling = min(policy.cap, policy.base * policy.factor**exponent)
    return ceiling * (1 - policy.jitter) + ceiling * policy.jitter * min(max(rand, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class FailureStreak:
    """Consecutive failures of one watch: when they began, when last reported, how many."""

    since: float
    reported: float
    count: int


def failure_report(
    streak: FailureStreak | None, now: float, *, repeat: float = REPORT_REPEAT
) -> tuple[FailureStreak, bool]:
    """The streak after one more failure at ``now``, and whether this failure is to be reported."""
    if streak is None:
        return FailureStreak(now, now, 1), True
    due = now - streak.reported >= repeat
    return FailureStreak(streak.since, now if due else streak.reported, streak.count + 1), due
