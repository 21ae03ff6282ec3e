"""KubeSource against fake member clusters, through kubernetes-asyncio unchanged."""

from __future__ import annotations

from contextlib import AsyncExitStack

from ingressfed.core.health import HealthThresholds
from ingressfed.kube.clients import ClientPool
from ingressfed.kube.objects import Selection
from ingressfed.kube.probes import Prober
from ingressfed.kube.source import KubeSource, LogProblems
from ingressfed.model import ClusterStatus
from ingressfed.store import Store
from tests.kube.conftest import FAST, endpoint_slice, eventually, member, node, service


def _services(store: Store, name: str = "web") -> dict[str, int]:
    return {s.cluster: s.ready_endpoints for s in store.snapshot().services if s.name == name}


def _serving(store: Store, name: str = "web") -> set[str]:
    return {c for c, ready in _services(store, name).items() if ready > 0}


async def _source(stack: AsyncExitStack, store: Store, **kw: object) -> KubeSource:
    clients = await stack.enter_async_context(ClientPool())
    return await stack.enter_async_context(KubeSource(store, clients=clients, options=FAST, **kw))  # type: ignore[arg-type]


async def test_service_ready_in_one_two_three_clusters(clusters) -> None:
    fakes, path = await clusters(3)
    for fake in fakes:
        fake.add(service("web", ip=f"192.0.2.{fakes.index(fake) + 1}"))
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store)
        await source.sync_members([member(f.name, path) for f in fakes])
        await eventually(lambda: len(_services(store)) == 3, what="three observations")
        assert _serving(store) == set()
        for i, fake in enumerate(fakes):
            fake.add(endpoint_slice("web", ready=2, not_ready=1))
            expected = {f.name for f in fakes[: i + 1]}
            await eventually(lambda e=expected: _serving(store) == e, what=f"{len(expected)} serving")
        assert _services(store) == {f.name: 2 for f in fakes}
        addresses = {s.cluster: s.addresses for s in store.snapshot().services}
        assert addresses == {"c0": ("192.0.2.1",), "c1": ("192.0.2.2",), "c2": ("192.0.2.3",)}
        # An endpoint turning unready in one cluster takes only that cluster out.
        fakes[1].add(endpoint_slice("web", ready=0, not_ready=3))
        await eventually(lambda: _serving(store) == {"c0", "c2"}, what="c1 not serving")


async def test_deleted_and_opted_out_objects_leave_the_store(clusters) -> None:
    (fake,), path = await clusters(1)
    fake.add(service("web"))
    fake.add(service("api"))
    fake.add(service("internal", svc_type="ClusterIP"))
    fake.add(service("plain", opt_in=False))
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store)
        await source.sync_members([member("c0", path)])
        await eventually(lambda: {s.name for s in store.snapshot().services} == {"web", "api"})
        fake.delete("services", "web", "default")
        await eventually(lambda: {s.name for s in store.snapshot().services} == {"api"}, what="web deleted")
        fake.add(service("api", opt_in=False))
        await eventually(lambda: not store.snapshot().services, what="api opted out")
        fake.add(service("plain"))
        await eventually(lambda: {s.name for s in store.snapshot().services} == {"plain"}, what="plain in")


async def test_relist_after_410_loses_and_duplicates_nothing(clusters) -> None:
    (fake,), path = await clusters(1)
    for i in range(120):  # several pages of FAST.page_size
        fake.add(service(f"s{i}"))
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store)
        await source.sync_members([member("c0", path)])
        await eventually(lambda: len(store.snapshot().services) == 120)
        lists_before = fake.count(verb="list", resource="services")
        # While the watch is broken, objects change; then history is compacted so the resume gets 410.
        fake.fail(503, times=3, verb="watch", resource="services")
        fake.drop_watches(resource="services")
        for i in range(0, 30):
            fake.delete("services", f"s{i}", "default")
        for i in range(120, 140):
            fake.add(service(f"s{i}"))
        fake.compact(expire_watches=True)
        expected = {f"s{i}" for i in range(30, 140)}
        await eventually(lambda: {s.name for s in store.snapshot().services} == expected, what="relisted set")
        assert fake.count(verb="list", resource="services") > lists_before
        names = [s.name for s in store.snapshot().services]
        assert len(names) == len(set(names)) == 110


async def test_dropped_streams_and_5xx_recover(clusters) -> None:
    (fake,), path = await clusters(1)
    fake.add(service("web"))
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store)
        await source.sync_members([member("c0", path)])
        await eventually(lambda: len(store.snapshot().services) == 1)
        await eventually(lambda: fake.open_watches >= 4, what="watches open")
        fake.drop_watches(at_next_event=True)
        fake.add(endpoint_slice("web", ready=1))
        fake.add(service("api"))
        await eventually(lambda: _serving(store) == {"c0"}, what="slice after drop")
        await eventually(lambda: {s.name for s in store.snapshot().services} == {"web", "api"})
        fake.fail(500, times=4, resource="services")
        fake.drop_watches()
        fake.add(service("db"))
        await eventually(lambda: {s.name for s in store.snapshot().services} == {"web", "api", "db"})


