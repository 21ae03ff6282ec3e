"""proxy.deadlines.late_body: the body deadline both codecs apply (table)."""

from __future__ import annotations

import pytest

from ingressfed.proxy.deadlines import late_body


@pytest.mark.parametrize(
    ("now", "active", "window_start", "received", "at_start", "min_rate", "why"),
    [
        (10.0, 9.5, 0.0, 50_000, 0, 0, None),  # flowing, no minimum
        (10.0, 8.0, 0.0, 50_000, 0, 0, "went silent"),  # nothing for 2 s > body_read 1 s
        (10.0, 9.0, 0.0, 50_000, 0, 0, None),  # exactly body_read: not yet
        (10.0, 9.9, 0.0, 5_000, 0, 1000, "below 1000 bytes/s"),  # 500 B/s over 10 s
        (10.0, 9.9, 0.0, 10_000, 0, 1000, None),  # exactly 1000 B/s
        (10.0, 9.9, 9.5, 10, 0, 1000, None),  # the window is younger than body_read: not judged
        (10.0, 9.9, 5.0, 9_000, 6_000, 1000, "below 1000 bytes/s"),  # 3,000 B in the last 5 s
    ],
)
def test_late_body(
    now: float,
    active: float,
    window_start: float,
    received: int,
    at_start: int,
    min_rate: int,
    why: str | None,
) -> None:
    got = late_body(
        now,
        active=active,
        window_start=window_start,
        received=received,
        received_at_start=at_start,
        body_read=1.0,
        min_rate=min_rate,
    )
    assert got == why
