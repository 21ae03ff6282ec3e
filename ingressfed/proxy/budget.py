"""The retry budget: retries may never multiply load in an outage (in the manner of Envoy's
retry budgets). At any moment the exchanges on a retry are at most ``ratio`` of the exchanges in
flight, or ``min_concurrent``, whichever is larger. A pure counter: no clock, no I/O.

Retries that succeed finish in milliseconds, so failing over from one hung or dead cluster spends
little of the budget at once; when the next cluster is slow too, retries pile up and the budget
refuses more, and those requests get the error of their attempt instead. A per-try timeout is no
error: a request refused there keeps its attempt and asks again at the next tick (the timeouts of a
tick come due together, before any retry made in that tick can finish).
"""

from __future__ import annotations

__all__ = ["RetryBudget"]


class RetryBudget:
    __slots__ = ("active", "min_concurrent", "ratio", "refused", "retrying")

    def __init__(self, *, ratio: float, min_concurrent: int) -> None:
        self.ratio = ratio
        self.min_concurrent = min_concurrent
        self.active = 0  # exchanges started and not finished
        self.retrying = 0  # of those, the ones that have been retried at least once
        self.refused = 0

    def limit(self) -> float:
        return max(float(self.min_concurrent), self.ratio * self.active)

    def allows(self) -> bool:
        if self.retrying < self.limit():
            return True
        self.refused += 1
        return False
