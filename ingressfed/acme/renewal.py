"""When to order a certificate and when to try again: pure decisions, ``now`` is an argument."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

__all__ = ["Attempt", "after_failure", "due"]


def due(
    not_after: datetime.datetime | None, now: datetime.datetime, renew_before: datetime.timedelta
) -> bool:
    """Order when there is no certificate or it expires within ``renew_before``."""
    return not_after is None or not_after - now <= renew_before


@dataclass(frozen=True, slots=True)
class Attempt:
    """The failure history of one host: how many in a row, and the earliest next try."""

    failures: int = 0
    not_before: datetime.datetime | None = None

    def allowed(self, now: datetime.datetime) -> bool:
        return self.not_before is None or now >= self.not_before


def after_failure(
    previous: Attempt,
    now: datetime.datetime,
    *,
    retry_after: float | None,
    minimum: datetime.timedelta = datetime.timedelta(minutes=1),
    maximum: datetime.timedelta = datetime.timedelta(hours=24),
) -> Attempt:
    """Exponential backoff from ``minimum`` doubling to ``maximum``; a CA's ``Retry-After`` (a rate
    limit) is honoured when it asks for longer, even beyond ``maximum``: the CA decides."""
    failures = previous.failures + 1
    wait = min(maximum, minimum * 2 ** (failures - 1))
    if retry_after is not None:
        wait = max(wait, datetime.timedelta(seconds=retry_after))
    return Attempt(failures, now + wait)
