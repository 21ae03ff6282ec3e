"""Loopback fixtures: real backend servers (aiohttp) per cluster and a proxy in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from ingressfed.model import Backend, Cluster, Location, Route
from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import HealthCheckSettings, ProxySettings

US = Cluster(name="cluster-us-east1-b", region="us-east1", zone="us-east1-b", location=Location(33.2, -80.0))
EU = Cluster(
    name="cluster-europe-west1-b", region="europe-west1", zone="europe-west1-b", location=Location(50.4, 3.8)
)
ASIA = Cluster(
    name="cluster-asia-east1-a", region="asia-east1", zone="asia-east1-a", location=Location(24.0, 120.5)
)


@dataclass
class BackendServer:
    """An aiohttp app standing in for one cluster's ingress; records what reached it."""

    name: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    status_override: int | None = None
    health_status: int = 200
    health_hosts: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if self.status_override is not None:
            return web.Response(status=self.status_override, text=f"{self.name} says {self.status_override}")
        payload = {
            "cluster": self.name,
            "method": request.method,
            "path": request.path_qs,
            "headers": {k: v for k, v in request.headers.items()},
            "body_len": len(body),
        }
        return web.Response(text=json.dumps(payload), content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        self.health_hosts.append(request.host)
        return web.Response(status=self.health_status, text="ok")

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        self.seen.append(
            {"method": "WS", "path": request.path_qs, "headers": dict(request.headers), "body": b""}
        )
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == WSMsgType.TEXT:
                await sock.send_str(f"{self.name}:{msg.data}")
            elif msg.type == WSMsgType.BINARY:
                await sock.send_bytes(msg.data)
        return sock

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Streams ``n`` chunks of ``size`` bytes, pausing between them; waits on an event midway."""
        self.seen.append(
            {"method": "GET", "path": request.path_qs, "headers": dict(request.headers), "body": b""}
        )
        n = int(request.query.get("n", "10"))
        size = int(request.query.get("size", "65536"))
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b"x" * size
        for i in range(n):
            await resp.write(chunk)
            if i == 0:
                self.first_sent.set()
                await self.release.wait()
        await resp.write_eof()
        self.stream_finished.set()
        return resp

    async def upload(self, request: web.Request) -> web.Response:
        """Counts a request body as it arrives, never holding it whole."""
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            self.upload_progress.append(total)
        self.seen.append(
            {"method": request.method, "path": request.path, "headers": dict(request.headers), "body": b""}
        )
        return web.Response(text=str(total))

    async def start(self) -> BackendServer:
        self.first_sent = asyncio.Event()
        self.release = asyncio.Event()
        self.stream_finished = asyncio.Event()
        self.upload_progress: list[int] = []
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/ws", self.ws)
        app.router.add_get("/stream", self.stream)
        app.router.add_route("*", "/upload", self.upload)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # asyncio's or uvloop's
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def backend(self, cluster: str | None = None) -> Backend:
        return Backend(cluster=cluster or self.name, host="127.0.0.1", port=self.port)


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, BackendServer]]:
    servers = {c.name: await BackendServer(c.name).start() for c in (US, EU, ASIA)}
    yield servers
    for s in servers.values():
        await s.stop()


def settings(**overrides: Any) -> ProxySettings:
    base = ProxySettings(
        host="127.0.0.1",
        port=0,
        admin_host="127.0.0.1",
        admin_port=0,
        health_check=HealthCheckSettings(enabled=False),
    )
    return replace(base, **overrides)


def routes_for(
    host: str, servers: dict[str, BackendServer], path: str = "/", path_type: str = "Prefix"
) -> Route:
    return Route(
        host=host, path=path, path_type=path_type, backends=tuple(s.backend() for s in servers.values())
    )


@contextlib.asynccontextmanager
async def running_proxy(
    servers: dict[str, BackendServer], *, routes: list[Route] | None = None, **overrides: Any
) -> AsyncIterator[ProxyServer]:
    async with ProxyServer(settings(**overrides)) as proxy:
        proxy.update(
            routes if routes is not None else [routes_for("app.example.com", servers)], [US, EU, ASIA]
        )
        yield proxy


async def raw_exchange(port: int, data: bytes, *, read_timeout: float = 3.0) -> bytes:
    """Send raw bytes, return everything the proxy answers until it closes (or the timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            async with asyncio.timeout(read_timeout):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


Wait = Callable[[], bool]


async def eventually(predicate: Wait, *, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
