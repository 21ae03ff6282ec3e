"""An edge's checks of its peers, against real loopback listeners and a controller's /v1/edges."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingressfed.edge import agent
from ingressfed.edge.peers import PeerChecker, reachable
from ingressfed.errors import ConfigError
from tests.fakes.ports import free_port


async def proxy_like() -> web.AppRunner:
    """Answers every request 404, as the proxy answers a Host it does not serve."""

    async def not_served(_: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_served)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


@pytest.fixture
async def answering() -> AsyncIterator[int]:
    runner = await proxy_like()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


@pytest.fixture
async def hung() -> AsyncIterator[int]:
    """Accepts connections and never answers: a stopped process behind its listen backlog."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()


async def test_any_http_answer_is_reachable_a_silent_listener_is_not(answering: int, hung: int) -> None:
    async with aiohttp.ClientSession() as s:
        assert await reachable(s, "127.0.0.1", answering, within=1.0)
        assert not await reachable(s, "127.0.0.1", hung, within=0.3)  # TCP connect alone would pass
        assert not await reachable(s, "127.0.0.1", free_port(), within=1.0)  # nothing listening


async def test_checker_learns_peers_from_the_controller_and_skips_itself(answering: int) -> None:
    rows = [
        {"name": "me", "addresses": ["127.0.0.1"], "published": True},
        {"name": "up", "addresses": ["127.0.0.1"], "published": True},
        {"name": "down", "addresses": ["127.0.0.2"], "published": True},
        {"name": "local", "addresses": [], "published": False},
        {"name": "no-address", "addresses": [], "published": True},
    ]
    seen: list[str | None] = []

    async def edges(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"edges": rows})

    app = web.Application()
    app.router.add_get("/v1/edges", edges)
    # "down" is reached on the same port at another loopback address where nothing listens.
    async with TestServer(app) as controller, aiohttp.ClientSession() as s:
        changes: list[Any] = []
        checker = PeerChecker(
            edge="me",
            controller=str(controller.make_url("/")),
            token="tok",
            port=answering,
            interval=1,
            timeout=0.5,
            on_change=lambda: changes.append(1),
        )
        await checker.check_once(s)
        assert checker.results() == (("down", False), ("up", True))
        assert seen == ["Bearer tok"] and changes == [1]
        await checker.check_once(s)
        assert changes == [1]  # no change, no early report
        # The controller away: the last peer list is kept and checked.
        await controller.close()
        await checker.check_once(s)
        assert checker.results() == (("down", False), ("up", True))


def args(**over: Any) -> argparse.Namespace:
    base = {
        "edge": "e",
        "feed": "http://c",
        "report_interval": 5.0,
        "public_address": [],
        "peer_check_interval": 5.0,
        "peer_check_timeout": 2.0,
        "peer_port": None,
    }
    return argparse.Namespace(**{**base, **over})


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"peer_check_interval": 0.5}, "--peer-check-interval"),
        ({"peer_check_timeout": 0.0}, "--peer-check-timeout"),
        ({"peer_check_timeout": 5.0}, "shorter than --peer-check-interval"),
        ({"peer_port": 70000}, "--peer-port"),
    ],
)
def test_peer_flags_are_bounded(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        agent.check_arguments(args(**over))
    agent.check_arguments(args(peer_check_interval=0))  # off
