"""Malformed and hostile objects never crash the source; they become problems naming the field."""

from __future__ import annotations

from contextlib import AsyncExitStack

from ingressfed.kube.clients import ClientPool
from ingressfed.kube.source import KubeSource, LogProblems
from ingressfed.store import Store
from tests.kube.conftest import FAST, endpoint_slice, eventually, member, service


def _names(store: Store) -> set[str]:
    return {s.name for s in store.snapshot().services}


async def test_hostile_objects_through_the_api(clusters) -> None:
    (fake,), path = await clusters(1)
    many = {f"x.example.com/k{i}": "v" * 20 for i in range(10_000)}
    fake.add(service("many-annotations", annotations=many))
    fake.add(service("giant", annotations={"note": "z" * 2_000_000}))  # one 2 MB watch/list line
    fake.add(service("bad-ttl", annotations={"federation.ingressfed.io/ttl": "forever"}))
    fake.add(service("bad-ip", ip="999.1.2.3"))
    fake.add(service("good"))
    fake.add(service("a" * 70))  # longer than a DNS label
    fake.add(endpoint_slice("good", ready=3))
    fake.add(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "odd",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "good"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.9"]}, "junk", {"conditions": "x"}],
        }
    )
    fake.add(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "evil", "namespace": "default"},
            "spec": {
                "ingressClassName": "ingressfed",
                "rules": [
                    {"host": "Bad Host!"},
                    {
                        "host": "ok.example.com",
                        "http": {
                            "paths": [
                                {"path": "no-slash", "pathType": "Prefix", "backend": {}},
                                {"path": "/", "pathType": "Weird", "backend": {}},
                                {"path": "/api", "pathType": "Exact", "backend": {}},
                            ]
                        },
                    },
                ],
            },
        }
    )
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "n",
                "labels": {
                    "topology.kubernetes.io/region": "x" * 5000,
                    "topology.kubernetes.io/zone": "zone-1",
                },
            },
        }
    )
    store = Store()
    problems = LogProblems()
    async with AsyncExitStack() as stack:
        clients = await stack.enter_async_context(ClientPool())
        source = await stack.enter_async_context(
            KubeSource(store, clients=clients, options=FAST, problems=problems)
        )
        await source.sync_members([member("c0", path)])
        await eventually(
            lambda: _names(store) == {"many-annotations", "giant", "bad-ttl", "bad-ip", "good"},
            what="usable services",
        )
        await eventually(lambda: len(store.snapshot().ingresses) == 1, what="ingress")
        good = next(s for s in store.snapshot().services if s.name == "good")
        assert good.ready_endpoints == 4  # 3 ready + 1 with conditions.ready unset; junk skipped
        bad_ip = next(s for s in store.snapshot().services if s.name == "bad-ip")
        assert bad_ip.addresses == ()
        assert next(s for s in store.snapshot().services if s.name == "bad-ttl").ttl is None
        rules = store.snapshot().ingresses[0].rules
        assert [(r.host, r.path, r.path_type) for r in rules] == [("ok.example.com", "/api", "Exact")]
        await eventually(lambda: store.cluster("c0") is not None and store.cluster("c0").zone == "zone-1")
        assert store.cluster("c0").region == ""

        reasons = " | ".join(p.reason for p in problems.recent["c0"])
        for field in (
            "federation.ingressfed.io/ttl",
            "ingress[0].ip",
            "metadata.name",
            "spec.rules[0].host",
            "paths[0].path",
            "paths[1].pathType",
        ):
            assert field in reasons, field
        # The watch still works after all that.
        fake.add(service("later"))
        await eventually(lambda: "later" in _names(store), what="watch alive")
