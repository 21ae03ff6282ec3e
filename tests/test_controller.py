"""The reconcile loop against the strict in-memory provider."""

import asyncio

from ingressfed.controller import Controller, ControllerSettings, ReconcileOutcome
from ingressfed.core.ownership import companion_name
from ingressfed.model import (
    Cluster,
    ClusterStatus,
    Federation,
    Policy,
    RecordSet,
    RecordType,
    ServiceObservation,
)
from ingressfed.store import Store
from providers.inmemory import InMemoryProvider

FED = Federation(name="federation", suffix="example.com", owner_id="test")
US = Cluster("us", region="us-east1", zone="us-east1-b")
EU = Cluster("eu", region="europe-west1", zone="europe-west1-b")
G = "web.default.federation.svc.example.com"
EUR = "web.default.federation.svc.europe-west1.example.com"


def svc(cluster: str, ip: str, ready: int = 1) -> ServiceObservation:
    return ServiceObservation(cluster, "default", "web", ready, (ip,))


def make(**kw) -> tuple[Store, InMemoryProvider, Controller, list[ReconcileOutcome]]:
    store = Store()
    provider = InMemoryProvider(zone="example.com")
    seen: list[ReconcileOutcome] = []
    ctl = Controller(federation=kw.pop("fed", FED), store=store, provider=provider, sinks=[seen.append], **kw)
    store.set_cluster(US)
    store.set_cluster(EU)
    return store, provider, ctl, seen


def zone(provider_sets: list[RecordSet]) -> dict[tuple[str, RecordType], tuple[str, ...]]:
    return {(r.name, r.type): r.values for r in provider_sets}


async def test_reconcile_publishes_and_is_idempotent() -> None:
    store, provider, ctl, seen = make()
    store.upsert_service(svc("us", "10.0.0.1"))
    store.upsert_service(svc("eu", "10.1.0.1"))
    out = await ctl.reconcile_once()
    assert out.error is None and out.applied > 0
    z = zone(await provider.records())
    assert z[(G, RecordType.A)] == ("10.0.0.1", "10.1.0.1")
    assert (companion_name(G), RecordType.TXT) in z
    applies = provider.calls["apply"]
    again = await ctl.reconcile_once()
    assert not again.plan.changes and provider.calls["apply"] == applies
    assert seen[-1] is again and set(again.records) == set(await provider.records())


async def test_cluster_down_turns_region_into_cname_and_back() -> None:
    store, provider, ctl, _ = make()
    store.upsert_service(svc("us", "10.0.0.1"))
    store.upsert_service(svc("eu", "10.1.0.1"))
    await ctl.reconcile_once()
    store.set_cluster_status("eu", ClusterStatus.OFFLINE)
    await ctl.reconcile_once()
    z = zone(await provider.records())
    assert z[(EUR, RecordType.CNAME)] == (G,)
    assert z[(G, RecordType.A)] == ("10.0.0.1",)
    store.set_cluster_status("eu", ClusterStatus.READY)
    await ctl.reconcile_once()
    z = zone(await provider.records())
    assert z[(EUR, RecordType.A)] == ("10.1.0.1",)
    assert (EUR, RecordType.CNAME) not in z


async def test_deleted_service_leaves_dns_but_foreign_records_stay() -> None:
    store, provider, ctl, _ = make()
    foreign = RecordSet("www.example.com", RecordType.A, 300, ("192.0.2.7",))
    provider.seed([foreign])
    store.upsert_service(svc("us", "10.0.0.1"))
    await ctl.reconcile_once()
    store.delete_service("us", "default", "web")
    await ctl.reconcile_once()
    assert await provider.records() == [foreign]


async def test_upsert_only_keeps_records_of_deleted_service() -> None:
    fed = Federation(name="federation", suffix="example.com", owner_id="test", policy=Policy.UPSERT_ONLY)
    store, provider, ctl, _ = make(fed=fed)
    store.upsert_service(svc("us", "10.0.0.1"))
    await ctl.reconcile_once()
    before = await provider.records()
    store.delete_service("us", "default", "web")
    await ctl.reconcile_once()
    assert await provider.records() == before


