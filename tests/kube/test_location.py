"""Every kind of member gets a location by one rule, reaches the feed and DNS with it, and shows it.

Finding 1: members from FederatedClusters had ``"location": null`` in the feed (only config members
got the built-in region table), so geo DNS answered every querier with the first cluster.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml

from geo.regions import member_location, region_location
from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.model import Location
from ingressfed.store import Store
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port
from tests.kube.conftest import crd, endpoint_slice, eventually, node, service
from tests.test_run_kubernetes import base_config, write_config

HOME = Location(12.5, 45.25)


def test_the_rule_declared_then_region_then_zone_then_unknown() -> None:
    def rule(declared: Location | None, region: str, zone: str) -> tuple[Location | None, str]:
        got = member_location(declared=declared, region=region, zone=zone)
        return got.location, got.source

    assert rule(HOME, "us-east1", "") == (HOME, "declared")
    assert rule(None, "us-east1", "") == (region_location("us-east1"), "region")
    assert rule(None, "on-prem", "europe-west1-b") == (region_location("europe-west1"), "zone")
    assert rule(None, "on-prem", "rack-7") == (None, "unknown")


def test_store_derives_the_location_and_follows_observed_topology() -> None:
    from ingressfed.model import Cluster

    store = Store()
    store.set_cluster(Cluster("a", region="", zone=""))
    assert store.cluster("a").location is None
    store.set_cluster_topology("a", region="asia-east1", zone="asia-east1-a")  # from node labels
    assert store.cluster("a").location == region_location("asia-east1")
    store.set_cluster_topology("a", region="europe-west1", zone="europe-west1-b")
    assert store.cluster("a").location == region_location("europe-west1")
    store.set_cluster(Cluster("b", region="us-east1", zone="us-east1-b", location=HOME))
    store.set_cluster_topology("b", region="asia-east1", zone="asia-east1-a")
    assert store.cluster("b").location == HOME  # declared wins whatever the nodes say


def _register(host: FakeKubeAPI, member: FakeKubeAPI, name: str, **spec: Any) -> None:
    doc = yaml.safe_dump(member.kubeconfig(context=name)).encode()
    host.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-kubeconfig", "namespace": "ingressfed-system"},
            "data": {"kubeconfig": base64.b64encode(doc).decode()},
        }
    )
    host.add(
        {
            "apiVersion": "ingressfed.io/v1alpha1",
            "kind": "FederatedCluster",
            "metadata": {"name": name},
            "spec": {
                "kubeconfigSecretRef": {"namespace": "ingressfed-system", "name": f"{name}-kubeconfig"},
                **spec,
            },
        }
    )


def _feed_locations(running: Any) -> dict[str, Any]:
    body = running.publisher.current_body()
    if body is None:
        return {}
    return {c["name"]: c.get("location") for c in json.loads(body)["clusters"]}


def _status(host: FakeKubeAPI, name: str) -> dict[str, Any]:
    return (host.get("federatedclusters.ingressfed.io", name) or {}).get("status") or {}


async def test_federatedcluster_members_are_located_in_feed_dns_and_status(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with (
        FakeKubeAPI(name="host", identity="host") as host,
        FakeKubeAPI(name="asia") as asia,
        FakeKubeAPI(name="europe") as europe,
        FakeKubeAPI(name="home") as home,
    ):
        host.write_kubeconfig(kubeconfig, context="host")
        host.add(crd())
        asia.add(node("n1", "asia-east1", "asia-east1-a"))  # region observed from node labels
        _register(host, asia, "asia")
        _register(host, europe, "europe", region="europe-west1", zone="europe-west1-b")  # join --region
        _register(host, home, "home", region="on-prem", zone="rack-7", location={"lat": 12.5, "lon": 45.25})
        for i, m in enumerate((asia, europe, home)):
            m.add(service("web", ip=f"203.0.113.{i + 1}"))
            m.add(endpoint_slice("web"))
        doc = base_config(tmp_path, free_port())
        doc["source"]["hostKubeconfig"] = {"path": str(kubeconfig), "context": "host"}
        doc["dnsServer"]["answers"] = "geo"  # routed records: each carries its cluster's location
        async with start(load_config(write_config(tmp_path, doc))) as running:
            want = {
                "asia": {"lat": region_location("asia-east1").lat, "lon": region_location("asia-east1").lon},
                "europe": {
                    "lat": region_location("europe-west1").lat,
                    "lon": region_location("europe-west1").lon,
                },
                "home": {"lat": 12.5, "lon": 45.25},
            }
            await eventually(
                lambda: _feed_locations(running) == want, what="every member located in the feed"
            )
            expected = {n: Location(v["lat"], v["lon"]) for n, v in want.items()}

            def located() -> dict[str, Location | None]:
                last = running.controller.last
                routed = [r.routing for r in (last.records if last else ()) if r.routing is not None]
                return {r.cluster: r.location for r in routed}

            # The zone the embedded DNS server answers from: each routed set carries its location.
            await eventually(lambda: located() == expected, what="routed records carry every location")
            for name, source in (("asia", "region"), ("europe", "region"), ("home", "declared")):
                await eventually(
                    lambda name=name, source=source: _status(host, name).get("locationSource") == source,
                    what=f"{name} status shows its location source",
                )
                assert _status(host, name)["location"] == want[name]


async def test_config_members_with_the_kubernetes_source_are_located(tmp_path: Path) -> None:
    """Config members too: the region observed from nodes gives the table's location."""
    kubeconfig = tmp_path / "kubeconfig"
    async with FakeKubeAPI(name="us") as us:
        us.write_kubeconfig(kubeconfig, context="us")
        us.add(node("n1", "us-east1", "us-east1-b"))
        doc = base_config(tmp_path, free_port())
        doc["clusters"] = [{"name": "us", "kubeconfig": {"path": str(kubeconfig), "context": "us"}}]
        async with start(load_config(write_config(tmp_path, doc))) as running:
            loc = region_location("us-east1")
            await eventually(
                lambda: _feed_locations(running) == {"us": {"lat": loc.lat, "lon": loc.lon}},
                what="the config member located in the feed",
            )
