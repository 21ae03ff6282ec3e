"""Cloud DNS weighted round robin (``routingPolicy.wrr``) for a Service's ``steering: weighted``,
against the REST fake through the real google-cloud-dns client: written, read back exactly (no
flapping), in every routing mode, beside the federation's geo policies at other names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ingressfed.core.desired import Desired, desired_state
from ingressfed.model import (
    Cluster,
    Federation,
    ServiceObservation,
    Snapshot,
    Steering,
    SteeringKind,
)
from ingressfed.testing import OWNER, converge, pending
from providers.clouddns import CloudDNSProvider
from tests.fakes.clouddns_api import FakeCloudDNS

PROJECT = "proj-1"
ZONE = "example.com"
US = Cluster("us", region="us-east1", zone="us-east1-b")
EU = Cluster("eu", region="europe-west1", zone="europe-west1-b")
ASIA = Cluster("asia", region="asia-east1", zone="asia-east1-a")
ADDR = {"us": "192.0.2.1", "eu": "192.0.2.2", "asia": "192.0.2.3"}
SPLIT = Steering(kind=SteeringKind.WEIGHTED, weights=(("eu", 10), ("us", 90)))


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloudDNS]:
    async with FakeCloudDNS() as f:
        f.add_zone(PROJECT, "example-zone", ZONE + ".")
        yield f


def desired(p: CloudDNSProvider, split: dict[str, Steering | None], *, down: str = "") -> list[Desired]:
    snap = Snapshot(
        clusters=(US, EU, ASIA),
        services=tuple(
            ServiceObservation(
                c.name, "default", name, 0 if c.name == down else 1, (ADDR[c.name],), steering=s
            )
            for name, s in split.items()
            for c in (US, EU, ASIA)
        ),
    )
    fed = Federation(name="federation", suffix=ZONE, owner_id=OWNER)
    state = desired_state(fed, snap, routed=p.capabilities.routing, weighted=p.capabilities.weighted)
    assert state.problems == ()
    return list(state.records)


def policy(fake: FakeCloudDNS, service: str) -> dict[str, Any]:
    raw = fake.zones[(PROJECT, "example-zone")].rrsets[(f"{service}.default.federation.svc.{ZONE}.", "A")]
    found = raw.get("routingPolicy") or {"plain": raw["rrdatas"]}
    return {k: v for k, v in found.items() if k != "kind"}


@pytest.mark.parametrize("routing", ["none", "geolocation"])
async def test_weighted_service_is_a_wrr_policy(fake: FakeCloudDNS, routing: str) -> None:
    p = CloudDNSProvider(
        zone=ZONE,
        options={
            "project": PROJECT,
            "endpoint": fake.url,
            "anonymous": True,
            "backoff": 0.0,
            "routing": routing,
        },
    )
    try:
        wanted = desired(p, {"web": SPLIT, "api": None})
        result = await converge(p, wanted)
        assert result.failed == {}
        items = sorted((i["weight"], i["rrdatas"]) for i in policy(fake, "web")["wrr"]["items"])
        assert items == [(10.0, ["192.0.2.2"]), (90.0, ["192.0.2.1"])]  # asia is not in the list
        assert set(policy(fake, "api")) == ({"geo"} if routing == "geolocation" else {"plain"})
        assert not await pending(p, wanted)  # read back exactly as adjusted: no flapping
        # eu stops serving: us is the only weighted cluster left, a plain set.
        wanted = desired(p, {"web": SPLIT, "api": None}, down="eu")
        assert (await converge(p, wanted)).failed == {}
        assert policy(fake, "web") == {"plain": ["192.0.2.1"]}
        # Back: the wrr policy again, and a fresh provider (a restart) reads it as written.
        wanted = desired(p, {"web": SPLIT, "api": None})
        assert (await converge(p, wanted)).failed == {}
        assert "wrr" in policy(fake, "web")
    finally:
        await p.close()
    again = CloudDNSProvider(
        zone=ZONE,
        options={
            "project": PROJECT,
            "endpoint": fake.url,
            "anonymous": True,
            "backoff": 0.0,
            "routing": routing,
        },
    )
    try:
        assert not await pending(again, wanted)
    finally:
        await again.close()
