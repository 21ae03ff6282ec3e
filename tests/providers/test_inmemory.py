"""The in-memory reference provider: the contract suite plus its strict rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    RecordConflictError,
    RecordNotFoundError,
    TransientProviderError,
)
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType, Routing
from ingressfed.testing import ProviderContract
from providers.base import Provider
from providers.inmemory import InMemoryProvider

ZONE = "example.com"


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def create(rs: RecordSet) -> Change:
    return Change(ChangeAction.CREATE, new=rs)


class TestInMemoryContract(ProviderContract):
    @pytest.fixture
    async def provider(self) -> AsyncIterator[Provider]:
        p = InMemoryProvider(zone=ZONE, options={"maxBatch": 10})
        yield p
        await p.close()

    async def seed_foreign(self, provider: Provider, records: list[RecordSet]) -> None:  # type: ignore[override]
        assert isinstance(provider, InMemoryProvider)
        provider.seed(records)

    def inject_transient(self, provider: Provider, count: int) -> bool:
        assert isinstance(provider, InMemoryProvider)
        provider.fail_next(count)
        return True

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        assert isinstance(provider, InMemoryProvider)
        provider.reject(name, "refused for the test")
        return True

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        assert isinstance(provider, InMemoryProvider)
        return provider.batch_sizes

    def refuse_everything(self, provider: Provider) -> bool:
        assert isinstance(provider, InMemoryProvider)
        provider.refuse_all("credentials revoked for the test")
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        assert isinstance(provider, InMemoryProvider)
        return provider.calls["batch"]


@pytest.fixture
def mem() -> InMemoryProvider:
    return InMemoryProvider(zone=ZONE)


async def test_create_of_existing_set_conflicts(mem: InMemoryProvider) -> None:
    await mem.apply_batch(Changes((create(a("www.example.com", "192.0.2.1")),)))
    with pytest.raises(RecordConflictError) as err:
        await mem.apply_batch(Changes((create(a("www.example.com", "192.0.2.2")),)))
    assert err.value.record == "www.example.com"


@pytest.mark.parametrize("action", [ChangeAction.DELETE, ChangeAction.UPDATE])
async def test_change_of_missing_or_differing_set_not_found(
    mem: InMemoryProvider, action: ChangeAction
) -> None:
    mem.seed([a("www.example.com", "192.0.2.1")])
    differing = a("www.example.com", "192.0.2.9")
    missing = a("nope.example.com", "192.0.2.1")
    for old in (differing, missing):
        change = (
            Change(action, old=old)
            if action is ChangeAction.DELETE
            else Change(action, old=old, new=a(old.name, "192.0.2.5"))
        )
        with pytest.raises(RecordNotFoundError) as err:
            await mem.apply_batch(Changes((change,)))
        assert err.value.record == old.name
    assert await mem.records() == [a("www.example.com", "192.0.2.1")]


async def test_cname_beside_other_data_conflicts(mem: InMemoryProvider) -> None:
    mem.seed([RecordSet("www.example.com", RecordType.TXT, 30, ('"x"',))])
    with pytest.raises(RecordConflictError, match=r"CNAME at www\.example\.com"):
        await mem.apply_batch(
            Changes((create(RecordSet("www.example.com", RecordType.CNAME, 30, ("other.example.net",))),))
        )


@pytest.mark.parametrize(
    ("rs", "fragment"),
    [
        (a("www.example.com", "192.0.2.300"), "not an IPv4 address"),
        (RecordSet("www.example.com", RecordType.AAAA, 30, ("192.0.2.1",)), "not an IPv6 address"),
        (a("www.example.org", "192.0.2.1"), "outside the zone"),
        (a(("x" * 64) + ".example.com", "192.0.2.1"), "at most 63"),
        (a(".".join(["abcdefghi"] * 25) + ".example.com", "192.0.2.1"), "at most 253"),
        (a("www.example.com", "192.0.2.1", ttl=-1), "TTL -1"),
        (a("www.example.com", "192.0.2.1", ttl=2**31), "out of range"),
        (a("bad label.example.com", "192.0.2.1"), "characters other than"),
        (RecordSet("www.example.com", RecordType.TXT, 30, ("unquoted",)), "quoted"),
        (RecordSet("www.example.com", RecordType.TXT, 30, ('"' + "x" * 256 + '"',)), "at most 255"),
        (
            RecordSet("www.example.com", RecordType.CNAME, 30, ("a.example.net", "b.example.net")),
            "exactly one",
        ),
        (RecordSet("www.example.com", RecordType.A, 30, ()), "no values"),
        (
            RecordSet("www.example.com", RecordType.A, 30, ("192.0.2.1",), "c1", Routing("c1", "us-east1")),
            "does not support routed",
        ),
    ],
)
async def test_invalid_records_refused(mem: InMemoryProvider, rs: RecordSet, fragment: str) -> None:
    with pytest.raises(InvalidRecordError, match=fragment) as err:
        await mem.apply_batch(Changes((create(rs),)))
    assert err.value.record == rs.name
    assert await mem.records() == []


async def test_batch_is_atomic(mem: InMemoryProvider) -> None:
    batch = Changes((create(a("one.example.com", "192.0.2.1")), create(a("two.example.com", "192.0.2.256"))))
    with pytest.raises(InvalidRecordError, match=r"two\.example\.com"):
        await mem.apply_batch(batch)
    assert await mem.records() == []


async def test_apply_isolates_and_counts(mem: InMemoryProvider) -> None:
    batch = Changes(
        (
            create(a("one.example.com", "192.0.2.1")),
            create(a("two.example.com", "192.0.2.256")),
            create(a("three.example.com", "192.0.2.3")),
        )
    )
    result = await mem.apply(batch)
    assert result.applied == 2
    assert list(result.failed) == ["two.example.com"]
    assert "not an IPv4 address" in result.failed["two.example.com"]
    assert {rs.name for rs in await mem.records()} == {"one.example.com", "three.example.com"}
    assert mem.calls["apply"] == 1
    assert mem.calls["records"] == 1


async def test_fail_next_is_transient_then_recovers(mem: InMemoryProvider) -> None:
    mem.fail_next(1)
    with pytest.raises(TransientProviderError):
        await mem.records()
    assert await mem.records() == []


async def test_routed_sets_with_routing_option() -> None:
    mem = InMemoryProvider(zone=ZONE, options={"routing": True})
    routed = [
        RecordSet("www.example.com", RecordType.A, 30, (f"192.0.2.{i}",), f"c{i}", Routing(f"c{i}", "r"))
        for i in (1, 2)
    ]
    await mem.apply_batch(Changes(tuple(create(rs) for rs in routed)))
    assert len(await mem.records()) == 2
    with pytest.raises(RecordConflictError, match="plain set beside routed"):
        await mem.apply_batch(Changes((create(a("www.example.com", "192.0.2.9")),)))


@pytest.mark.parametrize(
    "options", [{"maxBatch": 0}, {"maxBatch": "10"}, {"routing": "yes"}, {"colour": "blue"}]
)
def test_bad_options_name_the_field(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"dns\.options\."):
        InMemoryProvider(zone=ZONE, options=options)
