from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TypedDict

import pytest
from aiohttp import web

from ingressfed.feed.follower import FeedFollower, backoff_delay, client_ssl_context
from ingressfed.feed.publisher import FEED_PATH, FeedPublisher
from ingressfed.feed.state import FeedStateFile
from ingressfed.feed.view import FeedView, decode_view, encode_view
from tests.fakes.http_app import serve_app
from tests.feed.conftest import Certs, FeedServer, sample_view, start_server


class _Fast(TypedDict):
    backoff_initial: float
    backoff_max: float
    poll_timeout: float


FAST: _Fast = {"backoff_initial": 0.01, "backoff_max": 0.05, "poll_timeout": 5.0}


class Views:
    """Drives a follower's iterator without cancelling it mid-poll (that would end the generator)."""

    def __init__(self, follower: FeedFollower) -> None:
        self.views: AsyncIterator[FeedView] = aiter(follower)
        self.task: asyncio.Future[FeedView] | None = None

    async def _wait(self, seconds: float) -> bool:
        if self.task is None:
            self.task = asyncio.ensure_future(anext(self.views))
        done, _ = await asyncio.wait({self.task}, timeout=seconds)
        return bool(done)

    async def next(self, timeout: float = 5.0) -> FeedView:
        assert await self._wait(timeout), f"no view within {timeout}s"
        assert self.task is not None
        task, self.task = self.task, None
        return task.result()

    async def quiet(self, seconds: float) -> bool:
        """True when nothing is yielded for ``seconds`` (the follower keeps polling meanwhile)."""
        return not await self._wait(seconds)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await self.task
        await self.views.aclose()  # type: ignore[attr-defined]


def test_backoff_delay_doubles_caps_and_jitters() -> None:
    delays = [backoff_delay(n, initial=0.5, maximum=30, jitter=0.999999) for n in range(1, 10)]
    assert delays[:4] == pytest.approx([0.5, 1, 2, 4], rel=1e-5)
    assert max(delays) == pytest.approx(30, rel=1e-5)
    assert backoff_delay(3, initial=0.5, maximum=30, jitter=0.0) == pytest.approx(1.0)
    assert backoff_delay(10_000, initial=0.5, maximum=30, jitter=0.5) == pytest.approx(22.5)


def test_url_forms() -> None:
    f = FeedFollower("https://ctl.example:9090", token=None, state_file=None)
    assert str(f.url) == "https://ctl.example:9090" + FEED_PATH
    f = FeedFollower("http://127.0.0.1:1/v1/feed", token=None, state_file=None)
    assert str(f.url) == "http://127.0.0.1:1/v1/feed"
    with pytest.raises(ValueError, match="must be http"):
        FeedFollower("ftp://x", token=None, state_file=None)


async def test_follows_long_poll_and_persists(server: FeedServer, tmp_path: Path) -> None:
    state = tmp_path / "state" / "feed.json"
    v1 = server.publisher.publish(sample_view(1))
    async with FeedFollower(server.url, token=None, state_file=state, **FAST) as follower:
        views = Views(follower)
        assert await views.next() == v1
        assert decode_view(state.read_bytes()) == v1  # a whole view: the snapshot
        assert await views.quiet(0.2)  # no duplicate while nothing changes
        v2 = server.publisher.publish(sample_view(2))
        assert await views.next() == v2
        assert decode_view(state.read_bytes()) == v1  # a delta: one journal line beside it
        stored = FeedStateFile(state).load()
        assert stored is not None and stored.view() == v2
        await views.close()
    # no temporary files left
    assert sorted(p.name for p in state.parent.iterdir()) == ["feed.json", "feed.json.journal"]


async def test_restart_serves_persisted_view_then_resumes(server: FeedServer, tmp_path: Path) -> None:
    state = tmp_path / "feed.json"
    v1 = server.publisher.publish(sample_view(1))
    async with FeedFollower(server.url, token=None, state_file=state, **FAST) as follower:
        views = Views(follower)
        assert await views.next() == v1
        await views.close()
    # A new process: the persisted view comes first, and it is not yielded twice.
    async with FeedFollower(server.url, token=None, state_file=state, **FAST) as follower:
        views = Views(follower)
        assert await views.next() == v1
        assert await views.quiet(0.2)
        v2 = server.publisher.publish(sample_view(2))
        assert await views.next() == v2
        await views.close()


