"""Reconnect delays: capped exponential backoff with jitter, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BackoffPolicy", "backoff_delay"]


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
