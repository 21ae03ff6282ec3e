"""``dns-serve --feed`` follows deltas in place: after many of them, after a restart from its state
file (resumed with deltas) and after falling too far behind (a whole view), it answers exactly like
a ``dns-serve`` that loaded the same view afresh. Real processes, real feed publisher, real UDP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import pytest
from aiohttp import web

from ingressfed.feed.delta import DELTA_FORMAT
from ingressfed.feed.publisher import FeedPublisher, add_feed_routes
from ingressfed.feed.view import FeedView
from ingressfed.model import RecordSet, RecordType
from tests.dnsserver.client import udp
from tests.dnsserver.conftest import ZONE
from tests.dnsserver.test_tools import start_dns_serve_args
from tests.fakes.http_app import serve_app


@dataclass
class Feed:
    publisher: FeedPublisher
    url: str
    sent: list[tuple[dict[str, str], str]] = field(default_factory=list)  # (query, "delta" | "view")
    sets: dict[tuple[str, RecordType], RecordSet] = field(default_factory=dict)

    def publish(self) -> None:
        self.publisher.publish(
            FeedView(version=0, records=tuple(self.sets.values()), routes=(), clusters=(), zone=ZONE)
        )

    def put(self, name: str, rtype: RecordType, *values: str) -> None:
        self.sets[(f"{name}.{ZONE}", rtype)] = RecordSet(f"{name}.{ZONE}", rtype, 30, values)
        self.publish()

    def drop(self, name: str, rtype: RecordType) -> None:
        del self.sets[(f"{name}.{ZONE}", rtype)]
        self.publish()


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    publisher = FeedPublisher(epoch="e1", initial_version=1, history=4)
    holder: list[Feed] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resp = await handler(request)
        if isinstance(resp, web.Response) and resp.status == 200 and resp.body is not None:
            kind = "delta" if DELTA_FORMAT.encode() in bytes(resp.body)[:200] else "view"  # type: ignore[arg-type]
            holder[0].sent.append((dict(request.query), kind))
        return resp

    app = web.Application(middlewares=[record])
    add_feed_routes(app, publisher, None)
    runner, url = await serve_app(app, shutdown_timeout=1)
    f = Feed(publisher, url)
    holder.append(f)
    for i in range(40):
        f.sets[(f"s{i}.{ZONE}", RecordType.A)] = RecordSet(
            f"s{i}.{ZONE}", RecordType.A, 30, (f"10.0.0.{i + 1}",)
        )
        if i % 4 == 0:
            f.sets[(f"s{i}.{ZONE}", RecordType.AAAA)] = RecordSet(
                f"s{i}.{ZONE}", RecordType.AAAA, 30, (f"2001:db8::{i + 1:x}",)
            )
        if i % 5 == 0:
            f.sets[(f"c{i}.{ZONE}", RecordType.CNAME)] = RecordSet(
                f"c{i}.{ZONE}", RecordType.CNAME, 30, (f"s{i}.{ZONE}",)
            )
    f.publish()
    yield f
    await runner.cleanup()


class Follower:
    """One ``dns-serve --feed`` process."""

    def __init__(self, feed: Feed, state: Path | None) -> None:
        self.feed = feed
        self.state = state
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    async def start(self) -> None:
        extra = ("--state-file", str(self.state)) if self.state is not None else ()
        self.proc, self.port = await start_dns_serve_args("--zone", ZONE, "--feed", self.feed.url, *extra)

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        assert await asyncio.wait_for(self.proc.wait(), 10) == 0
        self.proc = None

    async def answers(self, name: str, rtype: RecordType) -> set[str]:
        r = await udp(self.port, f"{name}.{ZONE}", rtype.value)
        return {rd.to_text() for rrset in r.answer if rrset.rdtype.name == rtype.value for rd in rrset}

    async def until(self, name: str, rtype: RecordType, *values: str) -> None:
        """Query until ``name`` answers ``values`` (empty: no such record), bounded: 10 s."""
        for _ in range(200):
            if await self.answers(name, rtype) == set(values):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{name} {rtype.value} never answered {values}: {await self.answers(name, rtype)}"
        )


def questions(feed: Feed) -> list[tuple[str, str]]:
    names = (
        {n for n, _ in feed.sets}
        | {f"s{i}.{ZONE}" for i in range(50)}
        | {f"c{i}.{ZONE}" for i in range(0, 50, 5)}
    )
    return [(n, t) for n in sorted(names) for t in ("A", "AAAA", "CNAME", "TXT")]


def wire(r: dns.message.Message) -> tuple[int, list[str]]:
    """What a resolver takes from an answer (the SOA serial is each server's own clock: left out)."""
    return r.rcode(), sorted(rrset.to_text() for rrset in r.answer)


async def same_answers(a: Follower, b: Follower, feed: Feed) -> None:
    for name, rtype in questions(feed):
        ra, rb = await udp(a.port, name, rtype), await udp(b.port, name, rtype)
        assert wire(ra) == wire(rb), f"{name} {rtype}"


async def answers_like_a_fresh_load(
    a: Follower, feed: Feed, name: str, rtype: RecordType, expected: tuple[str, ...]
) -> None:
    """``a`` answers every question as a dns-serve that loaded the controller's view whole."""
    fresh = Follower(feed, None)
    await fresh.start()
    try:
        await fresh.until(name, rtype, *expected)
        await same_answers(a, fresh, feed)
    finally:
        await fresh.stop()


def change(feed: Feed, n: int) -> tuple[str, RecordType, tuple[str, ...]]:
    """Change number ``n``: an update, a new name, a removal, a CNAME retargeted, a TXT; returns
    the question that shows it and the answer expected."""
    kind = n % 5
    if kind == 0:
        feed.put(f"s{n % 40}", RecordType.A, f"192.0.2.{n}", "10.9.9.9")
        return f"s{n % 40}", RecordType.A, (f"192.0.2.{n}", "10.9.9.9")
    if kind == 1:
        feed.put(f"s{40 + n % 10}", RecordType.A, f"198.51.100.{n}")
        return f"s{40 + n % 10}", RecordType.A, (f"198.51.100.{n}",)
    if kind == 2:
        key = next(
            k for k in feed.sets if k[1] is RecordType.A and k[0].startswith("s") and k[0] != f"s1.{ZONE}"
        )
        feed.drop(key[0].removesuffix(f".{ZONE}"), RecordType.A)
        return key[0].removesuffix(f".{ZONE}"), RecordType.A, ()
    if kind == 3:
        feed.put(f"c{(n * 5) % 40}", RecordType.CNAME, f"s1.{ZONE}.")
        return f"c{(n * 5) % 40}", RecordType.CNAME, (f"s1.{ZONE}.",)
    feed.put(f"s{n % 40}", RecordType.TXT, f'"v={n}"')
    return f"s{n % 40}", RecordType.TXT, (f'"v={n}"',)


async def test_deltas_restart_and_falling_behind_answer_like_a_fresh_load(feed: Feed, tmp_path: Path) -> None:
    a = Follower(feed, tmp_path / "dns-feed.json")
    await a.start()
    try:
        await a.until("s39", RecordType.A, "10.0.0.40")
        for n in range(1, 16):
            name, rtype, expected = change(feed, n)
            await a.until(name, rtype, *expected)
        assert [k for _, k in feed.sent[1:]] == ["delta"] * (len(feed.sent) - 1)  # followed by deltas
        await answers_like_a_fresh_load(a, feed, name, rtype, expected)

        # Restarted from its state file, two changes behind: it resumes with a delta.
        await a.stop()
        for n in range(16, 18):
            name, rtype, expected = change(feed, n)
        feed.sent.clear()
        await a.start()
        await a.until(name, rtype, *expected)
        resumed = [(q, k) for q, k in feed.sent if "after" in q]
        assert resumed and resumed[0][1] == "delta", feed.sent
        assert all(k == "delta" for _, k in feed.sent), feed.sent

        # Too far behind (more changes than the publisher remembers): a whole view.
        await a.stop()
        for n in range(18, 25):
            name, rtype, expected = change(feed, n)
        feed.sent.clear()
        await a.start()
        await a.until(name, rtype, *expected)
        assert [k for _, k in feed.sent][:1] == ["view"] and "after" in feed.sent[0][0], feed.sent
        name, rtype, expected = change(feed, 25)  # and deltas again after it
        await a.until(name, rtype, *expected)
        assert feed.sent[-1][1] == "delta"
        await answers_like_a_fresh_load(a, feed, name, rtype, expected)
    finally:
        if a.proc is not None:
            await a.stop()


async def test_killed_mid_stream_it_restarts_on_a_view_the_controller_published(
    feed: Feed, tmp_path: Path
) -> None:
    a = Follower(feed, tmp_path / "dns-feed.json")
    await a.start()
    published: list[dict[tuple[str, RecordType], RecordSet]] = [dict(feed.sets)]
    touched: set[tuple[str, RecordType]] = set()
    try:
        await a.until("s39", RecordType.A, "10.0.0.40")
        name, rtype, expected = change(feed, 1)
        published.append(dict(feed.sets))
        touched.add((name, rtype))
        await a.until(name, rtype, *expected)
        for n in range(2, 12):  # a stream of changes, killed in the middle of it
            name, rtype, expected = change(feed, n)
            published.append(dict(feed.sets))
            touched.add((name, rtype))
            await asyncio.sleep(0.01)
        assert a.proc is not None
        a.proc.kill()
        await asyncio.wait_for(a.proc.wait(), 10)
        a.proc = None
        # Restarted where the controller cannot be reached: it serves what its state file holds.
        a.feed = Feed(feed.publisher, "http://127.0.0.1:9")
        await a.start()
        await a.until("s39", RecordType.A, "10.0.0.40")  # a name no change touches: the state is served
        seen = {q: {v.rstrip(".") for v in await a.answers(*q)} for q in sorted(touched)}
    finally:
        if a.proc is not None:
            await a.stop()

    def answers_of(view: dict[tuple[str, RecordType], RecordSet], q: tuple[str, RecordType]) -> set[str]:
        rs = view.get((f"{q[0]}.{ZONE}", q[1]))
        return {v.rstrip(".") for v in rs.values} if rs is not None else set()

    matching = [
        k for k, view in enumerate(published) if all(answers_of(view, q) == v for q, v in seen.items())
    ]
    assert matching and matching[-1] >= 1, seen  # one of the published views, the first change in it
