"""RateMeter: requests per second per cluster over a sliding second (time passed in)."""

from __future__ import annotations

import pytest

from ingressfed.proxy.rates import RateMeter


def test_counts_the_current_second() -> None:
    meter = RateMeter(100.0)
    for i in range(10):
        meter.record("eu", 100.0 + i * 0.05)
    assert meter.rate("eu", 100.6) == 10
    assert meter.rate("us", 100.6) == 0


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (101.0, 10.0),  # the bucket just ended: all of it is still within the last second
        (101.25, 7.5),  # a quarter of a second later, three quarters of it
        (101.5, 5.0),
        (101.99, pytest.approx(0.1, abs=1e-6)),
        (102.0, 0.0),  # a bucket ago
        (250.0, 0.0),  # long idle
    ],
)
def test_the_previous_second_fades_out_without_a_step(now: float, expected: float) -> None:
    meter = RateMeter(100.0)
    for _ in range(10):
        meter.record("eu", 100.5)
    assert meter.rate("eu", now) == expected


def test_a_steady_rate_reads_as_that_rate() -> None:
    meter = RateMeter(0.0)
    t = 0.0
    seen = []
    while t < 10.0:
        meter.record("eu", t)
        t += 0.02  # 50 requests per second
        seen.append(meter.rate("eu", t))
    assert all(45 <= r <= 55 for r in seen[60:])
