"""Cloud DNS (REST fake, real client): an Ingress host steered to edges is one geo policy with one
item per edge region; a dead edge's item goes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ingressfed.core.desired import desired_state
from ingressfed.model import Cluster, Edge, Federation, IngressObservation, IngressRule, Snapshot
from ingressfed.testing import OWNER, converge, pending
from providers.clouddns import CloudDNSProvider
from tests.fakes.clouddns_api import FakeCloudDNS

PROJECT = "proj-1"
ZONE = "example.com"
HOST = f"web.{ZONE}"
EDGES = {  # edge -> (cluster, region, address)
    "edge-us": ("us", "us-east1", "198.51.100.1"),
    "edge-eu": ("eu", "europe-west1", "198.51.100.2"),
    "edge-asia": ("asia", "asia-east1", "198.51.100.3"),
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloudDNS]:
    async with FakeCloudDNS() as f:
        f.add_zone(PROJECT, "example-zone", ZONE + ".")
        yield f


def desired(*, live: set[str]) -> Any:
    snap = Snapshot(
        clusters=tuple(Cluster(c, r, f"{r}-b") for c, r, _ in EDGES.values()),
        ingresses=tuple(
            IngressObservation(c, "default", "web", (IngressRule(HOST),), addresses=("10.0.0.1",))
            for c, _, _ in EDGES.values()
        ),
        edges=tuple(Edge(n, c, r, None, (a,), live=n in live) for n, (c, r, a) in EDGES.items()),
    )
    return list(desired_state(Federation("federation", ZONE, owner_id=OWNER), snap, routed=True).records)


async def test_one_geo_item_per_edge_region(fake: FakeCloudDNS) -> None:
    p = CloudDNSProvider(
        zone=ZONE,
        options={
            "project": PROJECT,
            "endpoint": fake.url,
            "anonymous": True,
            "backoff": 0.0,
            "routing": "geolocation",
        },
    )
    try:
        result = await converge(p, desired(live=set(EDGES)))
        assert result.failed == {}
        raw = fake.zones[(PROJECT, "example-zone")].rrsets[(HOST + ".", "A")]
        items = {i["location"]: i["rrdatas"] for i in raw["routingPolicy"]["geo"]["items"]}
        assert items == {r: [a] for _, r, a in EDGES.values()}
        assert not await pending(p, desired(live=set(EDGES)))  # no flapping

        result = await converge(p, desired(live={"edge-us", "edge-asia"}))
        assert result.failed == {}
        raw = fake.zones[(PROJECT, "example-zone")].rrsets[(HOST + ".", "A")]
        assert {i["location"] for i in raw["routingPolicy"]["geo"]["items"]} == {"us-east1", "asia-east1"}
    finally:
        await p.close()
