"""Gateway API and MCS objects from fake member clusters serving the real v1.6.1 CRDs.

Through kubernetes-asyncio unchanged: CRDs absent then installed while running, objects refused
by the CRD schemas where the API server refuses them, CEL-only rules caught by our parser, the
ServiceExport opt-in, and status written back (our parent entries only, transition times kept).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

import pytest

from ingressfed.gateway.federation import export_conditions, state_for
from ingressfed.kube.clients import ClientPool
from ingressfed.kube.gateway_status import GatewayStatusWriter
from ingressfed.kube.gateway_watch import GatewayWatch
from ingressfed.kube.source import KubeSource, LogProblems
from ingressfed.model import Federation
from ingressfed.store import Store
from tests.fakes.gateway import install_gateway_api, install_service_export, remove_gateway_api
from tests.fakes.kube.errors import ApiError
from tests.kube.conftest import FAST, endpoint_slice, eventually, member, service

FED = Federation(name="federation", suffix="example.com", global_addresses=("192.0.2.80",))

CLASS = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "GatewayClass",
    "metadata": {"name": "ingressfed"},
    "spec": {"controllerName": "ingressfed.io/gateway-controller"},
}
GATEWAY = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "global", "namespace": "default"},
    "spec": {
        "gatewayClassName": "ingressfed",
        "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}
        ],
    },
}


def route(
    name: str = "web", *, hostnames: list[str] | None = None, rules: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "global"}],
            "hostnames": hostnames if hostnames is not None else ["web.example.com"],
            "rules": rules if rules is not None else [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


async def _source(
    stack: AsyncExitStack, store: Store, problems: LogProblems
) -> tuple[KubeSource, ClientPool]:
    clients = await stack.enter_async_context(ClientPool())
    watch = GatewayWatch(store, report=problems.report, options=FAST, recheck=0.2)
    source = await stack.enter_async_context(
        KubeSource(store, clients=clients, options=FAST, problems=problems, gateway=watch)
    )
    return source, clients


def _ready(store: Store, *, gateways: int, classes: int) -> bool:
    g = store.snapshot().gateway
    return len(g.gateways) == gateways and len(g.classes) == classes


def _routes(store: Store) -> set[str]:
    return {r.meta.name for r in store.snapshot().gateway.routes}


async def test_crds_absent_then_installed_while_running(clusters, caplog: pytest.LogCaptureFixture) -> None:
    (fake,), path = await clusters(1)
    store = Store()
    caplog.set_level(logging.INFO, logger="ingressfed.kube.gateway_watch")
    async with AsyncExitStack() as stack:
        source, _ = await _source(stack, store, LogProblems())
        await source.sync_members([member("c0", path)])
        await eventually(
            lambda: any(
                "gateway.networking.k8s.io CRDs are not installed" in r.message for r in caplog.records
            ),
            what="absence logged",
        )
        await eventually(
            lambda: fake.count(method="GET", path="^/apis/gateway.networking.k8s.io/v1$") >= 2,
            what="rechecks",
        )
        absent_lines = [
            r for r in caplog.records if "CRDs are not installed" in r.message and "gateway" in r.message
        ]
        assert len(absent_lines) == 1  # one line, not one per recheck
        install_gateway_api(fake)
        fake.add(CLASS, validate=True)
        fake.add(GATEWAY, validate=True)
        fake.add(route(), validate=True)
        await eventually(
            lambda: _routes(store) == {"web"} and _ready(store, gateways=1, classes=1),
            what="objects picked up after install",
        )
        snap = store.snapshot()
        assert [g.meta.name for g in snap.gateway.gateways] == ["global"]
        assert [c.controller_name for c in snap.gateway.classes] == ["ingressfed.io/gateway-controller"]
        # CRDs removed while running: the member's objects leave, and a later install comes back.
        remove_gateway_api(fake)
        await eventually(lambda: not store.snapshot().gateway, what="objects dropped with their CRDs")
        install_gateway_api(fake)
        fake.add(route("again"), validate=True)
        await eventually(lambda: _routes(store) == {"again"}, what="reinstalled")


async def test_the_api_server_refuses_what_the_crd_schema_refuses(clusters) -> None:
    (fake,), _ = await clusters(1)
    install_gateway_api(fake)
    with pytest.raises(ApiError) as refused:
        fake.add(route(hostnames=["Web.Example.com"]), validate=True)
    assert "spec.hostnames[0]" in str(refused.value)
    with pytest.raises(ApiError):
        fake.add(
            route(
                rules=[
                    {
                        "matches": [{"path": {"type": "Glob", "value": "/"}}],
                        "backendRefs": [{"name": "web", "port": 80}],
                    }
                ]
            ),
            validate=True,
        )
    with pytest.raises(ApiError):
        bad_weight = [{"backendRefs": [{"name": "web", "port": 80, "weight": 1_000_001}]}]
        fake.add(route(rules=bad_weight), validate=True)


async def test_cel_only_rules_become_status_and_problems(clusters) -> None:
    """The fake checks schemas, not CEL (like a server without CEL): our parser names the rule."""
    (fake,), path = await clusters(1)
    install_gateway_api(fake)
    fake.add(CLASS, validate=True)
    fake.add(GATEWAY, validate=True)
    redirect_with_backends = [
        {
            "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}],
            "backendRefs": [{"name": "web", "port": 80}],
        }
    ]
    fake.add(route(rules=redirect_with_backends), validate=True)  # accepted by the schema
    store, problems = Store(), LogProblems()
    async with AsyncExitStack() as stack:
        source, _ = await _source(stack, store, problems)
        await source.sync_members([member("c0", path)])
        await eventually(lambda: _routes(store) == {"web"} and _ready(store, gateways=1, classes=1))
        got = problems.recent.get("c0", [])
        assert any("spec.rules[0].filters" in p.reason and "backendRefs" in p.reason for p in got), got
        state = state_for(store.snapshot(), FED)
        (parent,) = state.routes[("c0", "default", "web")]
        accepted = next(c for c in parent.conditions if c.type == "Accepted")
        assert (accepted.status, accepted.reason) == (False, "UnsupportedValue")


async def test_service_export_opts_a_service_in_and_gets_a_condition(clusters) -> None:
    (fake,), path = await clusters(1)
    install_service_export(fake)
    fake.add(service("web", opt_in=False, ip="192.0.2.7"))
    fake.add(endpoint_slice("web", ready=1))
    store = Store()
    export = {
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ServiceExport",
        "metadata": {"name": "web", "namespace": "default"},
    }
    missing = {**export, "metadata": {"name": "nothing-here", "namespace": "default"}}
    async with AsyncExitStack() as stack:
        source, clients = await _source(stack, store, LogProblems())
        await source.sync_members([member("c0", path)])
        await eventually(
            lambda: fake.count(method="GET", path="^/api/v1/services$") >= 1, what="services listed"
        )
        assert not store.snapshot().services  # no label: not federated
        fake.add(export, validate=True)
        fake.add(missing, validate=True)
        await eventually(lambda: [s.name for s in store.snapshot().services] == ["web"], what="exported")
        (svc,) = store.snapshot().services
        assert svc.addresses == ("192.0.2.7",)
        await eventually(lambda: store.snapshot().services[0].ready_endpoints == 1, what="endpoints counted")
        writer = GatewayStatusWriter(clients.current)
        snap = store.snapshot()
        await writer.publish(state_for(snap, FED), export_conditions(snap))
        conds = {c["type"]: c for c in fake.get("serviceexports", "web", "default")["status"]["conditions"]}
        assert (conds["Valid"]["status"], conds["Valid"]["reason"]) == ("True", "Valid")
        other = fake.get("serviceexports", "nothing-here", "default")["status"]["conditions"]
        assert [(c["type"], c["status"], c["reason"]) for c in other] == [("Valid", "False", "NoService")]
        fake.delete("serviceexports", "web", "default")
        await eventually(lambda: not store.snapshot().services, what="unexported")


async def test_status_written_back_with_foreign_parents_kept(clusters) -> None:
    fakes, path = await clusters(2)
    for fake in fakes:
        install_gateway_api(fake)
        fake.add(CLASS, validate=True)
        fake.add(service("web", ip=f"192.0.2.{fakes.index(fake) + 1}"))
        fake.add(endpoint_slice("web"))
    fakes[0].add(GATEWAY, validate=True)
    two_parents = route()
    two_parents["spec"]["parentRefs"].append({"name": "other-gw", "namespace": "elsewhere"})
    for fake in fakes:
        fake.add(two_parents, validate=True)
    foreign = {
        "parentRef": {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "other-gw",
            "namespace": "elsewhere",
        },
        "controllerName": "example.com/other-controller",
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "theirs",
                "observedGeneration": 1,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    fakes[1].patch("httproutes", "web", {"status": {"parents": [foreign]}}, "default", subresource="status")
    store = Store()
    times = iter(float(1_800_000_000 + i * 60) for i in range(100))
    async with AsyncExitStack() as stack:
        source, clients = await _source(stack, store, LogProblems())
        await source.sync_members([member(f.name, path) for f in fakes])
        await eventually(
            lambda: (
                len(store.snapshot().gateway.routes) == 2
                and len(store.snapshot().services) == 2
                and _ready(store, gateways=1, classes=2)
            )
        )
        writer = GatewayStatusWriter(clients.current, clock=lambda: next(times))
        snap = store.snapshot()
        state = state_for(snap, FED)
        await writer.publish(state, export_conditions(snap))
        for fake in fakes:
            parents = fake.get("httproutes", "web", "default")["status"]["parents"]
            ours = [p for p in parents if p["controllerName"] == "ingressfed.io/gateway-controller"]
            assert len(ours) == 1
            assert ours[0]["parentRef"] == {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": "global",
            }
            conds = {
                c["type"]: (c["status"], c["reason"], c["observedGeneration"]) for c in ours[0]["conditions"]
            }
            assert conds == {"Accepted": ("True", "Accepted", 1), "ResolvedRefs": ("True", "ResolvedRefs", 1)}
        theirs = [
            p
            for p in fakes[1].get("httproutes", "web", "default")["status"]["parents"]
            if p["controllerName"] != "ingressfed.io/gateway-controller"
        ]
        assert theirs == [foreign]
        gw = fakes[0].get("gateways", "global", "default")["status"]
        assert gw["addresses"] == [{"type": "IPAddress", "value": "192.0.2.80"}]
        assert {c["type"]: c["status"] for c in gw["conditions"]} == {
            "Accepted": "True",
            "Programmed": "True",
        }
        assert gw["listeners"][0]["attachedRoutes"] == 1
        cls = fakes[0].get("gatewayclasses", "ingressfed")["status"]["conditions"]
        assert [(c["type"], c["status"]) for c in cls] == [("Accepted", "True")]
        first_time = {c["type"]: c["lastTransitionTime"] for c in gw["conditions"]}
        writes = writer.writes
        await writer.publish(state, export_conditions(snap))
        assert writer.writes == writes  # nothing changed: nothing written

        # A spec change bumps generation in both copies: observedGeneration follows, and a
        # condition whose status did not change keeps its lastTransitionTime.
        changed = route(rules=[{"backendRefs": [{"name": "missing", "port": 80}]}])
        changed["spec"]["parentRefs"] = two_parents["spec"]["parentRefs"]
        for fake in fakes:
            fake.add(changed, validate=True)
        await eventually(lambda: {r.meta.generation for r in store.snapshot().gateway.routes} == {2})
        snap = store.snapshot()
        await writer.publish(state_for(snap, FED), export_conditions(snap))
        ours = next(
            p
            for p in fakes[0].get("httproutes", "web", "default")["status"]["parents"]
            if p["controllerName"] == "ingressfed.io/gateway-controller"
        )
        conds = {c["type"]: c for c in ours["conditions"]}
        assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == (
            "False",
            "BackendNotFound",
        )
        assert (
            conds["ResolvedRefs"]["observedGeneration"] == 2 and conds["Accepted"]["observedGeneration"] == 2
        )
        assert conds["Accepted"]["lastTransitionTime"] < conds["ResolvedRefs"]["lastTransitionTime"]
        gw_after = fakes[0].get("gateways", "global", "default")["status"]
        assert {c["type"]: c["lastTransitionTime"] for c in gw_after["conditions"]} == first_time


async def test_listener_namespace_selector_reads_namespace_labels(clusters) -> None:
    (fake,), path = await clusters(1)
    install_gateway_api(fake)
    fake.add(CLASS, validate=True)
    selector = {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}
    gw = {**GATEWAY, "spec": {**GATEWAY["spec"], "listeners": [{**GATEWAY["spec"]["listeners"][0]}]}}
    gw["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": selector}
    fake.add(gw, validate=True)
    fake.add(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "a"}}}
    )
    r = route()
    r["metadata"]["namespace"] = "team-a"
    r["spec"]["parentRefs"] = [{"name": "global", "namespace": "default"}]
    fake.add(r, validate=True)
    store = Store()

    def accepted() -> tuple[bool, str] | None:
        state = state_for(store.snapshot(), FED)
        parents = state.routes.get(("c0", "team-a", "web"))
        if not parents:
            return None
        c = next(c for c in parents[0].conditions if c.type == "Accepted")
        return (c.status, c.reason)

    async with AsyncExitStack() as stack:
        source, _ = await _source(stack, store, LogProblems())
        await source.sync_members([member("c0", path)])
        await eventually(lambda: accepted() == (True, "Accepted"), what="selected by its labels")
        fake.add(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "b"}}}
        )
        await eventually(lambda: accepted() == (False, "NotAllowedByListeners"), what="relabelled out")
