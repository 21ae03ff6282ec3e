"""Leader election against a fake host cluster: one leader, takeover, partitions, conflicts, release."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from ingressfed.controller import Controller, ControllerSettings
from ingressfed.errors import ConfigError
from ingressfed.kube.lease import (
    LeaderElector,
    LeaseRecord,
    LeaseSettings,
    Observation,
    Step,
    default_identity,
    holds_leadership,
    next_step,
    observe,
    record_expired,
)
from ingressfed.model import Cluster, Federation, RecordType, ServiceObservation
from ingressfed.store import Store
from providers.inmemory import InMemoryProvider
from tests.fakes.kube_api import FakeKubeAPI

SETTINGS = LeaseSettings(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)
RECORD_DURATION = 2.0  # leaseDurationSeconds is whole seconds: 1.5 is written as 2
NS, NAME = "ingressfed-system", "ingressfed-controller"


def _record(holder: str, rv: str = "1", duration: float | None = 2.0) -> LeaseRecord:
    return LeaseRecord(holder, duration, None, None, 0, rv)


# ---------------------------------------------------------------------- pure timing rules
def test_settings_must_leave_the_leader_time_to_stop() -> None:
    with pytest.raises(ConfigError, match="leaseDuration must be greater than renewDeadline"):
        LeaseSettings(lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ConfigError, match="renewDeadline must be greater than retryPeriod"):
        LeaseSettings(lease_duration=15, renew_deadline=2, retry_period=2)
    with pytest.raises(ConfigError, match="retryPeriod must be > 0"):
        LeaseSettings(retry_period=0)
    assert LeaseSettings() == LeaseSettings(15.0, 10.0, 2.0)


@pytest.mark.parametrize(
    ("holder", "seen_for", "step"),
    [
        ("", 0.0, Step.ACQUIRE),  # free (released)
        ("me", 0.0, Step.ACQUIRE),  # ours: renew
        ("other", 0.0, Step.WAIT),
        ("other", 1.99, Step.WAIT),  # lease still live by our own clock
        ("other", 2.0, Step.ACQUIRE),  # unchanged for leaseDurationSeconds: expired
    ],
)
def test_next_step(holder: str, seen_for: float, step: Step) -> None:
    obs = Observation(_record(holder), since=100.0)
    assert next_step(obs, identity="me", now=100.0 + seen_for, settings=SETTINGS) is step


def test_no_lease_yet_means_acquire() -> None:
    assert next_step(None, identity="me", now=0.0, settings=SETTINGS) is Step.ACQUIRE


def test_expiry_clock_restarts_only_when_the_record_changes() -> None:
    first = observe(None, _record("other", rv="5"), now=10.0)
    same = observe(first, _record("other", rv="5"), now=11.5)
    assert same.since == 10.0 and record_expired(same, now=12.0, settings=SETTINGS)
    renewed = observe(same, _record("other", rv="6"), now=11.5)
    assert renewed.since == 11.5 and not record_expired(renewed, now=12.0, settings=SETTINGS)


def test_record_without_duration_uses_our_setting() -> None:
    obs = Observation(_record("other", duration=None), since=0.0)
    assert not record_expired(obs, now=1.4, settings=SETTINGS)
    assert record_expired(obs, now=1.5, settings=SETTINGS)


def test_leadership_ends_at_the_renew_deadline_before_the_lease_ends() -> None:
    assert holds_leadership(10.0, now=10.99, settings=SETTINGS)
    assert not holds_leadership(10.0, now=11.0, settings=SETTINGS)
    assert not holds_leadership(None, now=0.0, settings=SETTINGS)
    assert SETTINGS.renew_deadline < SETTINGS.lease_duration


# ---------------------------------------------------------------------- against the fake host
class Replica:
    """One controller replica: its own API client (token = identity) and a log of leadership changes."""

    def __init__(self, api: FakeKubeAPI, client: Any, identity: str) -> None:
        self.identity = identity
        self.changes: list[tuple[bool, float, str]] = []  # (leading, monotonic time, lease holder then)
        self.api = api
        self.client = client
        self.elector = LeaderElector(client, NS, NAME, identity, SETTINGS, on_change=self._changed)

    def _changed(self, leading: bool) -> None:
        lease = self.api.get("leases", NAME, NS)
        holder = (lease or {}).get("spec", {}).get("holderIdentity") or ""
        self.changes.append((leading, time.monotonic(), holder))

    def first(self, leading: bool) -> tuple[bool, float, str]:
        return next(c for c in self.changes if c[0] is leading)


@asynccontextmanager
async def host(*names: str) -> AsyncIterator[tuple[FakeKubeAPI, list[Replica]]]:
    # Every replica runs as the chart's controller ServiceAccount (its Role allows this Lease only),
    # each with its own token so that faults can single one out.
    async with FakeKubeAPI(identity="host", host_namespace=NS, lease_name=NAME) as api:
        clients = [api.api_client(token=api.add_token(n)) for n in names]
        opened = [await c.__aenter__() for c in clients]
        try:
            yield api, [Replica(api, c, n) for c, n in zip(opened, names, strict=True)]
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)


async def until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def leaders(replicas: list[Replica]) -> list[str]:
    return [r.identity for r in replicas if r.elector.is_leader]


def lease_spec(api: FakeKubeAPI) -> dict[str, Any]:
    lease = api.get("leases", NAME, NS)
    assert lease is not None
    spec: dict[str, Any] = lease["spec"]
    return spec


async def test_two_replicas_exactly_one_leader_at_every_instant() -> None:
    async with host("a", "b") as (api, (a, b)):
        async with a.elector, b.elector:
            await asyncio.wait_for(
                asyncio.wait(
                    [asyncio.ensure_future(r.elector.wait_leader()) for r in (a, b)],
                    return_when=asyncio.FIRST_COMPLETED,
                ),
                5,
            )
            for _ in range(60):  # three lease durations
                now_leading = leaders([a, b])
                assert len(now_leading) == 1, now_leading
                assert lease_spec(api)["holderIdentity"] == now_leading[0]
                await asyncio.sleep(0.05)
            spec = lease_spec(api)
            assert spec["leaseDurationSeconds"] == 2 and spec["leaseTransitions"] == 0
            acquired = spec["acquireTime"]
            assert datetime.fromisoformat(spec["renewTime"]) > datetime.fromisoformat(acquired)
        # Clean shutdown of both hands the lease back.
        assert not lease_spec(api).get("holderIdentity")
        assert not a.elector.is_leader and not b.elector.is_leader


async def test_killed_leader_is_replaced_within_the_lease_duration() -> None:
    async with host("a", "b") as (api, (a, b)):
        task_a = asyncio.create_task(a.elector.run())
        await asyncio.wait_for(a.elector.wait_leader(), 5)
        async with b.elector:
            await asyncio.sleep(3 * SETTINGS.retry_period)
            assert leaders([a, b]) == ["a"]
            task_a.cancel()  # a crash: no release
            killed = time.monotonic()
            await asyncio.wait_for(b.elector.wait_leader(), RECORD_DURATION + 2 * SETTINGS.retry_period + 1.0)
            took_over = b.first(True)[1]
            assert not a.elector.is_leader  # the dead replica's own view expired before the takeover
            assert took_over - killed <= RECORD_DURATION + 2 * SETTINGS.retry_period + 1.0
            spec = lease_spec(api)
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
        with pytest.raises(asyncio.CancelledError):
            await task_a


@pytest.mark.parametrize("partition", ["errors", "silence"])
async def test_partitioned_leader_stops_before_its_lease_can_be_taken(partition: str) -> None:
    async with host("a", "b") as (api, (a, b)), a.elector:
        await asyncio.wait_for(a.elector.wait_leader(), 5)
        async with b.elector:
            await asyncio.sleep(3 * SETTINGS.retry_period)
            if partition == "errors":
                api.fail(500, token="a")
            else:
                api.hang(token="a")
            await asyncio.wait_for(b.elector.wait_leader(), RECORD_DURATION + SETTINGS.renew_deadline + 2.0)
            lost = a.first(False)
            gained = b.first(True)
            # a stepped down while the lease still named it, i.e. before anyone could take it ...
            assert lost[2] == "a"
            # ... and strictly before b started leading.
            assert lost[1] < gained[1]
            assert leaders([a, b]) == ["b"]
            api.clear_faults()
            await asyncio.sleep(3 * SETTINGS.retry_period)
            assert leaders([a, b]) == ["b"]  # healed: a follows, no flapping back


async def test_unreachable_host_makes_the_leader_step_down_and_lead_again_later() -> None:
    async with host("a") as (api, (a,)), a.elector:
        await asyncio.wait_for(a.elector.wait_leader(), 5)
        await api.stop()
        await until(
            lambda: a.changes[-1][0] is False, timeout=SETTINGS.renew_deadline + 1.0, what="step down"
        )
        assert not a.elector.is_leader
        await api.start()
        await asyncio.wait_for(a.elector.wait_leader(), RECORD_DURATION + 2.0)
        assert [c[0] for c in a.changes] == [True, False, True]


async def test_conflicting_writer_wins_and_the_leader_follows() -> None:
    async with host("a") as (api, (a,)), a.elector:
        await asyncio.wait_for(a.elector.wait_leader(), 5)
        # Injected 409s alone (as if racing a writer that changed nothing) are re-read and survived.
        api.fail(409, times=2, verb="update", resource="leases")
        await until(lambda: api.faults[0].hits == 2, timeout=5, what="conflicts")
        await asyncio.sleep(2 * SETTINGS.retry_period)
        assert a.elector.is_leader and [c[0] for c in a.changes] == [True]
        # A real intruder takes the lease over (newer resourceVersion): a must see it and step down.
        now = datetime.now(UTC).isoformat()
        api.patch("leases", NAME, {"spec": {"holderIdentity": "intruder", "renewTime": now}}, NS)
        await until(lambda: not a.elector.is_leader, timeout=SETTINGS.renew_deadline + 1.0, what="step down")
        assert a.elector.holder == "intruder"
        # The intruder never renews; after its lease runs out a takes it back.
        await asyncio.wait_for(a.elector.wait_leader(), RECORD_DURATION + 2.0)
        assert lease_spec(api)["holderIdentity"] == "a"
        assert lease_spec(api)["leaseTransitions"] == 1


async def test_clean_shutdown_hands_over_at_once() -> None:
    async with host("a", "b") as (api, (a, b)):
        await a.elector.__aenter__()
        try:
            await asyncio.wait_for(a.elector.wait_leader(), 5)
            async with b.elector:
                await until(lambda: b.elector.holder == "a", timeout=5, what="b sees a")
                await a.elector.__aexit__(None, None, None)
                released = time.monotonic()
                assert a.changes[-1][0] is False and not a.elector.is_leader
                await asyncio.wait_for(b.elector.wait_leader(), 5)
                # Much sooner than waiting out a's lease.
                assert b.first(True)[1] - released < RECORD_DURATION
                assert lease_spec(api)["holderIdentity"] == "b"
        finally:
            await a.elector.__aexit__(None, None, None)


async def test_on_change_hook_may_be_async_and_may_fail_without_stopping_election() -> None:
    calls: list[bool] = []

    async def hook(leading: bool) -> None:
        calls.append(leading)
        raise RuntimeError("hook bug")

    async with host("solo") as (_, (solo,)):
        elector = LeaderElector(solo.client, NS, NAME, "solo", SETTINGS, on_change=hook)
        async with elector:
            await asyncio.wait_for(elector.wait_leader(), 5)
            await asyncio.sleep(3 * SETTINGS.retry_period)
            assert elector.is_leader
        assert calls == [True, False]


def test_identity_is_required() -> None:
    with pytest.raises(ConfigError, match="identity"):
        LeaderElector(object(), "ns", "name", "", SETTINGS)


@pytest.mark.parametrize(
    "spec",
    [
        {"holderIdentity": "ghost"},  # no duration, no times: our own lease duration applies
        {"holderIdentity": "ghost", "leaseDurationSeconds": 0, "leaseTransitions": -3},
        None,  # no spec at all: nobody holds it
    ],
)
async def test_odd_leases_left_by_others_are_taken_over_safely(spec: dict[str, Any] | None) -> None:
    async with host("a") as (api, (a,)):
        api.add(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": NAME, "namespace": NS},
                **({"spec": spec} if spec else {}),
            }
        )
        async with a.elector:
            if spec:
                await asyncio.sleep(SETTINGS.lease_duration / 2)
                assert not a.elector.is_leader and a.elector.holder == "ghost"
            await asyncio.wait_for(a.elector.wait_leader(), SETTINGS.lease_duration + 2.0)
            assert lease_spec(api)["holderIdentity"] == "a"
            assert lease_spec(api)["leaseTransitions"] >= 0


def test_default_identity_is_unique_per_process_start() -> None:
    first, second = default_identity(), default_identity()
    assert first != second and first.rsplit("_", 1)[0] == second.rsplit("_", 1)[0]


# ---------------------------------------------------------------------- two controllers, one writer
class _Writer:
    """A replica's view of the shared DNS provider that logs who applied what, and when."""

    def __init__(self, shared: InMemoryProvider, who: str, log: list[tuple[str, float]]) -> None:
        self._shared, self._who, self._log = shared, who, log
        self.name, self.capabilities = shared.name, shared.capabilities

    async def records(self) -> Any:
        return await self._shared.records()

    def adjust(self, desired: Any) -> Any:
        return self._shared.adjust(desired)

    async def apply(self, changes: Any) -> Any:
        self._log.append((self._who, time.monotonic()))
        return await self._shared.apply(changes)

    async def close(self) -> None:
        return None