async def test_forbidden_is_a_problem_not_a_crash(clusters) -> None:
    (fake,), path = await clusters(1)
    fake.add(service("web"))
    fake.add(endpoint_slice("web"))
    fault = fake.fail(403, resource="ingresses")
    store = Store()
    problems = LogProblems()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store, problems=problems)
        await source.sync_members([member("c0", path)])
        await eventually(lambda: _serving(store) == {"c0"}, what="services despite 403 on ingresses")
        await eventually(
            lambda: any("403" in p.reason and "ingresses" in p.reason for p in problems.recent.get("c0", ())),
            what="403 reported",
        )
        fault.remove()
        fake.add(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "site", "namespace": "default"},
                "spec": {"ingressClassName": "ingressfed", "rules": [{"host": "site.example.com"}]},
            }
        )
        await eventually(lambda: len(store.snapshot().ingresses) == 1, what="ingress after permission fixed")


async def test_region_zone_from_nodes_unless_declared(clusters) -> None:
    fakes, path = await clusters(2)
    for fake in fakes:
        fake.add(node("n1", "us-east1", "us-east1-b"))
        fake.add(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": "n2",
                    "labels": {
                        "failure-domain.beta.kubernetes.io/region": "us-east1",
                        "failure-domain.beta.kubernetes.io/zone": "us-east1-b",
                    },
                },
            }
        )
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store)
        await source.sync_members(
            [member("c0", path), member("c1", path, region="europe-west1", zone="europe-west1-b")]
        )

        def topo(name: str) -> tuple[str, str] | None:
            c = store.cluster(name)
            return (c.region, c.zone) if c else None

        await eventually(lambda: topo("c0") == ("us-east1", "us-east1-b"), what="observed topology")
        assert topo("c1") == ("europe-west1", "europe-west1-b")


async def test_unreachable_member_at_start_is_offline_and_does_not_block(clusters, tmp_path) -> None:
    fakes, path = await clusters(2)
    await fakes[1].stop()  # c1 is down from the start
    fakes[0].add(service("web"))
    fakes[0].add(endpoint_slice("web"))
    store = Store()
    async with AsyncExitStack() as stack:
        prober = Prober(store, thresholds=HealthThresholds(period=0.1, timeout=0.5))
        source = await _source(stack, store, prober=prober)
        missing = member("gone", tmp_path / "no-such-kubeconfig")
        await source.sync_members([member("c0", path), member("c1", path), missing])
        await eventually(lambda: _serving(store) == {"c0"}, what="c0 serving")
        await eventually(
            lambda: (c := store.cluster("c1")) is not None and c.status is ClusterStatus.OFFLINE,
            what="c1 offline",
        )
        await eventually(
            lambda: (c := store.cluster("gone")) is not None and c.status is ClusterStatus.OFFLINE,
            what="bad kubeconfig offline",
        )
        await eventually(
            lambda: (c := store.cluster("c0")) is not None and c.status is ClusterStatus.READY,
            what="c0 ready",
        )
        # The member comes back: it is watched and becomes Ready without a restart.
        fakes[1].add(service("web", ip="192.0.2.9"))
        await fakes[1].start()
        await eventually(
            lambda: (c := store.cluster("c1")) is not None and c.status is ClusterStatus.READY,
            what="c1 ready again",
        )
        await eventually(lambda: "c1" in _services(store), what="c1 objects")


async def test_members_removed_live_leave_the_store(clusters) -> None:
    fakes, path = await clusters(2)
    for fake in fakes:
        fake.add(service("web"))
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store)
        await source.sync_members([member("c0", path), member("c1", path)])
        await eventually(lambda: set(_services(store)) == {"c0", "c1"})
        await source.sync_members([member("c0", path)])
        assert set(_services(store)) == {"c0"}
        assert store.cluster("c1") is None
        await source.sync_members([member("c0", path), member("c1", path, disabled=True)])
        assert source.members == ["c0"]


async def test_namespace_selection_federates_every_lb_service(clusters) -> None:
    (fake,), path = await clusters(1)
    fake.add(service("a", ns="shop", opt_in=False))
    fake.add(service("b", ns="other", opt_in=False))
    store = Store()
    async with AsyncExitStack() as stack:
        source = await _source(stack, store, selection=Selection(namespaces=frozenset({"shop"})))
        await source.sync_members([member("c0", path)])
        await eventually(lambda: {s.name for s in store.snapshot().services} == {"a"})
        # Exact instead of "wait a while, then see nothing": events arrive in order, so once d
        # (written after c) is in, c has been seen and left out.
        fake.add(service("c", ns="other", opt_in=False))
        fake.add(service("d", ns="shop", opt_in=False))
        await eventually(lambda: "d" in {s.name for s in store.snapshot().services}, what="d")
        assert {s.name for s in store.snapshot().services} == {"a", "d"}


