"""Cloud DNS routing policies: read (foreign ones left alone), geo written for ``routing: geolocation``,
and TXT data in 255-character strings. Against the REST fake, through the real google-cloud-dns client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ingressfed.core.desired import Desired
from ingressfed.model import Location, RecordSet, RecordType, Routing
from ingressfed.testing import converge, pending
from providers.clouddns import CloudDNSProvider
from tests.fakes.clouddns_api import FakeCloudDNS

PROJECT = "proj-1"
ZONE = "example.com"
WRR = {
    "name": f"w.{ZONE}.",
    "type": "A",
    "ttl": 60,
    "routingPolicy": {
        "wrr": {"items": [{"weight": 1, "rrdatas": ["192.0.2.1"]}, {"weight": 3, "rrdatas": ["192.0.2.2"]}]}
    },
}
PRIMARY_BACKUP = {
    "name": f"w.{ZONE}.",
    "type": "A",
    "ttl": 60,
    "routingPolicy": {
        "primaryBackup": {
            "primaryTargets": {"internalLoadBalancers": []},
            "backupGeoTargets": {"items": [{"location": "us-east1", "rrdatas": ["192.0.2.9"]}]},
        }
    },
}
GEO = {
    "name": f"g.{ZONE}.",
    "type": "A",
    "ttl": 60,
    "routingPolicy": {"geo": {"items": [{"location": "us-east1", "rrdatas": ["198.51.100.1"]}]}},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloudDNS]:
    async with FakeCloudDNS() as f:
        f.add_zone(PROJECT, "example-zone", ZONE + ".")
        yield f


def make(fake: FakeCloudDNS, **extra: Any) -> CloudDNSProvider:
    opts = {"project": PROJECT, "endpoint": fake.url, "anonymous": True, "backoff": 0.0, **extra}
    return CloudDNSProvider(zone=ZONE, options=opts)


def routed(name: str, cluster: str, region: str, *values: str, loc: Location | None = None) -> Desired:
    rs = RecordSet(name, RecordType.A, 30, values, cluster, Routing(cluster, region, loc))
    return Desired(rs, "service/default/app")


def stored(fake: FakeCloudDNS, name: str, rtype: str = "A") -> dict[str, Any]:
    return fake.zones[(PROJECT, "example-zone")].rrsets[(name + ".", rtype)]


async def test_foreign_routing_policies_are_read_and_left_alone(fake: FakeCloudDNS) -> None:
    fake.put_raw(PROJECT, "example-zone", WRR)
    fake.put_raw(PROJECT, "example-zone", GEO)
    p = make(fake)
    try:
        names = {rs.name for rs in await p.records()}
        assert {f"w.{ZONE}", f"g.{ZONE}"} <= names  # read, not a KeyError('rrdatas')
        desired = [
            Desired(RecordSet(f"w.{ZONE}", RecordType.A, 30, ("203.0.113.7",)), "service/default/w"),
            Desired(RecordSet(f"ok.{ZONE}", RecordType.A, 30, ("203.0.113.8",)), "service/default/ok"),
        ]
        await converge(p, desired)
        assert stored(fake, f"w.{ZONE}")["routingPolicy"]["wrr"]["items"][1]["rrdatas"] == ["192.0.2.2"]
        assert "routingPolicy" in stored(fake, f"g.{ZONE}")
        assert stored(fake, f"ok.{ZONE}")["rrdatas"] == ["203.0.113.8"]
    finally:
        await p.close()


async def test_a_foreign_policy_where_we_write_is_a_conflict_not_a_loop(fake: FakeCloudDNS) -> None:
    p = make(fake)
    try:
        desired = [Desired(RecordSet(f"w.{ZONE}", RecordType.A, 30, ("203.0.113.7",)), "service/default/w")]
        await converge(p, desired)
        # Someone replaced our set with a policy ingressfed does not write. (A plain wrr reads as
        # weighted shares now, ingressfed's own form: the companion TXT says whose it is.)
        fake.put_raw(PROJECT, "example-zone", PRIMARY_BACKUP)
        desired = [Desired(RecordSet(f"w.{ZONE}", RecordType.A, 30, ("203.0.113.9",)), "service/default/w")]
        changes = await pending(p, desired)
        if changes:
            result = await p.apply(changes)
            assert f"w.{ZONE}" in result.failed and "routing policy" in result.failed[f"w.{ZONE}"]
        assert "routingPolicy" in stored(fake, f"w.{ZONE}")
    finally:
        await p.close()


async def test_geolocation_writes_one_geo_policy_per_name(fake: FakeCloudDNS) -> None:
    p = make(fake, routing="geolocation")
    name = f"app.{ZONE}"
    desired = [
        routed(name, "us-east1-b", "us-east1", "10.0.0.1"),
        routed(name, "us-east1-c", "us-east1", "10.0.0.2"),
        routed(name, "europe-west1-b", "europe-west1", "10.0.1.1"),
        routed(name, "aws-virginia", "us-east-1", "10.0.2.1"),  # an AWS region: nearest GCP region
    ]
    try:
        result = await converge(p, desired)
        assert result.failed == {}
        raw = stored(fake, name)
        assert "rrdatas" not in raw
        items = {i["location"]: sorted(i["rrdatas"]) for i in raw["routingPolicy"]["geo"]["items"]}
        assert items["europe-west1"] == ["10.0.1.1"]
        assert set(items["us-east1"]) >= {"10.0.0.1", "10.0.0.2"}
        assert "10.0.2.1" in {v for vs in items.values() for v in vs}
        assert not await pending(p, desired)  # read back exactly as adjusted: no flapping
        changes_before = len(fake.change_sizes())
        desired[2] = routed(name, "europe-west1-b", "europe-west1", "10.0.1.9")
        result = await converge(p, desired)
        assert result.failed == {} and len(fake.change_sizes()) == changes_before + 1
        items = {i["location"]: i["rrdatas"] for i in stored(fake, name)["routingPolicy"]["geo"]["items"]}
        assert items["europe-west1"] == ["10.0.1.9"]
        assert not await pending(p, desired)
        await converge(p, [])
        assert (name + ".", "A") not in fake.zones[(PROJECT, "example-zone")].rrsets
    finally:
        await p.close()


async def test_long_txt_is_written_as_255_character_strings(fake: FakeCloudDNS) -> None:
    p = make(fake)
    text = "v=" + "x" * 600
    desired = [Desired(RecordSet(f"t.{ZONE}", RecordType.TXT, 30, (f'"{text}"',)), "service/default/t")]
    try:
        result = await converge(p, desired)
        assert result.failed == {}
        (rrdata,) = stored(fake, f"t.{ZONE}", "TXT")["rrdatas"]
        parts = rrdata[1:-1].split('" "')
        assert "".join(parts) == text and max(map(len, parts)) <= 255
        assert not await pending(p, desired)
    finally:
        await p.close()
