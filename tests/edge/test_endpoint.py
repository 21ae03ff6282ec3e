"""POST /v1/edges/{name}/health over a real loopback server: who may report, what is refused, what applies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingressfed.core.quorum import QuorumRule
from ingressfed.edge.endpoint import add_edge_routes
from ingressfed.edge.registry import EdgeIdentity, EdgeRegistry
from ingressfed.edge.report import (
    FORMAT,
    MAX_BACKENDS,
    MAX_PEERS,
    ReportFormatError,
    decode_report,
    encode_report,
)
from ingressfed.model import Cluster
from ingressfed.store import Store

SHARED = "shared-secret"
OWN = "edge-asia-own-token"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def report(edge: str, *, up: bool = False, seq: int = 1, **extra: Any) -> dict[str, Any]:
    doc = {
        "format": FORMAT,
        "edge": edge,
        "sequence": seq,
        "addresses": ["203.0.113.9"],
        "clusters": [{"name": "us", "backends": [["10.0.0.1", 80, up]]}],
    }
    doc.update(extra)
    return doc


@pytest.fixture
def store() -> Store:
    s = Store()
    s.set_cluster(Cluster("us", "us-east1", "us-east1-b"))
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(store: Store, clock: Clock) -> AsyncIterator[TestClient[Any, Any]]:
    registry = EdgeRegistry(
        [
            EdgeIdentity("edge-us", "us", token=SHARED),
            EdgeIdentity("edge-asia", "us", token=OWN),
        ],
        rule=QuorumRule(stale_after=15, down_votes=1),
        store=store,
        started_at=clock(),
    )
    app = web.Application()
    add_edge_routes(app, registry, read_token=SHARED, max_bytes=4096, min_interval=1.0, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(
    client: TestClient[Any, Any], edge: str, body: Any, token: str | None
) -> aiohttp.ClientResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = auth(token) if token is not None else {}
    return await client.post(f"/v1/edges/{edge}/health", data=data, headers=headers)


def unchanged(store: Store) -> None:
    us = store.cluster("us")
    assert us is not None and us.data_plane_healthy is None
    assert store.snapshot().edges == ()


async def test_no_token_is_401_and_nothing_applied(client: TestClient[Any, Any], store: Store) -> None:
    r = await post(client, "edge-us", report("edge-us"), None)
    assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    unchanged(store)


async def test_bad_token_is_401(client: TestClient[Any, Any], store: Store) -> None:
    r = await post(client, "edge-us", report("edge-us"), "not-a-token")
    assert r.status == 401
    unchanged(store)


async def test_another_edges_token_is_403(client: TestClient[Any, Any], store: Store) -> None:
    # edge-asia's own token cannot speak for edge-us.
    r = await post(client, "edge-us", report("edge-us"), OWN)
    assert r.status == 403 and "edge-us" in (await r.json())["detail"]
    unchanged(store)


async def test_unknown_edge_is_403(client: TestClient[Any, Any], store: Store) -> None:
    r = await post(client, "edge-mars", report("edge-mars"), SHARED)
    assert r.status == 403 and "not declared" in (await r.json())["detail"]
    unchanged(store)


async def test_oversized_is_413(client: TestClient[Any, Any], store: Store) -> None:
    backends = [[f"10.0.{i // 250}.{i % 250}", 80, False] for i in range(400)]
    big = report("edge-us", clusters=[{"name": "us", "backends": backends}])
    r = await post(client, "edge-us", big, SHARED)
    assert r.status == 413
    unchanged(store)


async def test_oversized_without_content_length_is_413(client: TestClient[Any, Any], store: Store) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    r = await client.post("/v1/edges/edge-us/health", data=chunks(), headers=auth(SHARED))
    assert r.status == 413
    unchanged(store)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "not JSON"),
        ([], "must be an object"),
        (report("edge-us", format="other/v9"), "report.format"),
        (
            report("edge-us", clusters=[{"name": "us", "backends": [["h", 0, True]]}]),
            "backends[0][1]: 0 must be",
        ),
        (report("edge-us", clusters=[{"name": "us", "backends": [["h", 80, "yes"]]}]), "backends[0][2]"),
        (report("edge-us", clusters=[{"name": "us", "backends": [{"host": "h"}]}]), "[host, port, up]"),
        (
            report("edge-us", clusters=[{"name": "us", "backends": []}, {"name": "us", "backends": []}]),
            "twice",
        ),
        (report("edge-us", addresses=["not-an-ip"]), "report.addresses[0]"),
        (report("edge-us", extra=1), "report.extra: unknown field"),
        (report("edge-asia"), "does not match"),
        ({k: v for k, v in report("edge-us").items() if k != "sequence"}, "report.sequence: is required"),
        (report("edge-us", peers={"edge-asia": True}), "report.peers: must be a list"),
        (report("edge-us", peers=[["edge-asia"]]), "report.peers[0]: must be [edge, reachable]"),
        (report("edge-us", peers=[["edge-asia", "yes"]]), "report.peers[0][1]: must be a boolean"),
        (report("edge-us", peers=[["", True]]), "report.peers[0][0]: must be a non-empty string"),
        (report("edge-us", peers=[["edge-us", True]]), "report.peers[0][0]: 'edge-us' is the reporting edge"),
        (report("edge-us", peers=[["edge-asia", True], ["edge-asia", False]]), "report.peers[1][0]"),
    ],
)
async def test_malformed_is_400_naming_the_field(
    client: TestClient[Any, Any], store: Store, body: Any, field: str
) -> None:
    r = await post(client, "edge-us", body, SHARED)
    assert r.status == 400
    assert field in (await r.json())["detail"]
    unchanged(store)


async def test_accepted_report_applies_and_rate_is_bounded(
    client: TestClient[Any, Any], store: Store, clock: Clock
) -> None:
    r = await post(client, "edge-us", report("edge-us", up=False), SHARED)
    assert r.status == 204
    us = store.cluster("us")
    assert us is not None and us.data_plane_healthy is False  # one down vote is the quorum here
    (edge,) = [e for e in store.snapshot().edges if e.name == "edge-us"]
    assert edge.addresses == ("203.0.113.9",) and edge.live
    # Too soon after the last accepted report: 429, and the up view is not applied.
    clock.t += 0.5
    r = await post(client, "edge-us", report("edge-us", up=True, seq=2), SHARED)
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    us = store.cluster("us")
    assert us is not None and us.data_plane_healthy is False
    clock.t += 1.0
    r = await post(client, "edge-us", report("edge-us", up=True, seq=3), SHARED)
    assert r.status == 204
    us = store.cluster("us")
    assert us is not None and us.data_plane_healthy is True


async def test_peer_reports_take_an_unreachable_edge_out(
    client: TestClient[Any, Any], store: Store, clock: Clock
) -> None:
    """Quorum 1 here: edge-asia's report that edge-us cannot be reached takes edge-us out of DNS
    (the listing says why); edge-us's word on itself does not count; reachable again: back."""
    assert (await post(client, "edge-us", report("edge-us", up=True), SHARED)).status == 204
    body = report("edge-asia", up=True, peers=[["edge-us", False]])
    assert (await post(client, "edge-asia", body, OWN)).status == 204
    live = {e.name: e.live for e in store.snapshot().edges}
    assert live == {"edge-us": False, "edge-asia": True}
    rows = {
        e["name"]: e for e in (await (await client.get("/v1/edges", headers=auth(SHARED))).json())["edges"]
    }
    assert rows["edge-us"]["status"] == "Unreachable"
    assert "1 of 1 peers" in rows["edge-us"]["reason"]
    clock.t += 1.5
    body = report("edge-asia", up=True, seq=2, peers=[["edge-us", True]])
    assert (await post(client, "edge-asia", body, OWN)).status == 204
    assert {e.name: e.live for e in store.snapshot().edges} == {"edge-us": True, "edge-asia": True}


