"""More event loops than one: ``proxy.workers: N`` runs N-1 worker processes beside the primary,
all accepting on the same port with SO_REUSEPORT (the kernel spreads connections over them).

The primary keeps everything that must exist once per proxy: the feed follower (or routes file),
the active health checks, the admin listener and the certificate sources. Every worker serves the
plain and the HTTPS port (both SO_REUSEPORT). The primary sends each worker every routing table it
swaps in, the active-check verdict of every backend whenever one changes, its certificate book
whenever that changes (the workers' TLS listeners have no sources of their own) and the fixed
answers the proxy gives (ACME http-01 tokens); passive ejection (failures a worker sees itself)
stays per worker. On drain every worker drains with the same grace and exits.

Messages on a pipe per worker (pickled tuples): ("table", routes, clusters, gateway),
("checks", {backend: up}), ("book", CertificateBook), ("answers", {path: (host, body)}),
("drain", grace); a worker answers ("ready",) once it serves, then ("metrics", snapshot) every
second, which the primary's /metrics adds to its own (``worker_metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from ingressfed.model import Backend, Cluster, Route
from ingressfed.proxy.settings import ProxySettings
from ingressfed.proxy.worker_metrics import FamilySnapshot
from ingressfed.tls.book import CertificateBook, Served
from ingressfed.tls.certificate import Certificate, CertificateError, parse_pair

__all__ = ["BookMessage", "WorkerPool", "book_from_message", "book_message", "checks_of", "worker_settings"]

log = logging.getLogger(__name__)


def worker_settings(settings: ProxySettings, port: int, tls_port: int | None = None) -> ProxySettings:
    """A worker's settings: the primary's data path on the primary's bound ports, and nothing that
    must exist once per proxy (checks, admin, certificate sources)."""
    tls = settings.tls
    if tls is not None:
        tls = dataclasses.replace(
            tls,
            port=tls_port if tls_port is not None else tls.port,
            certificate_dir=None,  # the primary loads it; its book reaches the worker whole
            default_certificate=None,
        )
    return dataclasses.replace(
        settings,
        port=port,
        workers=1,
        reuse_port=True,
        admin_port=None,
        tls=tls,
        health_check=dataclasses.replace(settings.health_check, enabled=False),
    )


class WorkerPool:
    """The worker processes of one proxy, started and stopped by the primary ``ProxyServer``."""

    def __init__(
        self,
        settings: ProxySettings,
        port: int,
        *,
        target: Callable[[ProxySettings, multiprocessing.connection.Connection, BookMessage | None], None],
        tls_port: int | None = None,
        metrics: dict[int, tuple[FamilySnapshot, ...]] | None = None,
    ) -> None:
        """``target(settings, inbox, book)`` runs one worker (``server.run_worker``: the server
        module is the composition root, so this module does not import it); ``metrics``: where
        each worker's newest metric snapshot is kept (the proxy's ``MergedCollector`` reads it)."""
        self.target = target
        self.settings = worker_settings(settings, port, tls_port)
        self.count = settings.workers - 1
        self.processes: list[BaseProcess] = []
        self.pipes: list[multiprocessing.connection.Connection] = []
        self._checks: dict[Backend, bool] = {}
        self._ready: set[int] = set()
        self.metrics = metrics if metrics is not None else {}  # worker -> its newest snapshot

    def start(self, book: CertificateBook | None = None) -> None:
        """``book``: the certificates the workers serve from their first handshake (later ones
        come over the pipe)."""
        context = multiprocessing.get_context("spawn")  # no copy of the primary's event loop
        first = book_message(book) if book is not None else None
        for number in range(self.count):
            # Duplex: tables and verdicts go down; one "ready" comes back once the worker serves.
            inbox, outbox = context.Pipe(duplex=True)
            process = context.Process(
                target=self.target,
                args=(self.settings, inbox, first),
                name=f"ingressfed-proxy-worker-{number + 1}",
                daemon=True,
            )
            process.start()
            inbox.close()
            self.processes.append(process)
            self.pipes.append(outbox)
        log.info("proxy started %d worker processes on port %s", self.count, self.settings.port)

    def _send(self, message: tuple[Any, ...]) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(message)
            except (BrokenPipeError, OSError):
                log.warning("proxy worker pipe closed; the worker is gone")

    def send_table(
        self, routes: Iterable[Route], clusters: Iterable[Cluster], gateway: Sequence[object]
    ) -> None:
        self._send(("table", tuple(routes), tuple(clusters), tuple(gateway)))

    def send_checks(self, checks: Mapping[Backend, bool]) -> None:
        """Forward active-check verdicts, only when one changed."""
        if dict(checks) != self._checks:
            self._checks = dict(checks)
            self._send(("checks", self._checks))

    def send_book(self, book: CertificateBook) -> None:
        """The primary's certificate book, served by every worker."""
        self._send(("book", book_message(book)))

    def send_answers(self, answers: Mapping[str, tuple[str, bytes]]) -> None:
        self._send(("answers", dict(answers)))

    async def drain(self, grace: float) -> None:
        self._send(("drain", grace))
        await self.wait(grace + 5.0)

    async def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` in all for the worker processes to exit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        for process in self.processes:
            remaining = max(0.0, deadline - loop.time())
            await asyncio.to_thread(process.join, remaining)

    def receive(self) -> None:
        """Take what the workers sent: "ready" once, then metric snapshots (the newest is kept)."""
        for i, pipe in enumerate(self.pipes):
            with contextlib.suppress(OSError, EOFError):
                while pipe.poll():
                    message = pipe.recv()
                    if message == ("ready",):
                        self._ready.add(i)
                        log.info("proxy worker %d is serving", i + 1)
                    elif isinstance(message, tuple) and len(message) == 2 and message[0] == "metrics":
                        self.metrics[i] = message[1]

    def ready(self) -> int:
        """How many workers have said they are serving (each sends "ready" once)."""
        self.receive()
        return len(self._ready)

    def alive(self) -> int:
        return sum(1 for p in self.processes if p.is_alive())

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.close()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join(5)
        self.pipes.clear()
        self.processes.clear()


# A certificate book as it crosses the pipe: (pairs, hosts, default). Private keys do not pickle
# (on purpose: nothing should serialise one by accident), so the pairs go as PEM explicitly, to a
# process of this same proxy only, and the worker parses them again.
BookMessage = tuple[dict[str, tuple[bytes, bytes]], dict[str, tuple[str, str]], str | None]


def book_message(book: CertificateBook) -> BookMessage:
    """fingerprint -> (chain PEM, key PEM); host -> (fingerprint, source); the default's fingerprint."""
    pairs: dict[str, tuple[bytes, bytes]] = {}
    hosts: dict[str, tuple[str, str]] = {}
    for host, served in book.entries.items():
        cert = served.certificate
        pairs[cert.fingerprint] = (cert.chain_pem, cert.key.reveal())
        hosts[host] = (cert.fingerprint, served.source)
    default = book.default
    if default is not None:
        pairs[default.fingerprint] = (default.chain_pem, default.key.reveal())
    return pairs, hosts, default.fingerprint if default is not None else None


def book_from_message(message: BookMessage) -> CertificateBook:
    """The book a primary sent (a pair that no longer parses is left out, logged by fingerprint)."""
    pairs, hosts, default = message
    parsed: dict[str, Certificate] = {}
    for fingerprint, (chain_pem, key_pem) in pairs.items():
        try:
            parsed[fingerprint] = parse_pair(chain_pem, key_pem)
        except CertificateError as exc:
            log.error("proxy worker: certificate %s from the primary refused: %s", fingerprint[:16], exc)
    entries = {
        host: Served(host=host, certificate=parsed[fp], source=source)
        for host, (fp, source) in hosts.items()
        if fp in parsed
    }
    return CertificateBook(entries=entries, default=parsed.get(default) if default else None)


def checks_of(health: Mapping[Backend, Any]) -> dict[Backend, bool]:
    """Active-check verdicts from a router's health map (``BackendHealth.checked_up``)."""
    return {backend: bool(state.checked_up) for backend, state in health.items()}