async def test_controller_away_serves_last_state_and_reconnects(tmp_path: Path) -> None:
    state = tmp_path / "feed.json"
    old = replace(sample_view(1), version=5, epoch="before-restart")
    state.write_bytes(encode_view(old))
    # A bound but not listening socket: connections are refused until the controller starts on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    follower = FeedFollower(url, token=None, state_file=state, **FAST)
    views = Views(follower)
    srv: FeedServer | None = None
    try:
        assert await views.next() == old.canonical()  # at once, controller unreachable
        assert await views.quiet(0.3)
        assert follower.failures >= 2  # it kept retrying
        publisher = FeedPublisher(epoch="after-restart", initial_version=1)
        new = publisher.publish(sample_view(2))
        srv = await start_server(publisher, sock=sock)
        # version 1 < 5, but from a new controller instance: taken
        assert await views.next() == new
        assert follower.failures == 0
        assert decode_view(state.read_bytes()) == new
    finally:
        await views.close()
        if srv is not None:
            await srv.runner.cleanup()
        sock.close()


async def test_never_yields_an_older_version(tmp_path: Path) -> None:
    # A misbehaving server that goes back in time within one epoch.
    served = [replace(sample_view(n), version=v, epoch="e") for n, v in [(1, 5), (2, 3), (3, 5), (4, 6)]]
    queries: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        if not served:
            await asyncio.sleep(0.05)
            return web.Response(status=304)
        return web.Response(body=encode_view(served.pop(0)), content_type="application/json")

    app = web.Application()
    app.router.add_get(FEED_PATH, handler)
    runner, url = await serve_app(app)
    try:
        async with FeedFollower(url, token=None, state_file=None, **FAST) as follower:
            views = Views(follower)
            assert (await views.next()).version == 5
            sixth = await views.next()
            assert (sixth.version, sixth.routes) == (6, sample_view(4).routes)
            await views.close()
    finally:
        await runner.cleanup()
    assert "after" not in queries[0]
    assert queries[1]["after"] == "5" and queries[1]["epoch"] == "e"


async def test_wrong_token_gets_nothing(token_server: FeedServer, tmp_path: Path) -> None:
    token_server.publisher.publish(sample_view())
    follower = FeedFollower(token_server.url, token="guess", state_file=tmp_path / "s.json", **FAST)
    async with follower:
        views = Views(follower)
        assert await views.quiet(0.3)
        await views.close()
    assert follower.failures >= 2
    assert not (tmp_path / "s.json").exists()
    async with FeedFollower(token_server.url, token="s3cret-token", state_file=None, **FAST) as good:
        views = Views(good)
        assert (await views.next()).zone == "example.com"
        await views.close()


async def test_corrupt_state_file_is_ignored(server: FeedServer, tmp_path: Path) -> None:
    state = tmp_path / "feed.json"
    state.write_text(json.dumps({"format": "ingressfed.feed/v1", "version": "x"}))
    v1 = server.publisher.publish(sample_view(1))
    async with FeedFollower(server.url, token=None, state_file=state, **FAST) as follower:
        views = Views(follower)
        assert await views.next() == v1
        await views.close()


async def test_run_calls_back(server: FeedServer) -> None:
    v1 = server.publisher.publish(sample_view(1))
    seen: list[FeedView] = []
    got = asyncio.Event()

    async def on_view(view: FeedView) -> None:
        seen.append(view)
        got.set()

    async with FeedFollower(server.url, token=None, state_file=None, **FAST) as follower:
        task = asyncio.create_task(follower.run(on_view))
        await asyncio.wait_for(got.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen == [v1]


async def test_over_tls(certs: Certs, tmp_path: Path) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certs.cert, certs.key)
    srv = await start_server(
        FeedPublisher(epoch="tls", initial_version=1), token="t0k", ssl_context=server_ctx
    )
    try:
        v1 = srv.publisher.publish(sample_view(1))
        assert srv.url.startswith("https://")
        ctx = client_ssl_context(ca_file=certs.cert)
        async with FeedFollower(
            srv.url, token="t0k", state_file=tmp_path / "s.json", ssl_context=ctx, **FAST
        ) as f:
            views = Views(f)
            assert await views.next() == v1
            v2 = srv.publisher.publish(sample_view(2))
            assert await views.next() == v2
            await views.close()
        # a certificate we do not trust: nothing is accepted
        untrusted = client_ssl_context(ca_file=certs.other_ca)
        async with FeedFollower(srv.url, token="t0k", state_file=None, ssl_context=untrusted, **FAST) as bad:
            views = Views(bad)
            assert await views.quiet(0.3)
            await views.close()
        assert bad.failures >= 1
        # plain HTTP to the TLS port fails too
        async with FeedFollower(
            srv.url.replace("https", "http"), token="t0k", state_file=None, **FAST
        ) as plain:
            views = Views(plain)
            assert await views.quiet(0.3)
            await views.close()
    finally:
        await srv.runner.cleanup()
