"""An edge's checks of the other edges: can their public addresses be reached from here?

Every ``interval`` seconds (jittered by ±20 %, so a fleet started together does not check in
lockstep) the edge asks the controller who its peers are (``GET /v1/edges``, the read API it
already has the feed token for: no feed change) and sends one HTTP request to each published
address of every other edge on the peers' proxy port. Any HTTP answer counts as reachable: the
proxy answers a Host it does not serve with 404, which proves a process there parses requests.
A TCP connect alone would not: a hung or stopped proxy still completes the handshake from its
listen backlog. The controller counts these views by quorum (``core/quorum.peers_decide``).

With the controller away the last list of peers is kept: the checks go on, reports wait.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import ssl
from collections.abc import Callable, Iterable, Mapping

import aiohttp

__all__ = ["PeerChecker", "reachable"]

log = logging.getLogger(__name__)

# A Host no federation serves: the proxy answers it itself (404), never forwarding it anywhere.
_PROBE_HOST = "ingressfed-peer-check.invalid"


async def reachable(session: aiohttp.ClientSession, address: str, port: int, *, within: float) -> bool:
    """Whether an HTTP server answers at ``address:port`` within ``within`` seconds."""
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    try:
        async with session.get(
            f"http://{host}:{port}/",
            headers={"Host": _PROBE_HOST, "User-Agent": "ingressfed-peer-check"},
            timeout=aiohttp.ClientTimeout(total=within),
            allow_redirects=False,
        ) as resp:
            return resp.status > 0
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


class PeerChecker:
    def __init__(
        self,
        *,
        edge: str,
        controller: str,
        token: str | None,
        port: int,
        interval: float,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.edge = edge
        self.url = f"{controller.rstrip('/')}/v1/edges"
        self.token = token
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.on_change = on_change
        self._peers: dict[str, tuple[str, ...]] = {}
        self._results: dict[str, bool] = {}

    def results(self) -> tuple[tuple[str, bool], ...]:
        """The last round's outcome per peer, for the next health report."""
        return tuple(sorted(self._results.items()))

    async def _fetch_peers(self, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with session.get(
                self.url,
                headers=headers,
                ssl=self.ssl_context if self.ssl_context is not None else True,
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                if resp.status != 200:
                    log.warning(
                        "edge %s: peer list: %s answered %d",
                        self.edge,
                        self.url,
                        resp.status,
                        extra={"edge": self.edge},
                    )
                    return
                doc = await resp.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.info(
                "edge %s: peer list not fetched (keeping the last): %s",
                self.edge,
                exc,
                extra={"edge": self.edge},
            )
            return
        self._peers = _peers_of(doc, self.edge)

    async def check_once(self, session: aiohttp.ClientSession) -> None:
        await self._fetch_peers(session)
        peers = dict(self._peers)

        async def one(addrs: Iterable[str]) -> bool:
            got = await asyncio.gather(
                *(reachable(session, a, self.port, within=self.timeout) for a in addrs)
            )
            return any(got)

        outcomes = await asyncio.gather(*(one(addrs) for addrs in peers.values()))
        results = dict(zip(peers, outcomes, strict=True))
        for name in results.keys() | self._results.keys():
            if results.get(name) != self._results.get(name) and name in results:
                log.log(
                    logging.INFO if results[name] else logging.WARNING,
                    "edge %s: peer %s %s at %s port %d",
                    self.edge,
                    name,
                    "reachable" if results[name] else "unreachable",
                    ",".join(peers[name]),
                    self.port,
                    extra={"edge": self.edge, "peer": name},
                )
        changed = results != self._results
        self._results = results
        if changed:
            self.on_change()

    async def run(self) -> None:
        # A new connection per check: that is what a client's first request meets (a pooled one
        # would hide a listener that stopped accepting).
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            while True:
                await self.check_once(session)
                await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))


def _peers_of(doc: object, edge: str) -> dict[str, tuple[str, ...]]:
    """The published edges other than ``edge`` and their addresses, from a ``GET /v1/edges`` answer."""
    out: dict[str, tuple[str, ...]] = {}
    rows = doc.get("edges") if isinstance(doc, Mapping) else None
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping) or row.get("name") == edge or row.get("published") is False:
            continue
        name, addrs = row.get("name"), row.get("addresses")
        if not isinstance(name, str) or not isinstance(addrs, list):
            continue
        valid = []
        for a in addrs:
            try:
                valid.append(ipaddress.ip_address(a).compressed)
            except (TypeError, ValueError):
                continue
        if valid:
            out[name] = tuple(valid)
    return out