async def test_own_token_reports(client: TestClient[Any, Any], store: Store) -> None:
    r = await post(client, "edge-asia", report("edge-asia", up=True), OWN)
    assert r.status == 204


async def test_listing_needs_the_read_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/v1/edges")).status == 401
    await post(client, "edge-us", report("edge-us", up=True), SHARED)
    r = await client.get("/v1/edges", headers=auth(SHARED))
    assert r.status == 200
    rows = {e["name"]: e for e in (await r.json())["edges"]}
    assert rows["edge-us"]["status"] == "Live" and rows["edge-us"]["addresses"] == ["203.0.113.9"]
    assert rows["edge-asia"]["status"] == "Pending"


def test_peer_count_is_bounded_and_round_trips() -> None:
    too_many = report("edge-us", peers=[[f"e{i}", True] for i in range(MAX_PEERS + 1)])
    with pytest.raises(ReportFormatError, match=rf"report.peers: {MAX_PEERS + 1} entries"):
        decode_report(json.dumps(too_many).encode())
    parsed = decode_report(json.dumps(report("edge-us", peers=[["b", False], ["a", True]])).encode())
    assert parsed.peers == (("a", True), ("b", False))
    assert decode_report(encode_report(parsed)) == parsed
    # No peer checks: the wire form of before (a controller without peer checks accepts it).
    plain = decode_report(json.dumps(report("edge-us")).encode())
    assert plain.peers is None and b"peers" not in encode_report(plain)
    # Checks on, no results yet: an empty section, which counts as a voter.
    empty = decode_report(json.dumps(report("edge-us", peers=[])).encode())
    assert empty.peers == () and decode_report(encode_report(empty)) == empty


def test_backend_count_is_bounded() -> None:

    doc = report("edge-us", clusters=[{"name": "us", "backends": [["h", 80, True]] * (MAX_BACKENDS + 1)}])
    with pytest.raises(ReportFormatError, match="at most"):
        decode_report(json.dumps(doc).encode())


async def test_controller_probe_counts_a_dead_load_balancer() -> None:
    import asyncio

    from ingressfed.edge.probe import connects, probe_forever

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert await connects("127.0.0.1", port, within=1)
    store = Store()
    store.set_cluster(Cluster("us", "us-east1", "us-east1-b"))
    registry = EdgeRegistry(
        [EdgeIdentity("edge-us", "us", addresses=("127.0.0.1",), token=SHARED)],
        rule=QuorumRule(stale_after=60, probe_failures=2),
        store=store,
        started_at=asyncio.get_running_loop().time(),
    )
    task = asyncio.create_task(
        probe_forever(
            registry, port=port, interval=0.05, connect_within=0.5, clock=asyncio.get_running_loop().time
        )
    )
    try:
        await asyncio.sleep(0.2)
        assert [e.live for e in store.snapshot().edges] == [True]
        server.close()
        await server.wait_closed()
        async with asyncio.timeout(5):
            while store.snapshot().edges[0].live:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
