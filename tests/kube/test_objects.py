"""Pure mapping of API objects: table tests, including hostile shapes."""

from __future__ import annotations

from typing import Any

import pytest

from ingressfed.kube.objects import (
    Selection,
    endpoint_slice_from,
    ingress_from,
    is_dns_subdomain,
    node_from,
    service_from,
)
from ingressfed.model import IngressRule

NONE = Selection()


def svc(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"federation.ingressfed.io/enabled": "true"},
        },
        "spec": {"type": "LoadBalancer"},
        "status": {
            "loadBalancer": {
                "ingress": [{"ip": "2001:db8::1"}, {"ip": "192.0.2.1"}, {"hostname": "LB.Example.com."}]
            }
        },
    }
    obj.update(over)
    return obj


def test_service_mapping_keeps_only_what_the_core_needs() -> None:
    m = service_from(svc(), cluster="c1", selection=NONE)
    assert m.problems == ()
    assert m.value is not None
    assert (m.value.cluster, m.value.namespace, m.value.name) == ("c1", "default", "web")
    assert m.value.addresses == ("192.0.2.1", "2001:db8::1")
    assert m.value.hostnames == ("lb.example.com",)
    assert m.value.ready_endpoints == 0 and m.value.ttl is None


@pytest.mark.parametrize(
    ("meta", "selection", "federated"),
    [
        ({"name": "web", "namespace": "default"}, NONE, False),
        (
            {
                "name": "web",
                "namespace": "default",
                "annotations": {"federation.ingressfed.io/enabled": "true"},
            },
            NONE,
            True,
        ),
        (
            {"name": "web", "namespace": "default", "labels": {"federation.ingressfed.io/enabled": "false"}},
            NONE,
            False,
        ),
        ({"name": "web", "namespace": "shop"}, Selection(frozenset({"shop"})), True),
        ({"name": "web", "namespace": "default", "annotations": ["not", "a", "map"]}, NONE, False),
    ],
)
def test_service_opt_in(meta: dict[str, Any], selection: Selection, federated: bool) -> None:
    m = service_from(svc(metadata=meta), cluster="c", selection=selection)
    assert (m.value is not None) == federated


@pytest.mark.parametrize(
    ("ttl", "expected", "problem"),
    [
        ("60", 60, False),
        (" 300 ", 300, False),
        ("0", None, True),
        ("abc", None, True),
        (7, None, True),
        ("9" * 40, None, True),
        ("86401", None, True),
    ],
)
def test_ttl_annotation(ttl: object, expected: int | None, problem: bool) -> None:
    meta = {
        "name": "web",
        "namespace": "d",
        "annotations": {"federation.ingressfed.io/enabled": "true", "federation.ingressfed.io/ttl": ttl},
    }
    m = service_from(svc(metadata=meta), cluster="c", selection=NONE)
    assert m.value is not None and m.value.ttl == expected
    assert bool(m.problems) == problem
    if problem:
        assert "federation.ingressfed.io/ttl" in m.problems[0].reason


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ("not an object", "metadata"),
        ({"metadata": None}, "metadata"),
        (
            svc(metadata={"namespace": "default", "labels": {"federation.ingressfed.io/enabled": "true"}}),
            "metadata.name",
        ),
        (
            svc(
                metadata={
                    "name": "x" * 10_000,
                    "namespace": "d",
                    "labels": {"federation.ingressfed.io/enabled": "true"},
                }
            ),
            "metadata.name",
        ),
        (
            svc(
                metadata={
                    "name": "a.b",
                    "namespace": "d",
                    "labels": {"federation.ingressfed.io/enabled": "true"},
                }
            ),
            "DNS label",
        ),
        (svc(spec=["LoadBalancer"]), "spec.type"),
        (svc(spec={"type": "NodePort"}), "spec.type"),
    ],
)
def test_unusable_services_name_the_field(obj: object, field: str) -> None:
    m = service_from(obj, cluster="c", selection=NONE)
    assert m.value is None
    assert any(field in p.reason for p in m.problems)
    assert all(len(p.reason) < 600 for p in m.problems)


