"""Webhook provider client against a conforming external-dns webhook server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from ingressfed.errors import ConfigError, PermanentProviderError, TransientProviderError
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from ingressfed.testing import ProviderContract
from providers.base import Provider
from providers.webhook import DomainFilter, WebhookProvider
from tests.fakes.webhook_server import FakeWebhook

ZONE = "example.com"


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def create(*rs: RecordSet) -> Changes:
    return Changes(tuple(Change(ChangeAction.CREATE, new=r) for r in rs))


@pytest.fixture
async def server() -> AsyncIterator[FakeWebhook]:
    async with FakeWebhook(include=[ZONE]) as s:
        yield s


def make(server: FakeWebhook, **extra: Any) -> WebhookProvider:
    return WebhookProvider(zone=ZONE, options={"url": server.url, "backoff": 0.0, **extra})


@pytest.fixture
async def provider(server: FakeWebhook) -> AsyncIterator[WebhookProvider]:
    p = make(server)
    yield p
    await p.close()


class TestWebhookContract(ProviderContract):
    @pytest.fixture
    async def provider(self, server: FakeWebhook) -> AsyncIterator[Provider]:
        self.server = server
        p = make(server, maxBatch=10)
        yield p
        await p.close()

    def inject_transient(self, provider: Provider, count: int) -> bool:
        self.server.fail_next(503, count)
        return True

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        self.server.rejected.add(name)
        return True

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        return [len(p["create"]) + len(p["updateNew"]) + len(p["delete"]) for p in self.server.posts]

    def refuse_everything(self, provider: Provider) -> bool:
        self.server.fail_next(403, 100)
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        return len(self.server.requests)


class TestWebhookContractPascalCase(TestWebhookContract):
    @pytest.fixture
    async def provider(self, server: FakeWebhook) -> AsyncIterator[Provider]:
        server.pascal = True
        self.server = server
        p = make(server, maxBatch=10)
        yield p
        await p.close()


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="url"):
        WebhookProvider(zone=ZONE, options={"url": "ftp://x"})
    with pytest.raises(ConfigError, match="bogus"):
        WebhookProvider(zone=ZONE, options={"bogus": True})


def test_domain_filter_semantics() -> None:
    f = DomainFilter.parse(
        {"include": ["example.com", ".sub.example.org"], "exclude": ["private.example.com"]}
    )
    assert f.matches("example.com")
    assert f.matches("www.example.com")
    assert not f.matches("badexample.com")
    assert not f.matches("sub.example.org")  # a leading dot: subdomains only
    assert f.matches("a.sub.example.org")
    assert not f.matches("db.private.example.com")
    r = DomainFilter.parse({"RegexInclude": r"\.example\.com$", "RegexExclude": r"^internal\."})
    assert r.matches("www.example.com")
    assert not r.matches("internal.example.com")
    assert DomainFilter.parse({}).matches("anything.net")
    with pytest.raises(ValueError, match="regexInclude"):
        DomainFilter.parse({"regexInclude": "("})


async def test_negotiation_sends_and_checks_the_media_type(
    server: FakeWebhook, provider: WebhookProvider
) -> None:
    f = await provider.negotiate()
    assert f.include == ("example.com",)
    await provider.records()
    await provider.records()
    assert server.count("GET", "/") == 1  # negotiated once


async def test_a_server_that_is_not_a_webhook_provider_is_a_clear_error() -> None:
    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    p = WebhookProvider(zone=ZONE, options={"url": f"http://127.0.0.1:{port}"})
    try:
        with pytest.raises(PermanentProviderError, match="Content-Type"):
            await p.records()
    finally:
        await p.close()
        await runner.cleanup()


async def test_domain_filter_is_honoured(server: FakeWebhook) -> None:
    server.exclude = ["private.example.com"]
    server.seed(
        {"dnsName": "db.private.example.com", "recordType": "A", "targets": ["10.0.0.1"], "recordTTL": 60}
    )
    server.seed({"dnsName": "elsewhere.org", "recordType": "A", "targets": ["10.0.0.2"], "recordTTL": 60})
    p = make(server)
    try:
        assert await p.records() == []  # out-of-filter and out-of-zone endpoints are not ours to see
        posts = server.count("POST", "/records")
        res = await p.apply(
            create(a("www.example.com", "192.0.2.1"), a("api.private.example.com", "192.0.2.2"))
        )
        assert set(res.failed) == {"api.private.example.com"}
        assert "domain filter" in res.failed["api.private.example.com"]
        assert server.count("POST", "/records") - posts == 1
        sent = [e["dnsName"] for post in server.posts for e in post["create"]]
        assert "api.private.example.com" not in sent
        assert await p.records() == [a("www.example.com", "192.0.2.1")]
    finally:
        await p.close()


async def test_changes_are_sent_in_camel_case_with_update_pairs(
    server: FakeWebhook, provider: WebhookProvider
) -> None:
    old = a("www.example.com", "192.0.2.1")
    await provider.apply(create(old))
    new = a("www.example.com", "192.0.2.2", ttl=60)
    await provider.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=new),)))
    body = server.posts[-1]
    assert set(body) == {"create", "updateOld", "updateNew", "delete"}
    assert body["updateOld"] == [
        {"dnsName": "www.example.com", "targets": ["192.0.2.1"], "recordType": "A", "recordTTL": 30}
    ]
    assert body["updateNew"][0]["targets"] == ["192.0.2.2"]
    assert await provider.records() == [new]


async def test_a_to_cname_update_is_sent_as_delete_and_create(
    server: FakeWebhook, provider: WebhookProvider
) -> None:
    old = a("app.example.com", "192.0.2.1")
    await provider.apply(create(old))
    cname = RecordSet("app.example.com", RecordType.CNAME, 30, ("lb.example.net",))
    res = await provider.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=cname),)))
    assert res.failed == {}
    assert [e["recordType"] for e in server.posts[-1]["delete"]] == ["A"]
    assert [e["recordType"] for e in server.posts[-1]["create"]] == ["CNAME"]
    assert await provider.records() == [cname]


async def test_txt_values_round_trip(server: FakeWebhook, provider: WebhookProvider) -> None:
    txt = RecordSet("_ingressfed.www.example.com", RecordType.TXT, 30, ('"heritage=ingressfed,x=\\"y\\""',))
    await provider.apply(create(txt))
    assert server.posts[-1]["create"][0]["targets"] == ['heritage=ingressfed,x="y"']
    assert await provider.records() == [txt]


async def test_pascal_case_answers_are_accepted(server: FakeWebhook, provider: WebhookProvider) -> None:
    server.pascal = True
    server.include = []
    server.regex_include = r"example\.com$"
    rs = a("www.example.com", "192.0.2.1")
    assert (await provider.apply(create(rs))).failed == {}
    assert provider.filter is not None and provider.filter.regex_include == r"example\.com$"
    assert await provider.records() == [rs]


async def test_5xx_is_retried_then_transient(server: FakeWebhook) -> None:
    p = make(server, retries=2)
    try:
        server.fail_next(502, 2)  # the negotiation is retried too
        await p.negotiate()
        assert server.count("GET", "/") == 3
        server.fail_next(502, 2)
        assert await p.records() == []
        assert server.count("GET", "/records") == 3  # two failures, one success
        server.fail_next(500, 3)
        with pytest.raises(TransientProviderError, match="500"):
            await p.records()
    finally:
        await p.close()


async def test_4xx_is_not_retried_and_carries_the_message(
    server: FakeWebhook, provider: WebhookProvider
) -> None:
    await provider.negotiate()
    server.fail_next(400, 1)
    with pytest.raises(PermanentProviderError, match="injected fault 400"):
        await provider.records()
    assert server.count("GET", "/records") == 1
    # On apply a 4xx names the record: it fails alone, others still apply.
    server.rejected.add("bad.example.com")
    res = await provider.apply(create(a("ok.example.com", "192.0.2.1"), a("bad.example.com", "192.0.2.2")))
    assert set(res.failed) == {"bad.example.com"}
    assert "refused by the provider" in res.failed["bad.example.com"]


async def test_unauthorised_is_raised_once_not_bisected(
    server: FakeWebhook, provider: WebhookProvider
) -> None:
    await provider.negotiate()
    server.fail_next(403, 2)  # adjustendpoints, then the POST
    with pytest.raises(PermanentProviderError, match="403"):
        await provider.apply(create(*(a(f"h{i}.example.com", "192.0.2.1") for i in range(6))))
    assert server.count("POST", "/adjustendpoints") == 1


async def test_adjustendpoints_rewrites_are_remembered(
    server: FakeWebhook, provider: WebhookProvider
) -> None:
    server.min_ttl = 120
    rs = a("www.example.com", "192.0.2.1", ttl=30)
    await provider.apply(create(rs))
    stored = a("www.example.com", "192.0.2.1", ttl=120)
    assert await provider.records() == [stored]
    # The next plan compares what the provider stores: no flapping update.
    assert provider.adjust([rs]) == [stored]


async def test_unreachable_is_transient() -> None:
    from tests.fakes.ports import free_port

    p = WebhookProvider(zone=ZONE, options={"url": f"http://127.0.0.1:{free_port()}", "timeout": 1})
    try:
        with pytest.raises(TransientProviderError, match="reach"):
            await p.records()
    finally:
        await p.close()


async def test_timeout_names_the_limit_and_the_option() -> None:
    import asyncio

    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing, never answer

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    p = WebhookProvider(
        zone=ZONE, options={"url": f"http://127.0.0.1:{port}", "timeout": 0.3, "backoff": 0.0}
    )
    try:
        with pytest.raises(TransientProviderError) as err:
            await p.records()
        assert "within 0.3s" in str(err.value) and "dns.options.timeout" in str(err.value)
        assert "TimeoutError()" not in str(err.value)
    finally:
        await p.close()
        for w in held:
            w.close()
        srv.close()
        await srv.wait_closed()
