"""Cache, policy and dry-run wrappers around the strict in-memory provider."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from ingressfed.core.desired import Desired
from ingressfed.errors import TransientProviderError
from ingressfed.model import Change, ChangeAction, Changes, Policy, RecordSet, RecordType, Routing
from ingressfed.testing import OWNER, ProviderContract, converge, expected, managed
from providers.base import Provider
from providers.cache import CachedProvider
from providers.dryrun import DryRunProvider, format_changes
from providers.inmemory import InMemoryProvider
from providers.policy import PolicyProvider

ZONE = "example.com"


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def desired(*sets: RecordSet) -> list[Desired]:
    return [Desired(rs, "service/default/app") for rs in sets]


def inner_of(p: Provider) -> InMemoryProvider:
    assert isinstance(p, CachedProvider)
    assert isinstance(p.inner, InMemoryProvider)
    return p.inner


class TestCachedContract(ProviderContract):
    """The cache must be invisible: the whole contract holds through it."""

    @pytest.fixture
    async def provider(self) -> AsyncIterator[Provider]:
        p = CachedProvider(InMemoryProvider(zone=ZONE, options={"maxBatch": 10}))
        yield p
        await p.close()

    async def seed_foreign(self, provider: Provider, records: list[RecordSet]) -> None:  # type: ignore[override]
        inner_of(provider).seed(records)
        assert isinstance(provider, CachedProvider)
        provider.invalidate()  # someone else wrote: only a resync sees it

    def inject_transient(self, provider: Provider, count: int) -> bool:
        inner_of(provider).fail_next(count)
        return True

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        inner_of(provider).reject(name)
        return True

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        return inner_of(provider).batch_sizes

    def refuse_everything(self, provider: Provider) -> bool:
        inner_of(provider).refuse_all("credentials revoked for the test")
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        return inner_of(provider).calls["batch"]


async def test_idle_federation_makes_zero_provider_calls() -> None:
    inner = InMemoryProvider(zone=ZONE)
    cached = CachedProvider(inner)
    want = desired(a("www.example.com", "192.0.2.1"), a("api.example.com", "192.0.2.2"))
    await converge(cached, want)
    calls_after_first = dict(inner.calls)
    assert calls_after_first == {"records": 1, "apply": 1, "batch": 1}
    for _ in range(50):  # idle reconciles
        result = await converge(cached, want)
        assert result.applied == 0
    assert dict(inner.calls) == calls_after_first
    assert cached.hits == 50


async def test_cache_follows_applied_changes_and_resync_rereads() -> None:
    inner = InMemoryProvider(zone=ZONE)
    cached = CachedProvider(inner)
    await converge(cached, desired(a("www.example.com", "192.0.2.1")))
    await converge(cached, desired(a("www.example.com", "192.0.2.9")))
    assert set(await cached.records()) == set(await inner.records())
    assert inner.calls["records"] == 2  # the first converge and the comparison above
    inner.seed([a("outside.example.com", "198.51.100.1")])  # someone else writes
    assert a("outside.example.com", "198.51.100.1") not in await cached.records()
    cached.invalidate()
    assert a("outside.example.com", "198.51.100.1") in await cached.records()


async def test_cache_drops_failed_groups_only() -> None:
    inner = InMemoryProvider(zone=ZONE)
    cached = CachedProvider(inner)
    await cached.records()
    inner.reject("bad.example.com")
    result = await converge(
        cached, desired(a("good.example.com", "192.0.2.1"), a("bad.example.com", "192.0.2.2"))
    )
    assert set(result.failed) == {"bad.example.com", "_ingressfed.bad.example.com"}
    assert set(await cached.records()) == set(await inner.records())
    assert cached.fresh


async def test_cache_forgets_after_an_error() -> None:
    inner = InMemoryProvider(zone=ZONE)
    cached = CachedProvider(inner)
    await cached.records()
    inner.fail_next(1)
    with pytest.raises(TransientProviderError):
        await converge(cached, desired(a("www.example.com", "192.0.2.1")))
    assert not cached.fresh
    await converge(cached, desired(a("www.example.com", "192.0.2.1")))
    assert managed(await inner.records()) == expected(desired(a("www.example.com", "192.0.2.1")))


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        (Policy.SYNC, {ChangeAction.CREATE, ChangeAction.UPDATE, ChangeAction.DELETE}),
        (Policy.UPSERT_ONLY, {ChangeAction.CREATE, ChangeAction.UPDATE}),
        (Policy.CREATE_ONLY, {ChangeAction.CREATE}),
    ],
)
async def test_policy_drops_and_logs_forbidden_changes(
    policy: Policy, kept: set[ChangeAction], caplog: pytest.LogCaptureFixture
) -> None:
    inner = InMemoryProvider(zone=ZONE)
    old_upd, old_del = a("upd.example.com", "192.0.2.1"), a("del.example.com", "192.0.2.2")
    inner.seed([old_upd, old_del])
    new = a("new.example.com", "192.0.2.3")
    changes = Changes(
        (
            Change(ChangeAction.CREATE, new=new),
            Change(ChangeAction.UPDATE, old=old_upd, new=a("upd.example.com", "192.0.2.4")),
            Change(ChangeAction.DELETE, old=old_del),
        )
    )
    wrapped = PolicyProvider(inner, policy)
    with caplog.at_level(logging.WARNING, logger="providers.policy"):
        result = await wrapped.apply(changes)
    assert result.applied == len(kept)
    names = {rs.name: rs for rs in await inner.records()}
    assert ("new.example.com" in names) is (ChangeAction.CREATE in kept)
    assert (names["upd.example.com"].values == ("192.0.2.4",)) is (ChangeAction.UPDATE in kept)
    assert ("del.example.com" in names) is (ChangeAction.DELETE not in kept)
    forbidden = 3 - len(kept)
    assert wrapped.dropped == forbidden
    assert sum("forbids" in r.getMessage() for r in caplog.records) == forbidden


async def test_dry_run_prints_and_changes_nothing() -> None:
    inner = InMemoryProvider(zone=ZONE)
    inner.seed([a("old.example.com", "192.0.2.1"), a("swap.example.com", "192.0.2.5")])
    printed: list[str] = []
    dry = DryRunProvider(inner, out=printed.append)
    before = await inner.records()
    result = await converge(dry, desired(a("new.example.com", "192.0.2.2")))
    assert result.applied == 0
    assert await inner.records() == before
    assert inner.calls["apply"] == 0
    assert len(printed) == 1
    assert "new.example.com" in printed[0]
    assert "none applied" in printed[0]
    await converge(dry, desired(a("new.example.com", "192.0.2.2")))
    assert len(printed) == 1  # the same plan is printed once


def test_format_changes_table() -> None:
    old = a("www.example.com", "192.0.2.1")
    routing = Routing("c1", "us-east-1")
    changes = Changes(
        (
            Change(ChangeAction.CREATE, new=a("new.example.com", "192.0.2.2", "192.0.2.3")),
            Change(
                ChangeAction.UPDATE,
                old=old,
                new=RecordSet(old.name, RecordType.CNAME, 60, ("lb.example.net",)),
            ),
            Change(
                ChangeAction.DELETE,
                old=RecordSet("r.example.com", RecordType.A, 30, ("192.0.2.4",), "c1", routing),
            ),
        )
    )
    lines = format_changes(changes, zone=ZONE).splitlines()
    assert lines[0] == "dry run: zone example.com: 3 change(s), none applied"
    assert lines[1].split() == ["ACTION", "TYPE", "NAME", "SET-ID", "TTL", "VALUES"]
    assert lines[2].split() == ["CREATE", "A", "new.example.com", "30", "192.0.2.2,", "192.0.2.3"]
    assert lines[3].split() == [
        "UPDATE",
        "A->CNAME",
        "www.example.com",
        "30->60",
        "192.0.2.1",
        "->",
        "lb.example.net",
    ]
    assert lines[4].split() == ["DELETE", "A", "r.example.com", "c1", "30", "192.0.2.4"]
    # Columns line up: every row starts its NAME at the same offset.
    assert (
        len({line.index(name) for line, name in zip(lines[2:], ["new.", "www.", "r.ex"], strict=True)}) == 1
    )
    assert format_changes(Changes(), zone=ZONE) == "dry run: zone example.com: no changes"
    assert OWNER  # the contract's owner id is what converge used


async def test_outer_wrappers_pass_resync_to_the_cache() -> None:
    inner = InMemoryProvider(zone=ZONE)
    cached = CachedProvider(inner)
    stacked = PolicyProvider(DryRunProvider(cached, out=None), Policy.SYNC)
    await stacked.records()
    assert cached.fresh
    stacked.invalidate()
    assert not cached.fresh
    await stacked.records()
    assert inner.calls["records"] == 2


async def test_dry_run_under_the_cache_prints_once_and_warns_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = InMemoryProvider(zone=ZONE)
    printed: list[str] = []
    stacked = CachedProvider(DryRunProvider(inner, out=printed.append))
    caplog.set_level(logging.DEBUG)
    for _ in range(3):  # reconcile cycles
        await converge(stacked, desired(a("new.example.com", "192.0.2.2"), a("n2.example.com", "192.0.2.3")))
    assert len(printed) == 1
    shown = [r for r in caplog.records if r.levelno >= logging.INFO and "new.example.com" in r.getMessage()]
    assert shown == []  # printed to stdout once, not logged again at INFO
    assert not [r for r in caplog.records if "expected" in r.getMessage()]
    assert inner.calls["records"] == 1  # the dry run did not invalidate the cache every cycle
