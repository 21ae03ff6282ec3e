"""The embedded provider: contract suite, strict store rules, persistence, subscribers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingressfed.dnsserver.zone import ZoneData
from ingressfed.errors import ConfigError, InvalidRecordError, RecordConflictError, RecordNotFoundError
from ingressfed.model import Change, ChangeAction, Changes, Location, RecordSet, RecordType, Routing
from ingressfed.testing import ProviderContract
from providers.base import Provider
from providers.embedded import EmbeddedProvider
from providers.loader import create as create_provider

ZONE = "example.com"


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def create(rs: RecordSet) -> Change:
    return Change(ChangeAction.CREATE, new=rs)


class TestEmbeddedContract(ProviderContract):
    @pytest.fixture
    async def provider(self, tmp_path: Path) -> AsyncIterator[Provider]:
        p = EmbeddedProvider(zone=ZONE, options={"maxBatch": 10, "zoneFile": str(tmp_path / "zone.json")})
        yield p
        await p.close()

    def refuse_everything(self, provider: Provider) -> bool:
        assert isinstance(provider, EmbeddedProvider) and provider.zone_file is not None
        blocker = provider.zone_file.parent / "not-a-directory"
        blocker.write_text("")
        provider.zone_file = blocker / "zone.json"  # every write now fails: ENOTDIR
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        assert isinstance(provider, EmbeddedProvider)
        return provider.calls["write"]


@pytest.fixture
def emb(tmp_path: Path) -> EmbeddedProvider:
    return EmbeddedProvider(zone=ZONE, options={"zoneFile": str(tmp_path / "zone.json")})


async def test_entry_point_finds_it(tmp_path: Path) -> None:
    p = create_provider("embedded", zone=ZONE, options={"zoneFile": str(tmp_path / "z.json")})
    assert isinstance(p, EmbeddedProvider)
    assert p.capabilities.routing is True


async def test_create_existing_conflicts_and_changes_nothing(emb: EmbeddedProvider) -> None:
    await emb.apply_batch(Changes((create(a("www.example.com", "192.0.2.1")),)))
    serial = emb.zone_data.serial
    with pytest.raises(RecordConflictError) as err:
        await emb.apply_batch(
            Changes((create(a("new.example.com", "192.0.2.3")), create(a("www.example.com", "192.0.2.2"))))
        )
    assert err.value.record == "www.example.com"
    # all-or-nothing: the valid first change was not applied either
    assert {rs.name for rs in await emb.records()} == {"www.example.com"}
    assert emb.zone_data.serial == serial


@pytest.mark.parametrize("action", [ChangeAction.DELETE, ChangeAction.UPDATE])
async def test_missing_or_differing_set_not_found(emb: EmbeddedProvider, action: ChangeAction) -> None:
    await emb.apply_batch(Changes((create(a("www.example.com", "192.0.2.1")),)))
    for old in (a("www.example.com", "192.0.2.9"), a("nope.example.com", "192.0.2.1")):
        change = (
            Change(action, old=old)
            if action is ChangeAction.DELETE
            else Change(action, old=old, new=a(old.name, "192.0.2.7"))
        )
        with pytest.raises(RecordNotFoundError) as err:
            await emb.apply_batch(Changes((change,)))
        assert err.value.record == old.name


async def test_cname_beside_other_data_conflicts(emb: EmbeddedProvider) -> None:
    await emb.apply_batch(Changes((create(a("www.example.com", "192.0.2.1")),)))
    cname = RecordSet("www.example.com", RecordType.CNAME, 30, ("other.example.net",))
    with pytest.raises(RecordConflictError, match="CNAME"):
        await emb.apply_batch(Changes((create(cname),)))


async def test_invalid_values_and_types_rejected(emb: EmbeddedProvider) -> None:
    for bad in (
        a("x.example.com", "300.1.1.1"),
        a("x.example.org", "192.0.2.1"),
        RecordSet("x.example.com", RecordType.TXT, 30, ("unquoted",)),
        RecordSet("example.com", RecordType.NS, 30, ("ns9.example.net",)),
    ):
        with pytest.raises(InvalidRecordError):
            await emb.apply_batch(Changes((create(bad),)))
    assert await emb.records() == []


async def test_batch_isolation_through_apply(emb: EmbeddedProvider) -> None:
    result = await emb.apply(
        Changes((create(a("good.example.com", "192.0.2.1")), create(a("bad.example.com", "1.2.3.999"))))
    )
    assert result.applied == 1
    assert set(result.failed) == {"bad.example.com"}
    assert [rs.name for rs in await emb.records()] == ["good.example.com"]


async def test_subscribers_get_each_new_zone_with_increasing_serial(emb: EmbeddedProvider) -> None:
    seen: list[ZoneData] = []
    unsubscribe = emb.subscribe(seen.append)
    first = emb.zone_data.serial
    await emb.apply_batch(Changes((create(a("a.example.com", "192.0.2.1")),)))
    await emb.apply_batch(Changes((create(a("b.example.com", "192.0.2.2")),)))
    assert [d.serial for d in seen] == [first + 1, first + 2]
    assert [rs.name for rs in seen[-1].records] == ["a.example.com", "b.example.com"]
    unsubscribe()
    await emb.apply_batch(Changes((create(a("c.example.com", "192.0.2.3")),)))
    assert len(seen) == 2


async def test_zone_file_persisted_atomically_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "zone.json"
    routed = RecordSet(
        "g.example.com",
        RecordType.A,
        30,
        ("192.0.2.10",),
        "cluster-eu",
        Routing("cluster-eu", "europe-west1", Location(50.4, 3.8), weight=50),
    )
    p1 = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path), "nameservers": ["ns-a.example.com"]})
    await p1.apply_batch(Changes((create(a("www.example.com", "192.0.2.1")), create(routed))))
    doc = json.loads(path.read_text())
    assert doc["zone"] == ZONE and len(doc["records"]) == 2
    assert [p.name for p in path.parent.iterdir()] == ["zone.json"]  # no temp files left behind
    p2 = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path), "nameservers": ["ns-a.example.com"]})
    assert p2.zone_data == p1.zone_data
    assert set(await p2.records()) == set(await p1.records())


async def test_changed_soa_options_bump_serial_on_load(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    p1 = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path)})
    await p1.apply_batch(Changes((create(a("www.example.com", "192.0.2.1")),)))
    p2 = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path), "hostmaster": "dns-admin.example.com"})
    assert p2.zone_data.serial == p1.zone_data.serial + 1
    assert p2.zone_data.soa.hostmaster == "dns-admin.example.com"


def test_bad_options_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        EmbeddedProvider(
            zone=ZONE,
            options={"nameservers": "ns1", "soaMinimum": -1, "bogus": 1, "hostmaster": 3},
        )
    text = str(err.value)
    for key in ("nameservers", "soaMinimum", "bogus", "hostmaster"):
        assert f"dns.options.{key}" in text


def test_zone_file_of_another_zone_or_corrupt_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path)})
    EmbeddedProvider(zone="example.org", options={"zoneFile": str(tmp_path / "org.json")})
    doc = {
        "version": 1,
        "zone": "example.org",
        "serial": 3,
        "soa": {"nameservers": ["ns1.example.org"], "hostmaster": "h.example.org"},
        "records": [{"name": "x.example.org", "type": "A", "ttl": "30", "values": ["192.0.2.1"]}],
    }
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"records\[0\]\.ttl"):
        EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path)})
    doc["records"] = []
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"holds zone example\.org"):
        EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path)})


def test_hostmaster_as_mail_address() -> None:
    p = EmbeddedProvider(zone=ZONE, options={"hostmaster": "dns-admin@example.com"})
    assert p.zone_data.soa.hostmaster == "dns-admin.example.com"
