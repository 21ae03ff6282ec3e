from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from ingressfed.feed.publisher import FeedPublisher, add_feed_routes
from ingressfed.feed.view import FeedView
from ingressfed.model import Backend, Cluster, ClusterStatus, Location, RecordSet, RecordType, Route, Routing
from tests.fakes.tls import self_signed


def sample_view(n: int = 1, *, zone: str = "example.com") -> FeedView:
    """A view whose content depends on ``n`` (version and epoch are the publisher's business)."""
    return FeedView(
        version=0,
        records=(
            RecordSet(
                f"k8shserver.default.federation.svc.{zone}", RecordType.A, 30, (f"10.0.0.{n}", "10.0.1.1")
            ),
            RecordSet(
                f"k8shserver.default.federation.svc.{zone}",
                RecordType.AAAA,
                30,
                ("2001:db8::1",),
                set_identifier="cluster-a",
                routing=Routing("cluster-a", "us-east1", Location(33.2, -80.0), 100, "NA", "US"),
            ),
            RecordSet(f"_ingressfed.www.{zone}", RecordType.TXT, 30, ('"heritage=ingressfed"',)),
        ),
        routes=(Route(f"www.{zone}", "/", "Prefix", (Backend("cluster-a", "127.0.0.1", 8000 + n),)),),
        clusters=(
            Cluster(
                "cluster-a", "us-east1", "us-east1-b", Location(33.2, -80.0), 100, ClusterStatus.READY, True
            ),
            Cluster("cluster-b", "europe-west1", "europe-west1-b", None, 50, ClusterStatus.OFFLINE, None),
        ),
        zone=zone,
    )


@dataclass
class FeedServer:
    publisher: FeedPublisher
    url: str
    runner: web.AppRunner


async def start_server(
    publisher: FeedPublisher,
    *,
    token: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    sock: socket.socket | None = None,
) -> FeedServer:
    app = web.Application()
    add_feed_routes(app, publisher, token)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock, ssl_context=ssl_context)
    await site.start()
    port = sock.getsockname()[1]
    scheme = "https" if ssl_context is not None else "http"
    return FeedServer(publisher, f"{scheme}://127.0.0.1:{port}", runner)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100))
    yield srv
    await srv.runner.cleanup()


@pytest.fixture
async def token_server() -> AsyncIterator[FeedServer]:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100), token="s3cret-token")
    yield srv
    await srv.runner.cleanup()


@dataclass
class Certs:
    cert: Path
    key: Path
    other_ca: Path


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    cert_pem, key_pem = self_signed(name)
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    return cert_path, key_path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(tmp, "controller")
    other, _ = _self_signed(tmp, "someone-else")
    return Certs(cert, key, other)
