from __future__ import annotations

import asyncio

import aiohttp

from ingressfed.feed.publisher import FEED_PATH, FeedPublisher
from ingressfed.feed.view import decode_view
from tests.feed.conftest import FeedServer, sample_view


async def test_publish_bumps_version_only_on_change() -> None:
    pub = FeedPublisher(epoch="e", initial_version=7)
    assert pub.current() is None and pub.current_body() is None
    first = pub.publish(sample_view(1))
    assert (first.version, first.epoch) == (7, "e")
    assert pub.publish(sample_view(1)) is first  # same content: nothing new
    second = pub.publish(sample_view(2))
    assert second.version == 8 and pub.current() is second
    assert decode_view(pub.current_body() or b"") == second


async def test_default_versions_keep_increasing_across_instances() -> None:
    a = FeedPublisher().publish(sample_view()).version
    b = FeedPublisher().publish(sample_view()).version
    assert b >= a > 1_600_000_000_000  # wall-clock milliseconds


async def test_wait_newer() -> None:
    pub = FeedPublisher(epoch="e", initial_version=1)
    assert await pub.wait_newer(-1, 0.01) is None  # nothing published yet
    v1 = pub.publish(sample_view(1))
    assert await pub.wait_newer(-1, 0) is v1  # already newer: no waiting
    assert await pub.wait_newer(v1.version, 0.01) is None
    waiter = asyncio.create_task(pub.wait_newer(v1.version, 30))
    await asyncio.sleep(0)
    assert not waiter.done()
    v2 = pub.publish(sample_view(2))
    assert await asyncio.wait_for(waiter, 5) is v2
    # a follower holding another epoch's view gets the current one at once
    assert await pub.wait_newer(10**15, 0, epoch="old") is v2
    assert await pub.wait_newer(v2.version, 0, epoch="e") is None


async def test_close_releases_waiters() -> None:
    pub = FeedPublisher(epoch="e", initial_version=1)
    v1 = pub.publish(sample_view(1))
    waiter = asyncio.create_task(pub.wait_newer(v1.version, 30))
    await asyncio.sleep(0)
    pub.close()
    assert await asyncio.wait_for(waiter, 5) is None


async def test_long_poll_over_http(server: FeedServer) -> None:
    url = server.url + FEED_PATH
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"timeout": "0.05"}) as resp:
            assert resp.status == 304  # nothing published
        v1 = server.publisher.publish(sample_view(1))
        async with session.get(url, params={"timeout": "5"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/json")
            assert resp.headers["Cache-Control"] == "no-store"
            assert decode_view(await resp.read()) == v1
        async with session.get(
            url, params={"after": str(v1.version), "epoch": "e1", "timeout": "0.05"}
        ) as resp:
            assert resp.status == 304
            assert await resp.read() == b""

        # a poll waiting on the server is answered as soon as a newer view is published
        async def poll() -> tuple[int, bytes]:
            params = {"after": str(v1.version), "epoch": "e1", "timeout": "30"}
            async with session.get(url, params=params) as resp:
                return resp.status, await resp.read()

        task = asyncio.create_task(poll())
        await asyncio.sleep(0.1)
        assert not task.done()
        v2 = server.publisher.publish(sample_view(2))
        status, body = await asyncio.wait_for(task, 5)
        assert status == 200 and decode_view(body) == v2
        # resume from an older version: answered at once with the current view
        async with session.get(
            url, params={"after": str(v1.version), "epoch": "e1", "timeout": "30"}
        ) as resp:
            assert resp.status == 200 and decode_view(await resp.read()).version == v2.version


async def test_bad_query_parameters(server: FeedServer) -> None:
    url = server.url + FEED_PATH
    async with aiohttp.ClientSession() as session:
        for params, field in [
            ({"after": "x"}, "after"),
            ({"timeout": "soon"}, "timeout"),
            ({"timeout": "61"}, "timeout"),
        ]:
            async with session.get(url, params=params) as resp:
                assert resp.status == 400
                assert (await resp.json())["detail"].startswith(field)


async def test_token_required(token_server: FeedServer) -> None:
    url = token_server.url + FEED_PATH
    view = token_server.publisher.publish(sample_view())
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"timeout": "0"}) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"] == 'Bearer realm="ingressfed-feed"'
            assert b"k8shserver" not in await resp.read()
        for header in [
            "Bearer wrong",
            "Bearer s3cret-token-and-more",
            "Basic s3cret-token",
            "Bearer",
            "s3cret-token",
        ]:
            async with session.get(url, params={"timeout": "0"}, headers={"Authorization": header}) as resp:
                assert resp.status == 401, header
                assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
                assert b"k8shserver" not in await resp.read()
        auth = {"Authorization": "Bearer s3cret-token"}
        async with session.get(url, params={"timeout": "0"}, headers=auth) as resp:
            assert resp.status == 200 and decode_view(await resp.read()) == view


async def test_shutdown_does_not_wait_for_long_polls(server: FeedServer) -> None:
    v1 = server.publisher.publish(sample_view())
    url = server.url + FEED_PATH
    async with aiohttp.ClientSession() as session:

        async def poll() -> int:
            async with session.get(
                url, params={"after": str(v1.version), "epoch": "e1", "timeout": "60"}
            ) as resp:
                return resp.status

        task = asyncio.create_task(poll())
        await asyncio.sleep(0.1)
        await server.runner.cleanup()  # would wait out the 60 s poll without the shutdown hook
        assert await asyncio.wait_for(task, 10) == 304
