"""proxy/joined.py: the data path's join, one writer reused by every call."""

from __future__ import annotations

import pytest

from ingressfed.proxy.joined import joined


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [b""],
        [b"GET", b" ", b"/", b" HTTP/1.1\r\nHost: ", b"a.example", b"\r\n\r\n"],
        [b"x" * 70_000, b"", b"y"],  # larger than any buffer the writer had before
        [bytes(range(256))] * 3,
    ],
)
def test_joined_is_join(parts: list[bytes]) -> None:
    assert joined(parts) == b"".join(parts)


def test_each_call_starts_empty_and_earlier_results_stay_as_they_were() -> None:
    long = joined([b"a" * 5000, b"b" * 5000])
    short = joined([b"c"])
    assert short == b"c"
    assert long == b"a" * 5000 + b"b" * 5000
    assert joined([]) == b""
