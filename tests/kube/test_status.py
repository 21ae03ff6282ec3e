"""Status write-back: annotations only when changed, one Event per problem occurrence."""

from __future__ import annotations

import json

from ingressfed.kube.objects import ObjectRef, Problem
from ingressfed.kube.status import ObjectStatus, StatusWriter, annotation_value
from tests.kube.conftest import service

KEY = "federation.ingressfed.io/dns-names"


def _events(fake) -> list[dict]:
    return fake.objects("events", "default")


async def test_annotation_patched_only_on_change_and_events_deduplicated(clusters) -> None:
    (fake,), _ = await clusters(1)
    fake.add(service("web"))
    async with fake.api_client() as api:
        writer = StatusWriter(lambda name: api if name == "c0" else None, instance="test")
        names = ("web.default.federation.svc.example.com", "web.default.federation.svc.us-east1.example.com")
        st = ObjectStatus(
            "c0",
            "Service",
            "default",
            "web",
            dns_names=names,
            serving_clusters=("c0",),
            levels=((names[0], ("c0",)), (names[1], ("c0",))),
        )
        await writer.publish([st])
        ann = fake.get("services", "web", "default")["metadata"]["annotations"][KEY]
        assert json.loads(ann) == {
            "names": sorted(names),
            "servingClusters": ["c0"],
            "levels": {names[0]: ["c0"], names[1]: ["c0"]},
        }
        assert (
            fake.get("services", "web", "default")["metadata"]["annotations"][
                "federation.ingressfed.io/enabled"
            ]
            == "true"
        )
        patches = fake.count(verb="patch", resource="services")
        for _ in range(5):
            await writer.publish([st])
        assert fake.count(verb="patch", resource="services") == patches == 1

        problem = "no load-balancer address yet: status.loadBalancer.ingress is empty"
        bad = ObjectStatus("c0", "Service", "default", "web", problems=(problem,))
        for _ in range(3):
            await writer.publish([bad])
        assert [e["message"] for e in _events(fake)] == [problem]
        event = _events(fake)[0]
        assert event["type"] == "Warning" and event["involvedObject"]["name"] == "web"
        assert fake.count(verb="patch", resource="services") == 2  # names went away once
        await writer.publish([st])  # fixed ...
        await writer.publish([bad])  # ... and broken again: a new Event
        assert len(_events(fake)) == 2

        # Source problems (malformed objects) become Events once; unidentifiable ones are only logged.
        writer.report("c0", Problem(ObjectRef("Service", "default", "web"), "annotation ttl is not a number"))
        writer.report("c0", Problem(ObjectRef("Service", "", ""), "metadata.name missing"))
        await writer.flush()
        writer.report("c0", Problem(ObjectRef("Service", "default", "web"), "annotation ttl is not a number"))
        await writer.flush()
        assert len(_events(fake)) == 3


async def test_write_failures_do_not_raise(clusters) -> None:
    (fake,), _ = await clusters(1)
    async with fake.api_client() as api:
        writer = StatusWriter(lambda name: api, instance="test")
        fake.fail(403, resource="services")
        await writer.publish([ObjectStatus("c0", "Service", "default", "gone", dns_names=("a.example.com",))])
        await writer.publish([ObjectStatus("c9", "Ingress", "default", "x", problems=("p",))])
        assert writer.patches == 0


def test_annotation_value_is_stable() -> None:
    a = ObjectStatus("c", "Service", "n", "s", dns_names=("b", "a", "a"), serving_clusters=("y", "x"))
    b = ObjectStatus("c", "Service", "n", "s", dns_names=("a", "b"), serving_clusters=("x", "y"))
    assert annotation_value(a) == annotation_value(b) == '{"names":["a","b"],"servingClusters":["x","y"]}'


async def test_submit_publishes_only_the_latest(clusters) -> None:
    import asyncio

    (fake,), _ = await clusters(1)
    fake.add(service("web"))
    async with fake.api_client() as api:
        writer = StatusWriter(lambda name: api, instance="test")
        task = asyncio.create_task(writer.run())
        try:
            for n in range(5):
                writer.submit(
                    [ObjectStatus("c0", "Service", "default", "web", dns_names=(f"n{n}.example.com",))]
                )
            for _ in range(200):
                if writer.patches:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        ann = json.loads(fake.get("services", "web", "default")["metadata"]["annotations"][KEY])
        assert ann["names"] == ["n4.example.com"]
        assert writer.patches == 1


def test_statuses_from_a_desired_state() -> None:
    from ingressfed.core.desired import desired_state
    from ingressfed.kube.status import statuses_from
    from ingressfed.model import Cluster, Federation, ServiceObservation, Snapshot

    snap = Snapshot(
        clusters=(Cluster("c1", "us-east1", "us-east1-b"), Cluster("c2", "europe-west1", "europe-west1-b")),
        services=(
            ServiceObservation("c1", "default", "web", 1, ("192.0.2.1",)),
            ServiceObservation("c2", "default", "web", 0, ()),
        ),
    )
    fed = Federation("federation", "example.com")
    statuses = {s.cluster: s for s in statuses_from(snap, desired_state(fed, snap))}
    assert set(statuses) == {"c1", "c2"}
    c1 = statuses["c1"]
    assert "web.default.federation.svc.example.com" in c1.dns_names
    assert c1.serving_clusters == ("c1",)
    assert dict(c1.levels)["web.default.federation.svc.example.com"] == ("c1",)
    assert statuses["c2"].dns_names == c1.dns_names


async def test_a_standby_writes_nothing_until_it_leads(clusters) -> None:
    """Replicas share the member clusters: only the Lease holder patches annotations and writes Events."""
    (fake,), _ = await clusters(1)
    fake.add(service("web"))
    leading = False
    async with fake.api_client() as api:
        writer = StatusWriter(lambda name: api, instance="test", may_write=lambda: leading)
        st = ObjectStatus("c0", "Service", "default", "web", dns_names=("web.example.com",), problems=("p",))
        await writer.publish([st])
        writer.report("c0", Problem(ObjectRef("Service", "default", "web"), "annotation ttl is not a number"))
        await writer.flush()
        assert fake.count(verb="patch", resource="services") == 0 and _events(fake) == []
        leading = True  # took over: what was pending goes out, and the next publish writes
        await writer.publish([st])
        assert fake.count(verb="patch", resource="services") == 1
        assert sorted(e["message"] for e in _events(fake)) == ["annotation ttl is not a number", "p"]


async def test_a_reported_problem_becomes_an_event_without_a_reconcile(clusters) -> None:
    """Finding 7: an invalid TTL annotation changes nothing published, so no reconcile flushes it."""
    import asyncio

    from tests.kube.conftest import eventually

    (fake,), _ = await clusters(1)
    fake.add(service("web"))
    async with fake.api_client() as api:
        writer = StatusWriter(lambda name: api, instance="test")
        task = asyncio.create_task(writer.run())
        try:
            writer.report("c0", Problem(ObjectRef("Service", "default", "web"), "annotation ttl 'x' is bad"))
            await eventually(lambda: len(_events(fake)) == 1, what="the Event, with no publish at all")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
