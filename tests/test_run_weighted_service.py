"""`ingressfed run` end to end: a Service annotated ``steering: weighted`` in two member clusters
(fake API servers) is answered by the controller's DNS server in proportion to its weights, over
real DNS queries; when one cluster stops serving, the other answers alone."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from ingressfed.app import start
from ingressfed.config import load_config
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port
from tests.kube.conftest import endpoint_slice, service
from tests.test_run_kubernetes import a_records, two_members, write_config

G = "web.default.federation.svc.example.com"
WEIGHTED = {"federation.ingressfed.io/steering": "weighted", "federation.ingressfed.io/weights": "us=3,eu=1"}
US, EU = "203.0.113.1", "203.0.113.2"
QUERIES = 400


async def test_a_weighted_service_is_answered_in_proportion(tmp_path: Path) -> None:
    dns_port = free_port()
    async with FakeKubeAPI() as us, FakeKubeAPI() as eu:
        doc = two_members(tmp_path, us, eu, dns_port)
        config = load_config(write_config(tmp_path, doc))
        async with start(config) as running:
            us.add(service("web", ip=US, annotations=WEIGHTED))
            us.add(endpoint_slice("web", ready=1))
            eu.add(service("web", ip=EU, annotations=WEIGHTED))
            eu.add(endpoint_slice("web", ready=1))
            seen: set[str] = set()
            for _ in range(400):  # until both shares are in the zone (each answer is one of them)
                seen |= await a_records(dns_port, G)
                if seen == {US, EU}:
                    break
                await asyncio.sleep(0.02)
            assert seen == {US, EU}
            counts: Counter[frozenset[str]] = Counter()
            for _ in range(QUERIES):
                counts[frozenset(await a_records(dns_port, G))] += 1
            assert set(counts) == {frozenset({US}), frozenset({EU})}  # one share per answer
            # 1 in 4 for eu, within 5 standard deviations (a correct server fails ~1 in 1.7 million runs)
            sd = (QUERIES * 0.25 * 0.75) ** 0.5
            assert abs(counts[frozenset({EU})] - QUERIES * 0.25) <= 5 * sd, counts
            last = running.controller.last
            assert last is not None
            problems = [p for p in last.desired.problems if "weighted" in p.message]
            assert problems == []
            # eu stops serving: us answers alone (its plain set), every time.
            eu.add(endpoint_slice("web", ready=0, not_ready=1))
            for _ in range(400):
                answers = {frozenset(await a_records(dns_port, G)) for _ in range(20)}
                if answers == {frozenset({US})}:
                    break
                await asyncio.sleep(0.02)
            assert answers == {frozenset({US})}
