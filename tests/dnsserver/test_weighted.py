"""Weighted names (a Service's ``steering: weighted``): each query answers one share, drawn in
proportion to the weights, over real DNS queries against the server on loopback."""

from __future__ import annotations

import json
import random
from collections import Counter

import dns.edns
import pytest

from ingressfed.core.desired import desired_state
from ingressfed.dnsserver.index import build_index, draw_share
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_json, zone_data_from_records, zone_data_to_json
from ingressfed.feed.view import FeedView, view_from_wire, view_to_wire
from ingressfed.model import (
    Change,
    ChangeAction,
    Changes,
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
from providers.embedded import EmbeddedProvider
from tests.dnsserver.client import udp, values
from tests.dnsserver.conftest import ZONE, Locator, fake_locate

T = RecordType
QUERIES = 400


def share(name: str, cluster: str, weight: int, *addresses: str, rtype: RecordType = T.A) -> RecordSet:
    routing = Routing(cluster=cluster, region="", weight=weight, weighted=True)
    return RecordSet(f"{name}.{ZONE}", rtype, 30, addresses, cluster, routing)


RECORDS = [
    share("canary", "stable", 90, "10.0.0.1", "10.0.0.2"),
    share("canary", "next", 10, "10.9.0.1"),
    share("canary", "stable", 90, "2001:db8::1", rtype=T.AAAA),
    share("canary", "next", 10, "2001:db8:9::1", rtype=T.AAAA),
    share("thirds", "a", 1, "10.1.0.1"),
    share("thirds", "b", 1, "10.2.0.1"),
    share("thirds", "c", 1, "10.3.0.1"),
    RecordSet(f"alias.{ZONE}", T.CNAME, 30, (f"canary.{ZONE}",)),
]
STABLE = frozenset({"10.0.0.1", "10.0.0.2"})
NEXT = frozenset({"10.9.0.1"})


def within(count: int, expected: float, n: int = QUERIES) -> bool:
    """``count`` of ``n`` draws is within 5 standard deviations of ``expected`` (a share in
    [0, 1]): a correct implementation fails this about once in 1.7 million runs."""
    sd = (n * expected * (1 - expected)) ** 0.5
    return abs(count - n * expected) <= 5 * sd


async def tally(port: int, qname: str, qtype: str = "A", **kw: object) -> Counter[frozenset[str]]:
    seen: Counter[frozenset[str]] = Counter()
    for _ in range(QUERIES):
        r = await udp(port, qname, qtype, **kw)  # type: ignore[arg-type]
        seen[frozenset(values(r.answer, qtype))] += 1
    return seen


@pytest.mark.parametrize("answers", ["geo", "all"])
async def test_each_query_answers_one_share_in_proportion(answers: str) -> None:
    data = zone_data_from_records(ZONE, RECORDS, serial=1)
    index = build_index(data, answers=answers, locator=Locator(fake_locate), draw=random.Random(5).random)
    async with DnsServer(index, host="127.0.0.1", port=0) as srv:
        seen = await tally(srv.port, f"canary.{ZONE}")
        assert set(seen) == {STABLE, NEXT}  # only the drawn cluster's addresses, never a mix
        assert within(seen[NEXT], 0.1), seen
        thirds = await tally(srv.port, f"thirds.{ZONE}")
        assert set(thirds) == {frozenset({"10.1.0.1"}), frozenset({"10.2.0.1"}), frozenset({"10.3.0.1"})}
        assert all(within(n, 1 / 3) for n in thirds.values()), thirds


async def test_a_cname_to_a_weighted_name_and_aaaa_are_drawn_too() -> None:
    data = zone_data_from_records(ZONE, RECORDS, serial=1)
    async with DnsServer(build_index(data, draw=random.Random(9).random), host="127.0.0.1", port=0) as srv:
        seen = await tally(srv.port, f"alias.{ZONE}")
        assert set(seen) == {STABLE, NEXT} and within(seen[NEXT], 0.1), seen
        six = await tally(srv.port, f"canary.{ZONE}", "AAAA")
        assert set(six) == {frozenset({"2001:db8::1"}), frozenset({"2001:db8:9::1"})}
        assert within(six[frozenset({"2001:db8:9::1"})], 0.1), six
        # With ECS from a located subnet the split holds too (the draw is not by location).
        ecs = await tally(
            srv.port, f"canary.{ZONE}", use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)]
        )
        assert within(ecs[NEXT], 0.1), ecs


def test_draw_share_is_proportional_at_the_bounds() -> None:
    shares = (("a", 1), ("b", 3))
    assert [draw_share(shares, d) for d in (0.0, 0.2499, 0.25, 0.9999)] == ["a", "a", "b", "b"]
    assert draw_share((("only", 5),), 0.7) == "only"


def test_a_zone_transfer_carries_the_heaviest_share() -> None:
    index = build_index(zone_data_from_records(ZONE, RECORDS, serial=1))
    by_name = {(r.name.to_text(), r.rdtype): {rd.to_text() for rd in r} for r in index.transfer_rrsets()}
    assert by_name[(f"canary.{ZONE}.", 1)] == STABLE
    assert by_name[(f"thirds.{ZONE}.", 1)] == {"10.1.0.1"}  # equal weights: the first by identifier


def test_the_weighted_flag_survives_the_zone_file_and_the_feed() -> None:
    data = zone_data_from_records(ZONE, RECORDS, serial=3)
    raw = json.loads(json.dumps(zone_data_to_json(data)))
    assert set(zone_data_from_json(raw).records) == set(data.records)
    assert sum(1 for r in raw["records"] if (r.get("routing") or {}).get("weighted") is True) == 7
    view = FeedView(version=1, records=tuple(RECORDS), routes=(), clusters=(), zone=ZONE)
    assert set(view_from_wire(json.loads(json.dumps(view_to_wire(view)))).records) == set(RECORDS)


async def test_a_weighted_service_from_desired_through_the_embedded_provider() -> None:
    """The whole path: a Service's annotations -> desired (the provider says it can weigh) ->
    the embedded provider's zone -> the DNS server's answers."""
    fed = Federation(name="federation", suffix=ZONE)
    us = Cluster("us", region="us-east1", zone="us-east1-b")
    eu = Cluster("eu", region="europe-west1", zone="europe-west1-b")
    steering = Steering(kind=SteeringKind.WEIGHTED, weights=(("eu", 1), ("us", 3)))
    snap = Snapshot(
        clusters=(us, eu),
        services=tuple(
            ServiceObservation(c, "default", "web", 1, (ip,), steering=steering)
            for c, ip in (("us", "10.0.0.1"), ("eu", "10.1.0.1"))
        ),
    )
    provider = EmbeddedProvider(zone=ZONE)
    state = desired_state(fed, snap, weighted=provider.capabilities.weighted)
    assert state.problems == ()
    wanted = provider.adjust([d.record for d in state.records])
    assert [rs.routing.weight for rs in wanted if rs.routing is not None] == [1, 3]
    result = await provider.apply(Changes(tuple(Change(ChangeAction.CREATE, new=rs) for rs in wanted)))
    assert not result.failed and result.applied == len(wanted)
    index = build_index(provider.zone_data, draw=random.Random(3).random)
    async with DnsServer(index, host="127.0.0.1", port=0) as srv:
        seen = await tally(srv.port, f"web.default.federation.svc.{ZONE}")
        assert set(seen) == {frozenset({"10.0.0.1"}), frozenset({"10.1.0.1"})}
        assert within(seen[frozenset({"10.1.0.1"})], 0.25), seen
