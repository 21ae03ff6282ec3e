"""Route53 weighted records for a Service's ``steering: weighted``, against moto in server mode
(real HTTP on loopback): written, read back exactly (no flapping), in every routing mode, and
swapped with the federation's latency/geolocation records at that Service's names only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ingressfed.core.desired import Desired, desired_state
from ingressfed.core.plan import plan
from ingressfed.model import (
    Cluster,
    Federation,
    RecordSet,
    RecordType,
    Routing,
    ServiceObservation,
    Snapshot,
    Steering,
    SteeringKind,
)
from ingressfed.testing import OWNER
from providers.route53 import Route53Provider, RoutingMode, routed_problem
from tests.providers.test_route53 import FAST, new_zone

pytestmark = pytest.mark.usefixtures("aws_env")

US = Cluster("us", region="us-east1", zone="us-east1-b")
EU = Cluster("eu", region="europe-west1", zone="europe-west1-b")
ASIA = Cluster("asia", region="asia-east1", zone="asia-east1-a")
ADDR = {"us": "192.0.2.1", "eu": "192.0.2.2", "asia": "192.0.2.3"}
SPLIT = Steering(kind=SteeringKind.WEIGHTED, weights=(("eu", 10), ("us", 90)))


def snapshot(*, split: dict[str, Steering | None]) -> Snapshot:
    """Two Services in three clusters; ``split`` gives each one's steering."""
    return Snapshot(
        clusters=(US, EU, ASIA),
        services=tuple(
            ServiceObservation(c.name, "default", name, 1, (ADDR[c.name],), steering=steering)
            for name, steering in split.items()
            for c in (US, EU, ASIA)
        ),
    )


@pytest.fixture
def provider(moto_endpoint: str, request: pytest.FixtureRequest) -> Iterator[Route53Provider]:
    zone, _ = new_zone(moto_endpoint)
    options: dict[str, Any] = {"endpointUrl": moto_endpoint, **FAST, **getattr(request, "param", {})}
    p = Route53Provider(zone=zone, options=options)
    yield p
    p.client.close()


async def converge(p: Route53Provider, snap: Snapshot) -> tuple[int, list[RecordSet]]:
    """Apply what ``snap`` calls for; the changes a second plan would still make, and the zone."""
    fed = Federation(name="federation", suffix=p.zone, owner_id=OWNER)
    state = desired_state(fed, snap, routed=p.capabilities.routing, weighted=p.capabilities.weighted)
    assert state.problems == ()
    resource = {d.record.name: d.resource for d in state.records}
    adjusted = [Desired(rs, resource[rs.name]) for rs in p.adjust([d.record for d in state.records])]
    result = await p.apply(plan(await p.records(), adjusted, owner_id=OWNER).changes)
    assert result.failed == {}
    after = await p.records()
    return len(plan(after, adjusted, owner_id=OWNER).changes), after


def raw_sets(p: Route53Provider, name: str) -> list[dict[str, Any]]:
    """The sets at ``name`` as the Route53 API lists them (not through the provider)."""
    client = boto3.client("route53", endpoint_url=p.options.endpoint_url, region_name="us-east-1")
    zone_id = client.list_hosted_zones_by_name(DNSName=p.zone)["HostedZones"][0]["Id"]
    sets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    client.close()
    return [dict(s) for s in sets if s["Name"] == name + "." and s["Type"] == "A"]


@pytest.mark.parametrize(
    "provider", [{}, {"routing": "latency"}, {"routing": "geolocation"}], indirect=True, ids=str
)
async def test_weighted_records_written_and_read_back(provider: Route53Provider) -> None:
    left, records = await converge(provider, snapshot(split={"web": SPLIT}))
    assert left == 0  # read back exactly as adjusted: no flapping
    glob = f"web.default.federation.svc.{provider.zone}"
    sets = sorted(
        (s["SetIdentifier"], s["Weight"], [r["Value"] for r in s["ResourceRecords"]], "Region" in s)
        for s in raw_sets(provider, glob)
    )
    # asia is not in the weights list: answered only if no weighted cluster serves.
    assert sets == [("eu", 10, ["192.0.2.2"], False), ("us", 90, ["192.0.2.1"], False)]
    assert {rs.set_identifier: rs.routing.weight for rs in records if rs.name == glob and rs.routing} == {
        "eu": 10,
        "us": 90,
    }


@pytest.mark.parametrize("provider", [{"routing": "latency"}], indirect=True)
async def test_a_weighted_service_swaps_latency_records_at_its_names_only(provider: Route53Provider) -> None:
    def kinds(records: list[RecordSet], service: str) -> set[str]:
        glob = f"{service}.default.federation.svc.{provider.zone}"
        return {
            "weighted" if rs.routing.weighted else "latency"
            for rs in records
            if rs.name == glob and rs.type is RecordType.A and rs.routing is not None
        }

    left, records = await converge(provider, snapshot(split={"web": None, "api": None}))
    assert left == 0 and kinds(records, "web") == kinds(records, "api") == {"latency"}
    left, records = await converge(provider, snapshot(split={"web": SPLIT, "api": None}))
    assert left == 0
    assert (kinds(records, "web"), kinds(records, "api")) == ({"weighted"}, {"latency"})
    # The canary ends: back to the federation's latency records.
    left, records = await converge(provider, snapshot(split={"web": None, "api": None}))
    assert left == 0 and kinds(records, "web") == {"latency"}


@pytest.mark.parametrize(
    ("routing", "fragment"),
    [
        (Routing("c", "", weight=256, weighted=True), "outside Route53's 0..255"),
        (Routing("c", "us-east-1", weight=5, weighted=True), "cannot carry a latency Region"),
        (Routing("c", "", weight=5, continent="EU", weighted=True), "cannot carry a latency Region"),
    ],
)
def test_weighted_validation_rejects_what_route53_would(routing: Routing, fragment: str) -> None:
    rs = RecordSet("w.example.com", RecordType.A, 30, ("192.0.2.1",), "c", routing)
    for mode in RoutingMode:
        problem = routed_problem(rs, mode)
        assert problem is not None and fragment in problem


def test_weighted_is_accepted_in_every_mode_and_one_ttl_per_group() -> None:
    share = Routing("c", "", weight=0, weighted=True)
    rs = RecordSet("w.example.com", RecordType.A, 30, ("192.0.2.1",), "c", share)
    assert all(routed_problem(rs, mode) is None for mode in RoutingMode)
    p = Route53Provider(zone="example.com", options={"endpointUrl": "http://127.0.0.1:9"})
    d_share = Routing("d", "", weight=5, weighted=True)
    other = RecordSet("w.example.com", RecordType.A, 10, ("192.0.2.2",), "d", d_share)
    assert sorted(s.ttl for s in p.adjust([rs, other])) == [10, 10]
    p.client.close()
