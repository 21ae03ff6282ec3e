"""The controller's own check of its edges: can their public address be reached where clients reach it?

A TCP connect to each published address of every edge on ``edgeHealth.probe.port``, every
``interval`` seconds; the registry counts consecutive failures (``core/quorum.edge_live``). The
edge's reports say the edge process is alive; this says its load balancer still carries traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ingressfed.edge.registry import EdgeRegistry

__all__ = ["connects", "probe_forever"]

log = logging.getLogger(__name__)


async def connects(address: str, port: int, *, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(address, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def probe_forever(
    registry: EdgeRegistry, *, port: int, interval: float, connect_within: float, clock: Callable[[], float]
) -> None:
    while True:
        targets = [(i.name, registry.addresses(i.name)) for i in registry.identities() if i.published]
        targets = [(name, addrs) for name, addrs in targets if addrs]

        async def one(addrs: tuple[str, ...]) -> bool:
            results = await asyncio.gather(*(connects(a, port, within=connect_within) for a in addrs))
            return any(results)

        outcomes = await asyncio.gather(*(one(addrs) for _, addrs in targets))
        now = clock()
        for (name, _), ok in zip(targets, outcomes, strict=True):
            registry.observe_probe(name, ok=ok, now=now)
        await asyncio.sleep(interval)
