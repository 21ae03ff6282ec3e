"""Provider-call benchmark (not a test): N federated Services x 3 clusters into Route53 on moto.

Pipeline: Store -> the lead's Controller loop (core.desired + core.plan, debounce,
resync) -> CachedProvider -> Route53Provider -> moto_server (HTTP on loopback).
Counts ChangeResourceRecordSets / ListResourceRecordSets calls and wall time for
  1. the initial sync (every level of every Service, TXT companions included),
  2. one Service change (one cluster's load-balancer address),
  3. an idle window (5 minutes by default; resync period set longer than it),
and compares with one change call per record set (extrapolated from timed
single-record calls against the same server).

    .venv/bin/python -m bench.controller.run [--services 1000] [--idle 300] [--naive-sample 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import boto3

from ingressfed.controller import Controller, ControllerSettings
from ingressfed.model import (
    Change,
    ChangeAction,
    Changes,
    Cluster,
    Federation,
    RecordSet,
    RecordType,
    ServiceObservation,
)
from ingressfed.store import Store
from providers.batching import split
from providers.cache import CachedProvider
from providers.route53 import Route53Provider, change_cost
from tests.fakes.moto_server import FAKE_CREDENTIALS, start_moto, stop

CLUSTERS = (
    Cluster("cluster-us-east1-b", "us-east1", "us-east1-b"),
    Cluster("cluster-europe-west1-b", "europe-west1", "europe-west1-b"),
    Cluster("cluster-asia-east1-a", "asia-east1", "asia-east1-a"),
)
CHANGE_OPS = ("ChangeResourceRecordSets", "ListResourceRecordSets")


def observation(cluster: int, service: int, generation: int = 0) -> ServiceObservation:
    address = f"10.{cluster}.{service // 250}.{service % 250 + 1 + generation}"
    return ServiceObservation(CLUSTERS[cluster].name, "default", f"svc{service:05d}", 1, (address,))


def delta(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    return {op: after[op] - before[op] for op in CHANGE_OPS}


@dataclass
class Result:
    initial_seconds: float = 0.0
    initial_calls: dict[str, int] = field(default_factory=dict)
    initial_changes: int = 0
    initial_elements: int = 0
    initial_chars: int = 0
    initial_batches_planned: int = 0
    change_seconds: float = 0.0
    change_calls: dict[str, int] = field(default_factory=dict)
    change_changes: int = 0
    idle_seconds: float = 0.0
    idle_calls: dict[str, int] = field(default_factory=dict)
    idle_reconciles: int = 0


async def settle(controller: Controller, reconciles: int, *, timeout: float) -> None:
    """Wait until the controller has finished a reconcile after ``reconciles``."""
    deadline = time.monotonic() + timeout
    while controller.reconciles <= reconciles:
        if time.monotonic() > deadline:
            raise TimeoutError("controller did not reconcile in time")
        await asyncio.sleep(0.01)


def naive_estimate(url: str, zone_name: str, sample: int) -> float:
    """Seconds per single-record ChangeResourceRecordSets call on the same server."""
    provider = Route53Provider(zone=zone_name, options={"endpointUrl": url, "batchChangeSize": 1})
    started = time.perf_counter()

    async def go() -> None:
        changes = Changes(
            tuple(
                Change(
                    ChangeAction.CREATE, new=RecordSet(f"n{i}.{zone_name}", RecordType.A, 30, ("192.0.2.1",))
                )
                for i in range(sample)
            )
        )
        await provider.apply(changes)
        await provider.close()

    asyncio.run(go())
    return (time.perf_counter() - started) / sample


async def bench(url: str, zone: str, *, services: int, idle: float) -> Result:
    fed = Federation(name="federation", suffix=zone, owner_id="bench")
    route53 = Route53Provider(zone=zone, options={"endpointUrl": url})
    cached = CachedProvider(route53)
    store = Store()
    for c in CLUSTERS:
        store.set_cluster(c)
    for s in range(services):
        for i in range(len(CLUSTERS)):
            store.upsert_service(observation(i, s))
    settings = ControllerSettings(debounce=0.05, resync=idle + 3600)
    controller = Controller(federation=fed, store=store, provider=cached, settings=settings)
    out = Result()

    task = asyncio.create_task(controller.run())
    try:
        # 1. initial sync
        t0 = time.perf_counter()
        before = Counter(route53.calls)
        await settle(controller, 0, timeout=3600)
        out.initial_seconds = time.perf_counter() - t0
        out.initial_calls = delta(before, route53.calls)
        last = controller.last
        assert last is not None and last.error is None and not last.failed, last and (last.error, last.failed)
        changes = last.plan.changes
        out.initial_changes = len(changes)
        out.initial_elements = sum(change_cost(c).values for c in changes.items)
        out.initial_chars = sum(change_cost(c).chars for c in changes.items)
        out.initial_batches_planned = len(split(changes, route53.limits, cost=change_cost))

        # 2. one Service change
        done = controller.reconciles
        before = Counter(route53.calls)
        t0 = time.perf_counter()
        store.upsert_service(observation(1, 7, generation=100))
        await settle(controller, done, timeout=120)
        out.change_seconds = time.perf_counter() - t0
        out.change_calls = delta(before, route53.calls)
        assert controller.last is not None
        out.change_changes = len(controller.last.plan.changes)

        # 3. idle
        before = Counter(route53.calls)
        done = controller.reconciles
        await asyncio.sleep(idle)
        out.idle_seconds = idle
        out.idle_calls = delta(before, route53.calls)
        out.idle_reconciles = controller.reconciles - done
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cached.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=300.0, help="idle window in seconds (default 300)")
    parser.add_argument(
        "--naive-sample", type=int, default=200, help="single-record calls timed for comparison"
    )
    args = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    proc, url = start_moto()
    try:
        client = boto3.client("route53", endpoint_url=url, region_name="us-east-1")
        zone = "example.com"
        client.create_hosted_zone(Name=zone, CallerReference=uuid.uuid4().hex)
        naive_zone = "naive.example.org"
        client.create_hosted_zone(Name=naive_zone, CallerReference=uuid.uuid4().hex)
        r = asyncio.run(bench(url, zone, services=args.services, idle=args.idle))
        per_call = naive_estimate(url, naive_zone, args.naive_sample)
    finally:
        stop(proc)
    bound = max(
        math.ceil(r.initial_changes / 1000),
        math.ceil(r.initial_elements / 1000),
        math.ceil(r.initial_chars / 32000),
    )
    calls, ch, idle = r.initial_calls, r.change_calls, r.idle_calls
    lines = [
        f"Route53 on moto: {args.services} Services x {len(CLUSTERS)} clusters, all levels + TXT companions",
        f"initial sync : {r.initial_changes} changes ({r.initial_elements} ResourceRecord elements, "
        f"{r.initial_chars} value characters) in {r.initial_seconds:.1f}s",
        f"               ChangeResourceRecordSets={calls['ChangeResourceRecordSets']} "
        f"ListResourceRecordSets={calls['ListResourceRecordSets']}",
        "               lower bound max(ceil(changes/1000), ceil(elements/1000), ceil(chars/32000)) "
        f"= {bound}; batches planned = {r.initial_batches_planned}",
        f"one change   : {r.change_changes} changes in {r.change_seconds:.2f}s: "
        f"ChangeResourceRecordSets={ch['ChangeResourceRecordSets']} "
        f"ListResourceRecordSets={ch['ListResourceRecordSets']}",
        f"idle {r.idle_seconds:.0f}s     : ChangeResourceRecordSets={idle['ChangeResourceRecordSets']} "
        f"ListResourceRecordSets={idle['ListResourceRecordSets']} (reconciles: {r.idle_reconciles})",
        f"one call per record: {r.initial_changes} ChangeResourceRecordSets calls, ~{per_call * 1000:.1f} ms "
        f"each on this server -> ~{r.initial_changes * per_call:.0f}s (Route53 allows 5 requests/s per "
        f"account: >= {r.initial_changes / 5:.0f}s)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