@pytest.mark.parametrize(
    "status",
    [
        None,
        "x",
        {"loadBalancer": "x"},
        {"loadBalancer": {"ingress": "x"}},
        {"loadBalancer": {"ingress": [1, None]}},
        {
            "loadBalancer": {
                "ingress": [{"ip": 12}, {"hostname": ["x"]}, {"ip": "1.2.3.4.5"}, {"hostname": "-bad-"}]
            }
        },
    ],
)
def test_bad_status_never_raises(status: object) -> None:
    m = service_from(svc(status=status), cluster="c", selection=NONE)
    assert m.value is not None and m.value.addresses == () and m.value.hostnames == ()


def test_too_many_lb_entries_are_capped() -> None:
    ingress = [{"ip": f"10.0.{i // 256}.{i % 256}"} for i in range(5000)]
    m = service_from(svc(status={"loadBalancer": {"ingress": ingress}}), cluster="c", selection=NONE)
    assert m.value is not None and len(m.value.addresses) == 64
    assert any("more than 64" in p.reason for p in m.problems)


def ing(spec: Any, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "site", "namespace": "web", **meta}, "spec": spec}


def test_ingress_by_class_or_opt_in() -> None:
    rules = [
        {
            "host": "shop.example.com",
            "http": {"paths": [{"path": "/", "pathType": "Prefix"}, {"path": "/api", "pathType": "Exact"}]},
        },
        {"host": "*.example.com"},
        {"http": {"paths": []}},
    ]
    m = ingress_from(ing({"ingressClassName": "ingressfed", "rules": rules}), cluster="c", selection=NONE)
    assert m.value is not None and m.problems == ()
    assert m.value.rules == (
        IngressRule("*.example.com"),
        IngressRule("shop.example.com"),
        IngressRule("shop.example.com", "/api", "Exact"),
    )
    assert (
        ingress_from(ing({"ingressClassName": "nginx", "rules": rules}), cluster="c", selection=NONE).value
        is None
    )
    opted = ing({"rules": rules}, annotations={"federation.ingressfed.io/enabled": "true"})
    assert ingress_from(opted, cluster="c", selection=NONE).value is not None


def test_ingress_without_any_valid_host_is_a_problem() -> None:
    m = ingress_from(
        ing({"ingressClassName": "ingressfed", "rules": [{"host": "UPPER.example.com"}, "x"]}),
        cluster="c",
        selection=NONE,
    )
    assert m.value is None
    reasons = [p.reason for p in m.problems]
    assert any("spec.rules[0].host" in r for r in reasons)
    assert any("spec.rules[1] is not an object" in r for r in reasons)
    assert any("no valid host" in r for r in reasons)


def test_endpoint_slice_ready_counts() -> None:
    obj = {
        "metadata": {"name": "web-x", "namespace": "d", "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
            {"addresses": ["10.0.0.3"], "conditions": {}},
            {"addresses": ["10.0.0.4"]},
            {"addresses": []},
            7,
        ],
    }
    m = endpoint_slice_from(obj)
    assert m.value is not None
    assert (m.value.service, m.value.ready) == ("web", 3)
    assert m.problems and "2 entries" in m.problems[0].reason
    orphan = endpoint_slice_from({"metadata": {"name": "s", "namespace": "d"}, "endpoints": None})
    assert orphan.value is not None and orphan.value.service == "" and orphan.value.ready == 0


def test_node_topology_with_fallback_labels() -> None:
    new = {
        "metadata": {
            "name": "n",
            "labels": {
                "topology.kubernetes.io/region": "us-east1",
                "topology.kubernetes.io/zone": "us-east1-b",
                "failure-domain.beta.kubernetes.io/region": "old",
            },
        }
    }
    old = {
        "metadata": {
            "name": "n",
            "labels": {
                "failure-domain.beta.kubernetes.io/region": "eu",
                "failure-domain.beta.kubernetes.io/zone": "eu-1",
            },
        }
    }
    assert node_from(new).value is not None and (node_from(new).value.region, node_from(new).value.zone) == (
        "us-east1",
        "us-east1-b",
    )
    m = node_from(old)
    assert m.value is not None and (m.value.region, m.value.zone) == ("eu", "eu-1")
    hostile = node_from({"metadata": {"name": "n", "labels": {"topology.kubernetes.io/region": "a b"}}})
    assert hostile.value is not None and hostile.value.region == ""
    assert node_from({"metadata": {"labels": {}}}).value is None


