"""The edge side of health reporting: send the proxy's whole backend view every interval.

The view is sent whole, not as changes: a lost report is repaired by the next
one, and a backend that was healthy from the start and never changed is still
counted (the single-process mode lost exactly that before). Two ways out, one
report format: over HTTP to a remote controller (``http_submitter``), or
straight into the in-process registry (``local_submitter``) through the same
decoder the HTTP endpoint uses.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

import aiohttp

from ingressfed.edge.registry import EdgeRegistry
from ingressfed.edge.report import BackendState, ClusterReport, HealthReport, decode_report, encode_report
from ingressfed.model import Backend

__all__ = ["HealthReporter", "Submit", "http_submitter", "local_submitter", "report_url"]

log = logging.getLogger(__name__)

Submit = Callable[[bytes], Awaitable[None]]


class ReportRefused(Exception):
    """The controller answered a report with an error status."""


def report_url(controller: str, edge: str) -> str:
    return f"{controller.rstrip('/')}/v1/edges/{edge}/health"


class HealthReporter:
    def __init__(
        self,
        *,
        edge: str,
        view: Callable[[], Iterable[tuple[Backend, bool]]],
        submit: Submit,
        interval: float,
        addresses: Sequence[str] = (),
        min_spacing: float = 0.0,
        peers: Callable[[], tuple[tuple[str, bool], ...] | None] = lambda: None,
    ) -> None:
        """``min_spacing``: at least this long between two reports, however often it is poked
        (the controller refuses reports closer than its ``edgeHealth.minReportInterval``)."""
        self.edge = edge
        self.view = view
        self.submit = submit
        self.interval = interval
        self.addresses = tuple(addresses)
        self.min_spacing = min_spacing
        self.peers = peers  # the other edges, reachable from here (``edge/peers``); None: not checked
        # Numbered from the wall clock (ms) so that a restarted edge's reports sort after those of
        # its previous run: the controller ignores a report older than the last one it took.
        self.sequence = time.time_ns() // 1_000_000
        self.sent = 0
        self.failed = 0
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Send the next report now (a health change seen by the proxy), not at the next tick."""
        self._poked.set()

    def build(self) -> HealthReport:
        self.sequence += 1
        by_cluster: dict[str, list[BackendState]] = {}
        for b, up in self.view():
            by_cluster.setdefault(b.cluster, []).append((b.host, b.port, up))
        clusters = tuple(
            ClusterReport(name, tuple(sorted(states, key=lambda s: (s[0], s[1]))))
            for name, states in sorted(by_cluster.items())
        )
        return HealthReport(
            edge=self.edge,
            sequence=self.sequence,
            addresses=self.addresses,
            clusters=clusters,
            peers=self.peers(),
        )

    async def send_once(self) -> bool:
        body = encode_report(self.build())
        try:
            await self.submit(body)
        except (ReportRefused, aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.failed += 1
            # The controller being away is the static-stability case: keep serving, keep trying.
            log.warning("edge %s: health report not delivered: %s", self.edge, exc, extra={"edge": self.edge})
            return False
        self.sent += 1
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._poked.clear()
            await self.send_once()
            if self.min_spacing > 0:
                await asyncio.sleep(self.min_spacing)
            remaining = max(0.0, self.interval - (loop.time() - started))
            try:
                async with asyncio.timeout(remaining):
                    await self._poked.wait()
            except TimeoutError:
                pass


def local_submitter(registry: EdgeRegistry, clock: Callable[[], float]) -> Submit:
    async def submit(body: bytes) -> None:
        registry.accept(decode_report(body), now=clock())

    return submit


def http_submitter(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str | None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
) -> Submit:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"

    async def submit(body: bytes) -> None:
        async with session.post(
            url,
            data=body,
            headers=headers,
            ssl=ssl_context if ssl_context is not None else True,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            if resp.status != 204:
                text = (await resp.text())[:300]
                raise ReportRefused(f"{url} answered {resp.status}: {text}")

    return submit
