"""The client-side deadline decisions both codecs share (pure: times and counts in, verdict out).

A request body is late when nothing of it arrived for ``body_read`` seconds, or when, over a window
longer than that, it arrived slower than ``min_rate`` bytes a second (0: no minimum). A codec
restarts the window whenever it pauses reading itself, so only the client's slowness counts.
"""

from __future__ import annotations

__all__ = ["BodyWindow", "late_body"]


def late_body(
    now: float,
    *,
    active: float,
    window_start: float,
    received: int,
    received_at_start: int,
    body_read: float,
    min_rate: int,
) -> str | None:
    """Why the body is late ("went silent", "below N bytes/s"), or None while it is not."""
    if now - active > body_read:
        return "went silent"
    elapsed = now - window_start
    if min_rate > 0 and elapsed > body_read and received - received_at_start < min_rate * elapsed:
        return f"below {min_rate} bytes/s"
    return None


class BodyWindow:
    """One request body's progress, as ``late_body`` judges it: when bytes last came, and the
    window (its start, and the bytes received before it) its rate is measured over."""

    __slots__ = ("active", "base", "since")

    def __init__(self, now: float, received: int = 0) -> None:
        self.active = self.since = now
        self.base = received

    def restart(self, now: float, received: int) -> None:
        """A new window from ``now`` (a new body, or the codec paused reading itself)."""
        self.active = self.since = now
        self.base = received

    def late(self, now: float, received: int, *, body_read: float, min_rate: int) -> str | None:
        return late_body(
            now,
            active=self.active,
            window_start=self.since,
            received=received,
            received_at_start=self.base,
            body_read=body_read,
            min_rate=min_rate,
        )
