"""Renewal and backoff decisions (pure)."""

from __future__ import annotations

import datetime

from ingressfed.acme.renewal import Attempt, after_failure, due

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def test_due_without_a_certificate_or_within_the_renewal_window() -> None:
    assert due(None, NOW, 30 * DAY)
    assert due(NOW + 29 * DAY, NOW, 30 * DAY)
    assert not due(NOW + 31 * DAY, NOW, 30 * DAY)


def test_backoff_doubles_and_a_longer_retry_after_wins() -> None:
    first = after_failure(Attempt(), NOW, retry_after=None)
    second = after_failure(first, NOW, retry_after=None)
    assert first.not_before == NOW + datetime.timedelta(minutes=1)
    assert second.not_before == NOW + datetime.timedelta(minutes=2)
    limited = after_failure(second, NOW, retry_after=3 * 86400)
    assert limited.not_before == NOW + 3 * DAY  # beyond the 24 h cap: the CA decides
    assert not limited.allowed(NOW + 2 * DAY) and limited.allowed(NOW + 3 * DAY)
