"""The controller asks the provider whether it can weigh (``capabilities.weighted``): a Service's
``steering: weighted`` reaches the zone where it can, and is reported where it cannot."""

from __future__ import annotations

from ingressfed.controller import Controller
from ingressfed.core.desired import Problem
from ingressfed.model import Cluster, Federation, RecordType, ServiceObservation, Steering, SteeringKind
from ingressfed.store import Store
from providers.base import Provider
from providers.embedded import EmbeddedProvider
from providers.inmemory import InMemoryProvider

FED = Federation(name="federation", suffix="example.com", owner_id="test")
G = "web.default.federation.svc.example.com"
SPLIT = Steering(kind=SteeringKind.WEIGHTED, weights=(("eu", 1), ("us", 9)))


async def reconcile(provider: Provider) -> tuple[list[Problem], list[tuple[str | None, int | None]]]:
    store = Store()
    store.set_cluster(Cluster("us", region="us-east1", zone="us-east1-b"))
    store.set_cluster(Cluster("eu", region="europe-west1", zone="europe-west1-b"))
    for cluster, ip in (("us", "10.0.0.1"), ("eu", "10.1.0.1")):
        store.upsert_service(ServiceObservation(cluster, "default", "web", 1, (ip,), steering=SPLIT))
    ctl = Controller(federation=FED, store=store, provider=provider)
    out = await ctl.reconcile_once()
    assert out.error is None
    sets = sorted(
        (rs.set_identifier, rs.routing.weight if rs.routing and rs.routing.weighted else None)
        for rs in await provider.records()
        if rs.name == G and rs.type is RecordType.A
    )
    return [p for p in out.desired.problems if "weighted" in p.message], sets


async def test_a_provider_that_weighs_gets_the_shares() -> None:
    problems, sets = await reconcile(EmbeddedProvider(zone="example.com"))
    assert sets == [("eu", 1), ("us", 9)]
    assert problems == []


async def test_a_provider_that_cannot_weigh_reports_it() -> None:
    problems, sets = await reconcile(InMemoryProvider(zone="example.com"))
    assert sets == [(None, None)]  # one plain set: both clusters, as without the annotation
    [problem] = problems
    assert problem.resource == "service/default/web"
