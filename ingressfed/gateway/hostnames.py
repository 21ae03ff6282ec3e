"""Gateway API hostname rules: wildcard matching, listener x route intersection, specificity.

``ANY`` stands for "every host" (a listener without a hostname, a route without hostnames).
A wildcard ``*.example.com`` matches ``a.example.com`` and ``a.b.example.com`` but never
``example.com`` itself, as the Listener ``hostname`` field defines.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ANY", "effective_hostnames", "host_matches", "intersect", "specificity"]

ANY = "*"


def host_matches(pattern: str, host: str) -> bool:
    """Does ``pattern`` (exact, ``*.suffix`` or ANY) match the concrete ``host``?"""
    if pattern == ANY:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def intersect(listener: str, route: str) -> str | None:
    """The hostnames both accept, as one pattern, or None when they share none.

    Both wildcards: the longer one when it lies inside the shorter (``*.a.example.com`` in
    ``*.example.com``). One wildcard: the exact name when the wildcard covers it.
    """
    if listener == ANY:
        return route
    if route == ANY:
        return listener
    lw, rw = listener.startswith("*."), route.startswith("*.")
    if not lw and not rw:
        return listener if listener == route else None
    if lw and not rw:
        return route if host_matches(listener, route) else None
    if rw and not lw:
        return listener if host_matches(route, listener) else None
    if route[1:].endswith(listener[1:]):
        return route
    if listener[1:].endswith(route[1:]):
        return listener
    return None


def effective_hostnames(listener: str | None, route: Iterable[str]) -> tuple[str, ...]:
    """What a route serves on one listener: the intersections, or the listener's own when it has none."""
    lhost = listener or ANY
    routes = tuple(route)
    if not routes:
        return (lhost,)
    out: list[str] = []
    for h in routes:
        got = intersect(lhost, h)
        if got is not None and got not in out:
            out.append(got)
    return tuple(out)


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key, most specific first: characters in a non-wildcard name, then characters at all."""
    if pattern == ANY:
        return (0, 0)
    if pattern.startswith("*."):
        return (0, -len(pattern))
    return (-len(pattern), -len(pattern))
