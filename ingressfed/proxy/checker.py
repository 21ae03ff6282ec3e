"""Active health checks: one HTTP GET per backend per interval, results folded by the router."""

from __future__ import annotations

import asyncio
import logging

from ingressfed.model import Backend
from ingressfed.proxy.routing import Router
from ingressfed.proxy.settings import HealthCheckSettings

__all__ = ["HealthChecker", "probe"]

log = logging.getLogger(__name__)


async def probe(backend: Backend, *, host: str, path: str, within: float) -> bool:
    """True when the backend answers ``GET path`` (``Host: host``) within ``within`` seconds with a
    status below 500. An ingress answering 404 for a path the app lacks is alive and routing; what
    takes a cluster's data plane down is no answer, a timeout, or a 5xx (no ready pods, broken LB)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(backend.host, backend.port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ingressfed-health\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status_line = await reader.readline()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return False
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.split(b" ", 2)
    return (
        len(parts) >= 2
        and parts[0].startswith(b"HTTP/1.")
        and len(parts[1]) == 3
        and parts[1].isdigit()
        and 200 <= int(parts[1]) < 500
    )


class HealthChecker:
    def __init__(self, router: Router, settings: HealthCheckSettings) -> None:
        self.router = router
        self.settings = settings

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            table = self.router.table
            backends = sorted(table.backends, key=lambda b: (b.cluster, b.host, b.port))
            if backends:
                results = await asyncio.gather(
                    *(
                        probe(
                            b,
                            host=table.check_hosts[b],
                            path=self.settings.path,
                            within=self.settings.timeout,
                        )
                        for b in backends
                    )
                )
                now = loop.time()
                for backend, ok in zip(backends, results, strict=True):
                    self.router.record_check(backend, ok=ok, now=now)
            await asyncio.sleep(max(0.0, self.settings.interval - (loop.time() - started)))