@pytest.mark.parametrize(
    ("name", "wildcard", "ok"),
    [
        ("a.example.com", False, True),
        ("*.example.com", True, True),
        ("*.example.com", False, False),
        ("a..b", False, False),
        ("-a.b", False, False),
        ("a" * 64 + ".com", False, False),
        ("x" * 300, False, False),
        ("*", True, False),
        ("", False, False),
    ],
)
def test_dns_subdomain(name: str, wildcard: bool, ok: bool) -> None:
    assert is_dns_subdomain(name, wildcard=wildcard) is ok


def test_ingress_steering_annotations() -> None:
    from ingressfed.model import Steering, SteeringKind

    annotations = {
        "federation.ingressfed.io/steering": "failover",
        "federation.ingressfed.io/failover-order": "cluster-b, cluster-a",
    }
    rules = [{"host": "shop.example.com"}]
    m = ingress_from(
        ing({"ingressClassName": "ingressfed", "rules": rules}, annotations=annotations),
        cluster="c",
        selection=NONE,
    )
    assert m.value is not None and m.problems == ()
    assert m.value.steering == Steering(kind=SteeringKind.FAILOVER, order=("cluster-b", "cluster-a"))
    bad = ing(
        {"ingressClassName": "ingressfed", "rules": rules},
        annotations={"federation.ingressfed.io/steering": "weighted"},
    )
    m = ingress_from(bad, cluster="c", selection=NONE)
    assert m.value is not None and m.value.steering is None  # published, with the default policy
    assert any("weighted needs weights" in p.reason and "default steering" in p.reason for p in m.problems)


def test_service_failover_annotations_reach_the_observation() -> None:
    meta = svc()["metadata"] | {
        "annotations": {
            "federation.ingressfed.io/steering": "failover",
            "federation.ingressfed.io/failover-order": "eu, us",
        }
    }
    m = service_from(svc(metadata=meta), cluster="c", selection=NONE)
    assert m.problems == ()
    assert m.value is not None and m.value.steering is not None
    assert (m.value.steering.kind.value, m.value.steering.order) == ("failover", ("eu", "us"))


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({"federation.ingressfed.io/capacity": "a=10"}, "capacity"),
        ({"federation.ingressfed.io/affinity-cookie": "pin"}, "affinity-cookie"),
    ],
)
def test_service_steering_dns_cannot_express_is_reported_and_ignored(
    annotations: dict[str, str], named: str
) -> None:
    meta = svc()["metadata"] | {"annotations": annotations}
    m = service_from(svc(metadata=meta), cluster="c", selection=NONE)
    assert m.value is not None and m.value.steering is None  # published as without a policy
    assert (
        len(m.problems) == 1
        and named in m.problems[0].reason
        and "Ingress or HTTPRoute" in m.problems[0].reason
    )


def test_service_weighted_steering_is_kept_for_dns() -> None:
    """Whether the DNS provider can write weighted answers is core.desired's to say (and report)."""
    meta = svc()["metadata"] | {
        "annotations": {
            "federation.ingressfed.io/steering": "weighted",
            "federation.ingressfed.io/weights": "a=9,b=1",
        }
    }
    m = service_from(svc(metadata=meta), cluster="c", selection=NONE)
    assert m.problems == ()
    assert m.value is not None and m.value.steering is not None
    assert (m.value.steering.kind.value, m.value.steering.weights) == ("weighted", (("a", 9), ("b", 1)))


def test_service_bad_failover_annotation_is_reported() -> None:
    meta = svc()["metadata"] | {"annotations": {"federation.ingressfed.io/steering": "failover"}}
    m = service_from(svc(metadata=meta), cluster="c", selection=NONE)
    assert m.value is not None and m.value.steering is None
    assert len(m.problems) == 1 and "failover-order" in m.problems[0].reason
