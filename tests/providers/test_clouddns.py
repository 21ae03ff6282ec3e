"""Cloud DNS provider against the REST fake, through the real google-cloud-dns client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ingressfed.errors import ConfigError, PermanentProviderError, TransientProviderError
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from ingressfed.testing import ProviderContract
from providers.base import Provider
from providers.clouddns import CloudDNSProvider
from tests.fakes.clouddns_api import FakeCloudDNS

PROJECT = "proj-1"
ZONE = "example.com"


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def create(*rs: RecordSet) -> Changes:
    return Changes(tuple(Change(ChangeAction.CREATE, new=r) for r in rs))


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloudDNS]:
    async with FakeCloudDNS() as f:
        f.add_zone(PROJECT, "example-zone", ZONE + ".")
        yield f


def make(fake: FakeCloudDNS, **extra: Any) -> CloudDNSProvider:
    opts = {"project": PROJECT, "endpoint": fake.url, "anonymous": True, "backoff": 0.0, **extra}
    return CloudDNSProvider(zone=ZONE, options=opts)


@pytest.fixture
async def provider(fake: FakeCloudDNS) -> AsyncIterator[CloudDNSProvider]:
    p = make(fake)
    yield p
    await p.close()


class TestCloudDNSContract(ProviderContract):
    @pytest.fixture
    async def provider(self, fake: FakeCloudDNS) -> AsyncIterator[Provider]:
        self.fake = fake
        p = make(fake, maxBatch=10)
        yield p
        await p.close()

    def inject_transient(self, provider: Provider, count: int) -> bool:
        self.fake.fail_next(503, count)
        return True

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        self.fake.rejected.add(name + ".")
        return True

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        return self.fake.change_sizes()

    def refuse_everything(self, provider: Provider) -> bool:
        self.fake.fail_next(403, 100)
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        return len(self.fake.requests)


def mine(records: list[RecordSet]) -> set[RecordSet]:
    return {r for r in records if r.type not in (RecordType.SOA, RecordType.NS)}


async def test_zone_found_by_dns_name_and_by_managed_zone(fake: FakeCloudDNS) -> None:
    fake.add_zone(PROJECT, "other", "other.org.")
    by_dns = make(fake)
    by_name = make(fake, managedZone="example-zone")
    try:
        await by_dns.apply(create(a("www.example.com", "192.0.2.1")))
        assert a("www.example.com", "192.0.2.1") in await by_name.records()
        assert fake.count("GET", "/managedZones") == 1  # the listing, once
        assert fake.count("GET", "/managedZones/example-zone") == 1  # the get by name
    finally:
        await by_dns.close()
        await by_name.close()


async def test_managed_zone_serving_another_name_is_a_clear_error(fake: FakeCloudDNS) -> None:
    fake.add_zone(PROJECT, "other", "other.org.")
    p = make(fake, managedZone="other")
    with pytest.raises(PermanentProviderError, match=r"other\.org"):
        await p.records()
    await p.close()


async def test_two_zones_with_the_same_dns_name_need_managed_zone(fake: FakeCloudDNS) -> None:
    fake.add_zone(PROJECT, "example-private", ZONE + ".")
    p = make(fake)
    with pytest.raises(PermanentProviderError, match="managedZone"):
        await p.records()
    await p.close()


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="project"):
        CloudDNSProvider(zone=ZONE, options={})
    with pytest.raises(ConfigError, match="bogus"):
        CloudDNSProvider(zone=ZONE, options={"project": "p", "bogus": 1})


async def test_update_is_one_atomic_change_of_exact_deletion_plus_addition(
    fake: FakeCloudDNS, provider: CloudDNSProvider
) -> None:
    old = a("www.example.com", "192.0.2.1")
    await provider.apply(create(old))
    new = a("www.example.com", "192.0.2.2", "192.0.2.3", ttl=60)
    res = await provider.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=new),)))
    assert res.failed == {}
    assert mine(await provider.records()) == {new}
    last = fake.zones[(PROJECT, "example-zone")].changes[-1]
    assert last["deletions"] == [
        {
            "kind": "dns#resourceRecordSet",
            "name": "www.example.com.",
            "type": "A",
            "ttl": 30,
            "rrdatas": ["192.0.2.1"],
        }
    ]
    assert [d["rrdatas"] for d in last["additions"]] == [["192.0.2.2", "192.0.2.3"]]


async def test_a_to_cname_swap_and_txt_and_delete(provider: CloudDNSProvider) -> None:
    old = a("app.example.com", "192.0.2.1")
    txt = RecordSet("_ingressfed.app.example.com", RecordType.TXT, 30, ('"heritage=ingressfed"',))
    await provider.apply(create(old, txt))
    cname = RecordSet("app.example.com", RecordType.CNAME, 30, ("lb.elb.amazonaws.com",))
    await provider.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=cname),)))
    assert mine(await provider.records()) == {cname, txt}
    await provider.apply(
        Changes((Change(ChangeAction.DELETE, old=cname), Change(ChangeAction.DELETE, old=txt)))
    )
    assert mine(await provider.records()) == set()


async def test_records_follow_pagination(fake: FakeCloudDNS, provider: CloudDNSProvider) -> None:
    fake.page_size = 3
    sets = [a(f"h{i}.example.com", f"192.0.2.{i + 1}") for i in range(10)]
    await provider.apply(create(*sets))
    before = fake.count("GET", "/rrsets")
    got = await provider.records()
    assert mine(got) == set(sets)
    assert len(got) == 12  # SOA and NS too
    assert fake.count("GET", "/rrsets") - before == 4  # ceil(12 / 3) pages


async def test_412_from_a_concurrent_writer_refreshes_and_retries(
    fake: FakeCloudDNS, provider: CloudDNSProvider
) -> None:
    old = a("www.example.com", "192.0.2.1")
    await provider.apply(create(old))
    # Another writer bumps the TTL after our read: our exact deletion no longer matches.
    fake.before_next_change(
        lambda f: f.put(PROJECT, "example-zone", "www.example.com.", "A", 300, ["192.0.2.1"])
    )
    new = a("www.example.com", "192.0.2.9")
    posts = fake.count("POST", "/changes")
    res = await provider.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=new),)))
    assert res.failed == {}
    assert fake.count("POST", "/changes") - posts == 2
    assert mine(await provider.records()) == {new}


async def test_409_on_create_of_identical_set_is_success(
    fake: FakeCloudDNS, provider: CloudDNSProvider
) -> None:
    rs = a("www.example.com", "192.0.2.1")
    fake.before_next_change(
        lambda f: f.put(PROJECT, "example-zone", "www.example.com.", "A", 30, ["192.0.2.1"])
    )
    res = await provider.apply(create(rs))
    assert res.failed == {}
    assert mine(await provider.records()) == {rs}


async def test_409_on_create_of_different_set_fails_that_record_only(
    fake: FakeCloudDNS, provider: CloudDNSProvider
) -> None:
    fake.before_next_change(
        lambda f: f.put(PROJECT, "example-zone", "www.example.com.", "A", 30, ["198.51.100.7"])
    )
    res = await provider.apply(create(a("www.example.com", "192.0.2.1"), a("api.example.com", "192.0.2.2")))
    assert set(res.failed) == {"www.example.com"}
    assert mine(await provider.records()) == {
        a("www.example.com", "198.51.100.7"),  # the other writer's set is untouched
        a("api.example.com", "192.0.2.2"),
    }


async def test_endless_races_become_transient_after_bounded_retries(fake: FakeCloudDNS) -> None:
    p = make(fake, conflictRetries=2)
    old = a("www.example.com", "192.0.2.1")
    await p.apply(create(old))
    ttl = iter(range(100, 200))

    def bump(f: FakeCloudDNS) -> None:
        f.put(PROJECT, "example-zone", "www.example.com.", "A", next(ttl), ["192.0.2.1"])

    fake.before_next_change(bump, times=10)
    posts = fake.count("POST", "/changes")
    with pytest.raises(TransientProviderError, match="kept changing"):
        await p.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=a("www.example.com", "192.0.2.9")),)))
    assert fake.count("POST", "/changes") - posts == 3
    await p.close()


async def test_throttling_and_5xx_are_retried_then_transient(
    fake: FakeCloudDNS, provider: CloudDNSProvider
) -> None:
    fake.fail_next(429, 2)
    assert mine(await provider.records()) == set()
    fake.fail_next(500, 10)
    with pytest.raises(TransientProviderError, match="500"):
        await provider.records()


async def test_forbidden_is_permanent(fake: FakeCloudDNS, provider: CloudDNSProvider) -> None:
    fake.fail_next(403, 1)
    with pytest.raises(PermanentProviderError, match="403"):
        await provider.records()
    await provider.records()
    # A batch refused for want of permission is raised once, not bisected record by record.
    fake.fail_next(403, 1)
    posts = fake.count("POST", "/changes")
    with pytest.raises(PermanentProviderError, match=r"roles/dns\.admin"):
        await provider.apply(create(*(a(f"h{i}.example.com", "192.0.2.1") for i in range(8))))
    assert fake.count("POST", "/changes") - posts == 1


async def test_a_rejected_record_fails_alone(fake: FakeCloudDNS, provider: CloudDNSProvider) -> None:
    good1, good2 = a("a.example.com", "192.0.2.1"), a("b.example.com", "192.0.2.2")
    bad = a("bad.example.com", "300.1.2.3")
    res = await provider.apply(create(good1, bad, good2))
    assert set(res.failed) == {"bad.example.com"}
    assert res.applied == 2
    assert mine(await provider.records()) == {good1, good2}


async def test_waits_for_change_done_when_asked(fake: FakeCloudDNS) -> None:
    fake.pending_polls = 2
    p = make(fake, waitForChange=True)
    await p.apply(create(a("www.example.com", "192.0.2.1")))
    assert fake.count("GET", "/changes/" + fake.zones[(PROJECT, "example-zone")].changes[-1]["id"]) == 2
    await p.close()


async def test_cloud_dns_rules_are_enforced_per_record(
    fake: FakeCloudDNS, provider: CloudDNSProvider
) -> None:
    www = a("www.example.com", "192.0.2.1")
    await provider.apply(create(www))
    apex_ns = next(r for r in await provider.records() if r.type is RecordType.NS)
    res = await provider.apply(
        Changes(
            (
                Change(
                    ChangeAction.CREATE,
                    new=RecordSet("www.example.com", RecordType.CNAME, 30, ("x.example.net",)),
                ),
                Change(ChangeAction.CREATE, new=a("www.other.org", "192.0.2.2")),
                Change(ChangeAction.DELETE, old=apex_ns),
                Change(ChangeAction.CREATE, new=a("ok.example.com", "192.0.2.3")),
            )
        )
    )
    assert set(res.failed) == {"www.example.com", "www.other.org", "example.com"}
    assert "CNAME" in res.failed["www.example.com"]
    assert "not within the zone" in res.failed["www.other.org"]
    assert "apex" in res.failed["example.com"]
    assert mine(await provider.records()) == {www, a("ok.example.com", "192.0.2.3")}
    assert apex_ns in await provider.records()