async def test_api_server_not_ready_then_ready(clusters) -> None:
    (fake,), path = await clusters(1)
    fake.ready = False
    store = Store()
    async with AsyncExitStack() as stack:
        prober = Prober(store, thresholds=HealthThresholds(period=0.05, timeout=0.5, failure_threshold=2))
        source = await _source(stack, store, prober=prober)
        await source.sync_members([member("c0", path)])
        assert store.cluster("c0").status is ClusterStatus.NOT_READY
        await eventually(
            lambda: prober.health("c0") is not None and prober.health("c0").consecutive_failures >= 2
        )
        assert store.cluster("c0").status is ClusterStatus.NOT_READY
        assert "500" in prober.message("c0")
        fake.ready = True
        await eventually(lambda: store.cluster("c0").status is ClusterStatus.READY, what="ready")
        assert prober.message("c0") == ""


async def test_offline_api_server_with_live_data_plane_keeps_records(clusters) -> None:
    from ingressfed.core.desired import desired_records
    from ingressfed.model import Federation

    fakes, path = await clusters(2)
    for i, fake in enumerate(fakes):
        fake.add(service("web", ip=f"192.0.2.{i + 1}"))
        fake.add(endpoint_slice("web"))
    fed = Federation("federation", "example.com")
    global_name = "web.default.federation.svc.example.com"

    def published() -> set[str]:
        recs = [d.record for d in desired_records(fed, store.snapshot()) if d.record.name == global_name]
        return {v for r in recs for v in r.values}

    store = Store()
    async with AsyncExitStack() as stack:
        prober = Prober(store, thresholds=HealthThresholds(period=0.05, timeout=0.3, failure_threshold=2))
        source = await _source(stack, store, prober=prober)
        await source.sync_members(
            [
                member("c0", path, region="us-east1", zone="us-east1-b"),
                member("c1", path, region="europe-west1", zone="europe-west1-b"),
            ]
        )
        await eventually(lambda: published() == {"192.0.2.1", "192.0.2.2"}, what="both published")
        store.set_data_plane_health("c1", True)  # the proxy's checks say c1's LB answers
        await fakes[1].stop()
        await eventually(lambda: store.cluster("c1").status is ClusterStatus.OFFLINE, what="c1 offline")
        assert published() == {"192.0.2.1", "192.0.2.2"}  # API server down alone: records stay
        store.set_data_plane_health("c1", False)  # and now its data plane fails too
        assert published() == {"192.0.2.1"}


async def test_a_member_down_is_reported_once_per_watch_then_every_five_minutes(clusters, caplog) -> None:
    """Finding 7: while a member was down the log got a reconnect WARNING per resource every second."""
    import logging

    from ingressfed.kube.backoff import REPORT_REPEAT

    (fake,), path = await clusters(1)
    store = Store()
    problems = LogProblems()
    now = [1000.0]
    caplog.set_level(logging.INFO, logger="ingressfed.kube.source")
    caplog.set_level(logging.INFO, logger="ingressfed.kube.informer")
    async with AsyncExitStack() as stack:
        source = await _source(stack, store, problems=problems, clock=lambda: now[0])
        await source.sync_members([member("c0", path)])
        await eventually(lambda: fake.open_watches >= 4, what="watches open")
        await fake.stop()
        await eventually(lambda: len(problems.recent.get("c0", ())) >= 4, what="the first report per watch")
        first = len(problems.recent["c0"])
        paths = {p.reason.split(":")[0] for p in problems.recent["c0"]}

        def retries() -> int:  # the informers' own reconnect lines (INFO), one per failed attempt
            return sum(
                "reconnecting" in r.message for r in caplog.records if r.name == "ingressfed.kube.informer"
            )

        before = retries()
        # FAST backoff retries many times a second: dozens more failed attempts ...
        await eventually(lambda: retries() > before + 40, what="many more retries")
        # ... and still one report per watch (the clock has not moved).
        assert len(problems.recent["c0"]) == first == len(paths)
        now[0] += REPORT_REPEAT  # five minutes later, still down: one more line per watch, with the count
        await eventually(lambda: len(problems.recent["c0"]) == 2 * first, what="the repeat report")
        assert all("attempts)" in p.reason for p in list(problems.recent["c0"])[first:])
        await fake.start()
        await eventually(
            lambda: sum("reachable again" in r.message for r in caplog.records) == first,
            what="recovery lines",
        )
