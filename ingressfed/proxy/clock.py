"""The proxy's clock, passed to every object that needs time instead of being read inside them.

``now`` is coarse: the server's tick sets it a few times a second, so the data path reads an
attribute rather than making a syscall per event; ``precise()`` is for latency measurements.
Tests build a ``Clock`` with a fixed ``now`` and their own ``precise``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock"]


class Clock:
    __slots__ = ("now", "precise")

    def __init__(self, now: float, precise: Callable[[], float]) -> None:
        self.now = now
        self.precise = precise

    def advance(self, now: float) -> None:
        self.now = now
