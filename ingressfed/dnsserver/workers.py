"""``dnsServer.workers: N`` (``dns-serve --workers N``): N-1 worker processes beside the primary,
all answering on the same address with SO_REUSEPORT (the kernel spreads UDP datagrams and TCP
connections over the processes' sockets).

The primary is the one process that follows the zone file or the feed, and sends zone transfer
NOTIFYs. Every zone it is handed goes on to the workers *as it was handed*: a change set (the feed's
delta, ``("delta", serial, base_serial, changes)``) or, when there is none (first view, a zone file
reload), the whole zone (``("zone", data)``). Each worker rebuilds the same ``ZoneData`` from its
last one and the changes (:func:`zone_after`) and passes both to ``DnsServer.update_soon`` -- the
same update function the primary's index went through, so every process serves the same serial.

Lifetimes: a worker reads its pipe; end of file (the primary exited, however it exited) ends the
worker, so none is orphaned. SIGTERM to the primary closes the pipes and waits for the workers.
A worker that dies on its own makes the primary exit non-zero (no restart: a supervisor -- the
kubelet, systemd -- restarts the whole server, which is simpler than re-seeding one worker while
changes flow, and a half-capacity server never goes unnoticed). See docs/dnsserver.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import ZoneData
from ingressfed.model import Change

__all__ = ["DnsWorkerPool", "WorkerDied", "follow_primary", "zone_after"]

log = logging.getLogger(__name__)

Connection = multiprocessing.connection.Connection


class WorkerDied(RuntimeError):
    """A DNS worker process exited while the primary was serving."""


def zone_after(data: ZoneData, serial: int, changes: Sequence[Change]) -> ZoneData:
    """The zone ``changes`` turn ``data`` into, at ``serial``; ordered like
    ``zone_data_from_records`` orders a feed view, so it equals the primary's."""
    out = ZoneData.following(data, changes, serial=serial)
    if out.needs_folding:
        out.records  # noqa: B018 (folds the chain of versions it holds)
    return out


class DnsWorkerPool:
    """The worker processes of one DNS server, started and stopped by the primary."""

    def __init__(self, count: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        """``target(inbox, number, *args)`` runs one worker in a spawned process."""
        self.count = count
        self.target = target
        self.args = args
        self.processes: list[BaseProcess] = []
        self.pipes: list[Connection] = []
        self.stopping = False

    def start(self, first: ZoneData) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of the primary's event loop
        for number in range(1, self.count + 1):
            inbox, outbox = context.Pipe(duplex=True)
            process = context.Process(
                target=self.target,
                args=(inbox, number, *self.args),
                name=f"ingressfed-dns-worker-{number}",
                daemon=True,
            )
            process.start()
            inbox.close()
            outbox.send(("zone", first))
            self.processes.append(process)
            self.pipes.append(outbox)
        log.info("DNS server for zone %s started %d worker processes", first.zone, self.count)

    def forward(self, data: ZoneData, changes: Sequence[Change] | None, base_serial: int | None) -> None:
        """``DnsServer.update_listeners`` hook: pass what the primary's server was handed on."""
        message: tuple[Any, ...] = (
            ("zone", data) if changes is None else ("delta", data.serial, base_serial, tuple(changes))
        )
        for number, pipe in enumerate(self.pipes, 1):
            try:
                pipe.send(message)
            except OSError:
                log.error(
                    "DNS worker %d of zone %s is gone; serial %d not sent", number, data.zone, data.serial
                )

    async def ready(self, seconds: float) -> None:
        """Wait until every worker serves the first zone (each answers "ready" once)."""
        for number, pipe in enumerate(self.pipes, 1):
            ok = await asyncio.to_thread(pipe.poll, seconds)
            try:
                said = pipe.recv() if ok else None
            except (EOFError, OSError):
                said = None
            if said != ("ready",):
                raise WorkerDied(f"DNS worker {number} did not start serving within {seconds:g}s")

    async def died(self) -> int:
        """Return the number of the first worker that exits (its process sentinel fires)."""
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[int] = loop.create_future()

        def fired(number: int) -> None:
            if not gone.done():
                gone.set_result(number)

        sentinels = [p.sentinel for p in self.processes]
        for number, fd in enumerate(sentinels, 1):
            loop.add_reader(fd, fired, number)
        try:
            return await gone
        finally:
            for fd in sentinels:
                loop.remove_reader(fd)

    async def stop(self, grace: float = 5.0) -> None:
        """Close the pipes (each worker ends on end of file) and wait; terminate stragglers."""
        self.stopping = True
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for number, process in enumerate(self.processes, 1):
            await asyncio.to_thread(process.join, max(0.0, deadline - loop.time()))
            if process.is_alive():
                log.warning("DNS worker %d did not stop within %gs; terminating it", number, grace)
                process.terminate()
                await asyncio.to_thread(process.join, 2.0)
        self.pipes.clear()
        self.processes.clear()


async def follow_primary(server: DnsServer, inbox: Connection) -> None:
    """A worker's zone source: the primary's messages, until its pipe ends."""
    loop = asyncio.get_running_loop()
    kind, held = await asyncio.to_thread(inbox.recv)
    if kind != "zone":
        raise ValueError(f"DNS worker: first message is {kind!r}, expected the whole zone")
    server.update_soon(held)
    await server.settled()
    inbox.send(("ready",))
    ended = asyncio.Event()

    def readable() -> None:
        nonlocal held
        try:
            while inbox.poll():
                message = inbox.recv()
                if message[0] == "zone":
                    held = message[1]
                    server.update_soon(held)
                else:
                    _, serial, base, changes = message
                    held = zone_after(held, serial, changes)
                    server.update_soon(held, changes, base_serial=base)
        except (EOFError, OSError):
            ended.set()

    loop.add_reader(inbox.fileno(), readable)
    try:
        await ended.wait()
    finally:
        loop.remove_reader(inbox.fileno())
    log.info("DNS worker for zone %s: the primary is gone; stopping", held.zone)
