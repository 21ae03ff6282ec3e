"""Feed deltas: a change costs bytes in proportion to it; resumable; too far behind gets the view."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from ingressfed.feed.delta import DELTA_FORMAT, apply_delta, compose, decode_feed, delta_between, encode_delta
from ingressfed.feed.follower import FeedFollower
from ingressfed.feed.publisher import FeedPublisher
from ingressfed.feed.state import FeedStateFile
from ingressfed.feed.view import FeedFormatError, FeedView, decode_view
from ingressfed.model import Backend, RecordSet, RecordType, Route
from tests.feed.conftest import sample_view, start_server

ZONE = "example.com"


def big_view(n: int, changed: int = -1) -> FeedView:
    base = sample_view(1)
    records = tuple(
        RecordSet(
            f"svc{i}.default.federation.svc.{ZONE}",
            RecordType.A,
            30,
            (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",),
        )
        for i in range(n)
        if i != changed
    )
    if changed >= 0:
        records += (
            RecordSet(f"svc{changed}.default.federation.svc.{ZONE}", RecordType.A, 30, ("192.0.2.99",)),
        )
    return replace(base, records=base.records + records)


async def get(url: str, **params: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.get(url + "/v1/feed", params={"timeout": "0", **params}) as r:
        return r.status, await r.read()


async def test_one_change_costs_bytes_in_proportion_to_the_change() -> None:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100))
    try:
        v1 = srv.publisher.publish(big_view(5000))
        v2 = srv.publisher.publish(big_view(5000, changed=1234))
        status, full = await get(srv.url, after="-1")
        assert status == 200 and decode_view(full) == v2
        status, delta = await get(srv.url, after=str(v1.version), epoch="e1", delta="1")
        assert status == 200
        assert len(delta) < 2000 < 200_000 < len(full)  # one record set, not 5000
        d = decode_feed(delta)
        assert not isinstance(d, FeedView) and d.base == v1.version and len(d.upserted) == 1
        assert apply_delta(v1, d) == v2
        # Without delta=1 (an older follower) the answer is the full view, as before.
        status, body = await get(srv.url, after=str(v1.version), epoch="e1")
        assert status == 200 and decode_view(body) == v2
    finally:
        await srv.runner.cleanup()


async def test_too_far_behind_or_another_epoch_gets_the_full_view() -> None:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100, history=2))
    try:
        first = srv.publisher.publish(sample_view(1))
        for n in range(2, 6):
            last = srv.publisher.publish(sample_view(n))
        status, body = await get(srv.url, after=str(first.version), epoch="e1", delta="1")
        assert status == 200 and b'"format":"ingressfed.feed/v1"' in body and decode_view(body) == last
        status, body = await get(srv.url, after=str(last.version - 2), epoch="e1", delta="1")
        assert DELTA_FORMAT.encode() in body  # within the history: two versions composed
        assert (
            apply_delta(
                replace(sample_view(3), version=last.version - 2, epoch="e1").canonical(), decode_feed(body)
            )
            == last
        )  # type: ignore[arg-type]
        status, body = await get(srv.url, after=str(last.version - 1), epoch="other", delta="1")
        assert decode_view(body) == last
    finally:
        await srv.runner.cleanup()


async def test_follower_resumes_from_its_state_with_deltas(tmp_path: Path) -> None:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100))
    state = tmp_path / "feed.json"
    fast = {"poll_timeout": 0.5, "backoff_initial": 0.05, "backoff_max": 0.2}
    try:
        v1 = srv.publisher.publish(big_view(300))
        async with FeedFollower(srv.url, token=None, state_file=state, **fast) as f:  # type: ignore[arg-type]
            views = f.views()
            assert await anext(views) == v1
            await views.aclose()
        v2 = srv.publisher.publish(big_view(300, changed=7))
        # A new process: the persisted view first, then the change as a delta on top of it.
        async with FeedFollower(srv.url, token=None, state_file=state, **fast) as f:  # type: ignore[arg-type]
            views = f.views()
            assert await anext(views) == v1
            assert await anext(views) == v2
            await views.aclose()
        stored = FeedStateFile(state).load()  # the snapshot of v1 and the delta in its journal
        assert stored is not None and stored.view() == v2 and decode_view(state.read_bytes()) == v1
    finally:
        await srv.runner.cleanup()


def test_compose_and_refusing_a_delta_for_another_version() -> None:
    a = replace(sample_view(1), version=1, epoch="e").canonical()
    b = replace(sample_view(2), version=2, epoch="e").canonical()
    c = replace(big_view(3), version=3, epoch="e").canonical()
    d = compose([delta_between(a, b), delta_between(b, c)])
    assert apply_delta(a, d) == c
    assert decode_feed(encode_delta(d)) == d
    with pytest.raises(FeedFormatError, match="base"):
        apply_delta(b, d)
    doc = json.loads(encode_delta(d))
    doc["removed"] = [{"name": f"x.{ZONE}", "type": "Q"}]
    with pytest.raises(FeedFormatError, match=r"removed\[0\]\.type"):
        decode_feed(json.dumps(doc))


def routed_view(routes: int, *, changed: int = -1, route_port: int = 8000) -> FeedView:
    view = big_view(50, changed)
    extra = tuple(
        Route(f"app{i}.{ZONE}", "/", "Prefix", (Backend("cluster-a", "127.0.0.1", route_port),))
        for i in range(routes)
    )
    return replace(view, routes=view.routes + extra)


async def test_with_parts_changed_a_record_change_does_not_carry_the_routes(tmp_path: Path) -> None:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100))
    try:
        v1 = srv.publisher.publish(routed_view(1000))
        v2 = srv.publisher.publish(routed_view(1000, changed=7))
        after = {"after": str(v1.version), "epoch": "e1", "delta": "1"}
        _, every_part = await get(srv.url, **after)  # what a follower of an earlier version asks
        _, changed_only = await get(srv.url, **after, parts="changed")
        assert len(changed_only) < 1500 < 100_000 < len(every_part)
        d = decode_feed(changed_only)
        assert not isinstance(d, FeedView) and d.unchanged == {"routes", "clusters", "gatewayRules"}
        assert apply_delta(v1, d) == v2 == apply_delta(v1, decode_feed(every_part))  # type: ignore[arg-type]
        # A route that changes is carried; the follower keeps what it was not sent.
        v3 = srv.publisher.publish(routed_view(1000, changed=7, route_port=8001))
        _, body = await get(srv.url, after=str(v2.version), epoch="e1", delta="1", parts="changed")
        d3 = decode_feed(body)
        assert not isinstance(d3, FeedView) and d3.unchanged == {"clusters", "gatewayRules"}
        _, body = await get(srv.url, **after, parts="changed")  # two versions composed
        assert apply_delta(v1, decode_feed(body)) == v3  # type: ignore[arg-type]
        # The follower asks for changed parts only, and its journal replays them.
        state = tmp_path / "feed.json"
        async with FeedFollower(srv.url, token=None, state_file=state, poll_timeout=1.0) as f:
            steps = f.steps()
            assert (await anext(steps)).held.view() == v3
            v4 = srv.publisher.publish(routed_view(1000, changed=9, route_port=8001))
            step = await anext(steps)
            assert step.held.view() == v4 and len(step.changes or ()) == 2
            await steps.aclose()
        assert state.with_name("feed.json.journal").stat().st_size < 2000
        stored = FeedStateFile(state).load()
        assert stored is not None and stored.view() == v4
    finally:
        await srv.runner.cleanup()