async def test_two_controllers_one_writer_and_takeover_after_the_leader_is_killed() -> None:
    fed = Federation(name="federation", suffix="example.com", owner_id="test")
    name = "web.default.federation.svc.example.com"
    shared = InMemoryProvider(zone="example.com")
    applies: list[tuple[str, float]] = []

    async def published() -> tuple[str, ...]:
        return next(
            (r.values for r in await shared.records() if r.name == name and r.type is RecordType.A), ()
        )

    async with host("a", "b") as (_api, (a, b)):
        stores: dict[str, Store] = {}
        electors: dict[str, LeaderElector] = {}
        tasks: dict[str, list[asyncio.Task[None]]] = {}
        controllers: dict[str, Controller] = {}
        for r in (a, b):
            store = stores[r.identity] = Store()
            store.set_cluster(Cluster("us", region="us-east1", zone="us-east1-b"))
            store.upsert_service(ServiceObservation("us", "default", "web", 1, ("192.0.2.1",)))
            ctl = Controller(
                federation=fed,
                store=store,
                provider=_Writer(shared, r.identity, applies),  # type: ignore[arg-type]
                settings=ControllerSettings(debounce=0.01, resync=0.3),
                is_leader=lambda who=r.identity: electors[who].is_leader,
            )
            controllers[r.identity] = ctl
            # A new leader reconciles at once instead of waiting for the next change or resync.
            electors[r.identity] = LeaderElector(
                r.client,
                NS,
                NAME,
                r.identity,
                SETTINGS,
                on_change=lambda on, c=ctl: c.schedule() if on else None,
            )
            tasks[r.identity] = [
                asyncio.create_task(electors[r.identity].run()),
                asyncio.create_task(ctl.run()),
            ]
            if r is a:
                await asyncio.wait_for(electors["a"].wait_leader(), 5)
        try:
            await until(lambda: bool(applies), timeout=5, what="first write")
            assert await published() == ("192.0.2.1",)

            for store in stores.values():  # both replicas watch the same clusters
                store.upsert_service(ServiceObservation("us", "default", "web", 1, ("192.0.2.2",)))
            for _ in range(50):
                if await published() == ("192.0.2.2",):
                    break
                await asyncio.sleep(0.05)
            assert await published() == ("192.0.2.2",)
            # Several resyncs of the follower (counted, not waited for): it computes but never writes.
            done = controllers["b"].reconciles
            await until(lambda: controllers["b"].reconciles >= done + 3, timeout=10, what="follower resyncs")
            assert {who for who, _ in applies} == {"a"}

            for t in tasks["a"]:  # a dies without releasing the lease
                t.cancel()
            killed = time.monotonic()
            stores["b"].upsert_service(ServiceObservation("us", "default", "web", 1, ("192.0.2.3",)))
            await asyncio.wait_for(electors["b"].wait_leader(), RECORD_DURATION + 2.0)
            for _ in range(50):
                if await published() == ("192.0.2.3",):
                    break
                await asyncio.sleep(0.05)
            assert await published() == ("192.0.2.3",)
            a_writes = [t for who, t in applies if who == "a"]
            b_writes = [t for who, t in applies if who == "b"]
            assert b_writes and max(a_writes) < killed < min(b_writes)
        finally:
            for t in tasks["a"] + tasks["b"]:
                t.cancel()
            await asyncio.gather(*tasks["a"], *tasks["b"], return_exceptions=True)


async def test_release_succeeds_after_a_write_it_did_not_see() -> None:
    async with host("a") as (api, (a,)):
        async with a.elector:
            await asyncio.wait_for(a.elector.wait_leader(), 5)
            # e.g. its own last renewal landed after the campaign was cancelled, or a label was added
            api.patch("leases", NAME, {"metadata": {"labels": {"touched": "yes"}}}, NS)
        spec = lease_spec(api)
        assert not spec.get("holderIdentity") and spec["leaseDurationSeconds"] == 1
