"""Requests per second per cluster, for spill-over by rate (``max-rate`` steering).

Two one-second buckets: the current one and the one before, the older weighted by the part of it
still inside the last second. One dict update per request, no timestamps kept, and no step at a
bucket's edge (the estimate a sliding-window limiter uses). The time is passed in.
"""

from __future__ import annotations

__all__ = ["RateMeter"]


class RateMeter:
    __slots__ = ("_current", "_previous", "_start")

    def __init__(self, now: float) -> None:
        self._start = now
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def _roll(self, now: float) -> float:
        """Move the buckets up to ``now``; the fraction of the current bucket already run."""
        elapsed = now - self._start
        if elapsed >= 1.0:
            if elapsed < 2.0:
                self._previous = self._current
                self._start += 1.0
            else:  # a second or more without a request: nothing of before counts any more
                self._previous = {}
                self._start = now
            self._current = {}
            elapsed = now - self._start
        return max(0.0, elapsed)

    def record(self, cluster: str, now: float) -> None:
        self._roll(now)
        self._current[cluster] = self._current.get(cluster, 0) + 1

    def rate(self, cluster: str, now: float) -> float:
        """Requests sent to ``cluster`` in the second before ``now`` (estimated)."""
        ran = self._roll(now)
        return self._previous.get(cluster, 0) * (1.0 - ran) + self._current.get(cluster, 0)
