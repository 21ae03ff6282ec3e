"""HTTPRoute hostnames in the zone get records like Ingress hosts: ownership, TTL, policy."""

from __future__ import annotations

from ingressfed.core.desired import desired_state, with_companions
from ingressfed.core.plan import plan
from ingressfed.gateway.resources import GatewayObjects
from ingressfed.model import (
    Cluster,
    Federation,
    IngressObservation,
    IngressRule,
    Policy,
    RecordSet,
    RecordType,
    Snapshot,
)
from tests.gateway.world import CLASS, SAME_NAMESPACE_GATEWAY, inputs, service

FED = Federation(name="federation", suffix="example.com", global_addresses=("192.0.2.80",), ttl=30)
GW = CLASS + "---" + SAME_NAMESPACE_GATEWAY.replace("from: Same", "from: All")


def route(name: str, hostnames: str, *, namespace: str = "infra", annotations: str = "{}") -> str:
    return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}, annotations: {annotations}}}
spec:
  parentRefs: [{{name: same-namespace, namespace: infra}}]
  hostnames: {hostnames}
  rules:
  - backendRefs: [{{name: web, port: 80}}]
"""


def snapshot(manifests: dict[str, str] | str, ingresses: tuple[IngressObservation, ...] = ()) -> Snapshot:
    gi = inputs(manifests)
    services = (service("web", "east"), service("web", "west", address="127.0.9.9"))
    return Snapshot(
        clusters=(
            Cluster("east", "us-east1", "us-east1-b"),
            Cluster("west", "europe-west1", "europe-west1-b"),
        ),
        services=services,
        ingresses=ingresses,
        gateway=GatewayObjects(classes=gi.classes, gateways=gi.gateways, routes=gi.routes, grants=gi.grants),
    )


def records(snap: Snapshot) -> dict[tuple[str, RecordType], RecordSet]:
    state = desired_state(FED, snap)
    return {(d.record.name, d.record.type): d.record for d in state.records}


def test_route_hostnames_point_at_the_global_address_and_are_owned() -> None:
    snap = snapshot(GW + route("web", "[web.example.com, '*.apps.example.com', www.example.org]"))
    state = desired_state(FED, snap)
    got = {(d.record.name, d.record.type): d for d in state.records}
    a = got[("web.example.com", RecordType.A)]
    assert a.record.values == ("192.0.2.80",) and a.record.ttl == 30
    assert a.resource == "httproute/infra/web"
    assert not any(name.startswith("*") for name, _ in got)  # wildcards get no record
    assert any("www.example.org is outside the federation zone" in p.message for p in state.problems)
    txt = [rs for rs in with_companions(list(state.records), "ingressfed") if rs.type is RecordType.TXT]
    assert any("ingressfed/resource=httproute/infra/web" in v for rs in txt for v in rs.values)
    assert state.published["httproute/infra/web"] == {"web.example.com": ("east",)}


def test_ttl_annotation_and_route_in_two_clusters() -> None:
    r = route("web", "[web.example.com]", annotations="{federation.ingressfed.io/ttl: '120'}")
    snap = snapshot({"east": GW + r, "west": r})
    assert records(snap)[("web.example.com", RecordType.A)].ttl == 120
    assert desired_state(FED, snap).published["httproute/infra/web"] == {"web.example.com": ("east", "west")}


def test_not_accepted_route_publishes_nothing() -> None:
    snap = snapshot(GW + route("web", "[web.example.com]").replace("name: same-namespace", "name: nowhere"))
    assert ("web.example.com", RecordType.A) not in records(snap)


def test_an_ingress_and_a_route_claiming_one_host_one_owner_and_a_problem() -> None:
    ing = IngressObservation(
        cluster="east", namespace="apps", name="web", rules=(IngressRule(host="web.example.com"),)
    )
    snap = snapshot(GW + route("web", "[web.example.com]", namespace="zzz"), ingresses=(ing,))
    state = desired_state(FED, snap)
    owners = {d.resource for d in state.records if d.record.name == "web.example.com"}
    assert owners == {"ingress/apps/web"}  # first by namespace/name, as between two Ingresses
    assert any(
        p.resource == "httproute/zzz/web" and "already published for ingress/apps/web" in p.message
        for p in state.problems
    )


def test_plan_is_idempotent_and_respects_policy() -> None:
    snap = snapshot(GW + route("web", "[web.example.com]"))
    desired = list(desired_state(FED, snap).records)
    first = plan([], desired, owner_id="ingressfed")
    assert first.changes
    applied = [c.new for c in first.changes.items if c.new is not None]
    assert not plan(applied, desired, owner_id="ingressfed").changes
    gone = snapshot(GW)
    deletes = plan(
        applied, list(desired_state(FED, gone).records), owner_id="ingressfed", policy=Policy.UPSERT_ONLY
    )
    assert not deletes.changes.deletes
    assert plan(applied, list(desired_state(FED, gone).records), owner_id="ingressfed").changes.deletes