async def test_transient_error_is_retried_with_backoff() -> None:
    store, provider, ctl, _ = make(settings=ControllerSettings(debounce=0, retry_min=0.05, resync=3600))
    store.upsert_service(svc("us", "10.0.0.1"))
    provider.fail_next(1)
    task = asyncio.create_task(ctl.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (G, RecordType.A) in zone(await provider.records()):
                break
        assert zone(await provider.records())[(G, RecordType.A)] == ("10.0.0.1",)
        assert ctl.metrics.reconciles.labels("error-transient")._value.get() == 1
    finally:
        task.cancel()


async def test_bursts_are_debounced_into_one_reconcile() -> None:
    # The debounce wait is released by the test, so "one reconcile per burst" is exact, not timed.
    waits: list[float] = []
    release = asyncio.Event()

    async def debounce(seconds: float) -> None:
        waits.append(seconds)
        await release.wait()
        release.clear()

    store, provider, ctl, _ = make(settings=ControllerSettings(debounce=0.2, resync=3600), sleep=debounce)

    async def reconciles(n: int) -> None:
        for _ in range(500):  # a wait for a condition, bounded; nothing here asserts on time
            if ctl.reconciles >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{ctl.reconciles} reconciles, expected {n}")

    async def waits_for(n: int) -> None:
        for _ in range(500):
            if len(waits) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(waits)} debounce waits, expected {n}")

    task = asyncio.create_task(ctl.run())
    try:
        await waits_for(1)  # the clusters make() added are a change: the first pass debounces too
        release.set()
        await reconciles(1)
        base = ctl.reconciles
        for i in range(25):
            store.upsert_service(ServiceObservation("us", "default", f"s{i}", 1, (f"10.0.1.{i}",)))
        for _ in range(50):
            await asyncio.sleep(0.001)
        assert waits == [0.2, 0.2] and ctl.reconciles == base  # held in the debounce, however long
        for i in range(25, 50):  # changes that arrive while it waits join the same reconcile
            store.upsert_service(ServiceObservation("us", "default", f"s{i}", 1, (f"10.0.1.{i}",)))
        release.set()
        await reconciles(base + 1)
        for _ in range(50):
            await asyncio.sleep(0.001)
        assert ctl.reconciles == base + 1 and waits == [0.2, 0.2]
        names = {r.name for r in await provider.records()}
        assert all(f"s{i}.default.federation.svc.example.com" in names for i in range(50))
        assert ctl.metrics.change_to_applied._sum.get() > 0
    finally:
        task.cancel()


async def test_failing_record_is_isolated() -> None:
    store, provider, ctl, _ = make()
    store.upsert_service(svc("us", "10.0.0.1"))
    store.upsert_service(ServiceObservation("us", "default", "bad", 1, ("10.0.0.2",)))
    provider.reject("bad.default.federation.svc.example.com")
    out = await ctl.reconcile_once()
    assert "bad.default.federation.svc.example.com" in out.failed
    assert (G, RecordType.A) in zone(await provider.records())


async def test_non_leader_writes_nothing() -> None:
    store, provider, ctl, _ = make(is_leader=lambda: False)
    store.upsert_service(svc("us", "10.0.0.1"))
    out = await ctl.reconcile_once()
    assert out.plan.changes and provider.calls["apply"] == 0


async def test_leadership_is_read_once_per_reconcile() -> None:
    """Finding 9: leadership gained mid-reconcile must not publish changes never sent to the provider."""
    answers = iter([False, True, True, True])
    reads: list[bool] = []

    def is_leader() -> bool:
        reads.append(next(answers))
        return reads[-1]

    store, provider, ctl, seen = make(is_leader=is_leader)
    store.upsert_service(svc("us", "10.0.0.1"))
    out = await ctl.reconcile_once()
    assert len(reads) == 1 and out.applied == 0 and provider.calls["apply"] == 0
    # What the feed and the status writer get is the zone as it stands: still empty.
    assert out.records == () and seen[-1].records == ()
    out = await ctl.reconcile_once()  # leader now: the same changes go out, and only now are published
    assert out.applied > 0 and {r.name for r in out.records} >= {G}


async def test_run_stops_when_cancelled_as_a_change_arrives() -> None:
    """CI hang: on Python 3.11, ``asyncio.wait_for`` returns the inner result when a cancellation
    lands just as the awaited event is set, so the loop went round again and never stopped."""
    store, _, ctl, _ = make(settings=ControllerSettings(debounce=0, resync=3600))
    task = asyncio.create_task(ctl.run())
    for _ in range(200):  # until the loop is idle, waiting for a change
        await asyncio.sleep(0.01)
        if ctl.reconciles >= 1:
            break
    await asyncio.sleep(0.05)
    store.upsert_service(svc("us", "10.0.0.1"))  # wakes the wait ...
    task.cancel()  # ... in the same tick as the cancellation
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled(), "the reconcile loop ignored its cancellation"
