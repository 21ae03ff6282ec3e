"""Pure pieces of the kube adapters: backoff, member specs, probe outcomes, registry status."""

from __future__ import annotations

import pytest

from ingressfed.core.health import ClusterHealth, ProbeOutcome
from ingressfed.kube.backoff import BackoffPolicy, backoff_delay
from ingressfed.kube.join import JoinError, JoinPlan, cluster_role_rules
from ingressfed.kube.members import KubeconfigSource, MemberSpec, SecretRef, cluster_of, member_from_resource
from ingressfed.kube.probes import outcome_of
from ingressfed.kube.registry import status_patch
from ingressfed.model import ClusterStatus, Location


def test_backoff_grows_caps_and_jitters() -> None:
    policy = BackoffPolicy(base=0.5, cap=30.0, factor=2.0, jitter=0.5)
    lows = [backoff_delay(a, policy=policy, rand=0.0) for a in range(10)]
    highs = [backoff_delay(a, policy=policy, rand=0.999999) for a in range(10)]
    assert lows[:4] == [0.25, 0.5, 1.0, 2.0]
    assert highs[0] == pytest.approx(0.5) and highs[-1] == pytest.approx(30.0)
    assert all(lo <= hi for lo, hi in zip(lows, highs, strict=True))
    assert backoff_delay(10_000, policy=policy, rand=0.5) <= 30.0
    assert backoff_delay(-3, policy=policy, rand=2.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        BackoffPolicy(base=5, cap=1)


def test_member_from_resource() -> None:
    obj = {
        "metadata": {"name": "eu"},
        "spec": {
            "kubeconfigSecretRef": {"namespace": "ingressfed-system", "name": "eu-kc"},
            "region": "europe-west1",
            "location": {"lat": 50.4, "lon": 3.8},
            "weight": 300,
        },
    }
    m = member_from_resource(obj)
    assert m.problems == ()
    assert m.value == MemberSpec(
        name="eu",
        kubeconfig=KubeconfigSource(secret=SecretRef("ingressfed-system", "eu-kc")),
        region="europe-west1",
        location=Location(50.4, 3.8),
        weight=300,
    )
    c = cluster_of(m.value, region="observed", zone="observed-z")
    assert (c.region, c.zone, c.weight) == ("europe-west1", "observed-z", 300)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"metadata": {"name": "Bad_Name"}, "spec": {}}, "metadata.name"),
        ({"metadata": {"name": "a"}, "spec": "x"}, "spec"),
        ({"metadata": {"name": "a"}, "spec": {}}, "kubeconfigSecretRef"),
        (
            {"metadata": {"name": "a"}, "spec": {"kubeconfigSecretRef": {"namespace": "N S", "name": "x"}}},
            "kubeconfigSecretRef.namespace",
        ),
    ],
)
def test_member_from_bad_resource(obj: object, field: str) -> None:
    m = member_from_resource(obj)
    assert m.value is None and any(field in p.reason for p in m.problems)


def test_member_bad_optional_fields_fall_back() -> None:
    obj = {
        "metadata": {"name": "a"},
        "spec": {
            "kubeconfigSecretRef": {"namespace": "n", "name": "s"},
            "weight": True,
            "disabled": "yes",
            "location": {"lat": 95, "lon": 0},
        },
    }
    m = member_from_resource(obj)
    assert (
        m.value is not None
        and m.value.weight == 100
        and m.value.disabled is False
        and m.value.location is None
    )
    assert len(m.problems) == 3


def test_probe_outcomes() -> None:
    assert outcome_of(200) is ProbeOutcome.OK
    assert outcome_of(500) is ProbeOutcome.NOT_READY
    assert outcome_of(403) is ProbeOutcome.NOT_READY
    assert outcome_of(None) is ProbeOutcome.UNREACHABLE


def test_status_patch_conditions() -> None:
    health = ClusterHealth(
        status=ClusterStatus.OFFLINE, last_probe_time=0.0, last_transition_time=0.0, reason="Unreachable"
    )
    body = status_patch(health, message="connection refused", region="r", zone="z")["status"]
    assert body["observedRegion"] == "r" and body["observedZone"] == "z"
    ready, offline = body["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "Offline")
    assert (offline["type"], offline["status"], offline["reason"]) == ("Offline", "True", "Unreachable")
    assert ready["lastProbeTime"] == "1970-01-01T00:00:00Z" and ready["message"] == "connection refused"
    fresh = status_patch(None, message="", region="", zone="")["status"]["conditions"][0]
    assert fresh["reason"] == "NotReady" and "lastProbeTime" not in fresh


def test_join_plan_validation_and_rules() -> None:
    with pytest.raises(JoinError):
        JoinPlan(name="Not_Valid")
    with pytest.raises(JoinError):
        JoinPlan(name="ok", token_seconds=60)
    writes = {
        (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"]))
        for r in cluster_role_rules()
        if set(r["verbs"]) - {"get", "list", "watch"}
    }
    # Status write-back only: patch Services/Ingresses, create Events. No delete, no update, no secrets.
    assert all(set(v) <= {"patch", "create"} for _, _, v in writes)
    assert all("secrets" not in res for _, res, _ in writes)


def test_members_from_config_sections() -> None:
    from ingressfed.config import ClusterSection, HostKubeconfigSection
    from ingressfed.kube.members import host_source, member_from_config

    by_secret = ClusterSection.model_validate(
        {
            "name": "eu",
            "region": "europe-west1",
            "weight": 5,
            "location": {"lat": 1, "lon": 2},
            "kubeconfig": {"secretRef": {"namespace": "ingressfed-system", "name": "eu-kc"}},
        }
    )
    spec = member_from_config(by_secret)
    assert spec.kubeconfig.secret == SecretRef("ingressfed-system", "eu-kc")
    assert (spec.region, spec.weight, spec.location) == ("europe-west1", 5, Location(1.0, 2.0))
    by_file = member_from_config(
        ClusterSection.model_validate({"name": "us", "kubeconfig": {"path": "/k", "context": "gke-us"}})
    )
    assert by_file.kubeconfig == KubeconfigSource(path="/k", context="gke-us")
    assert member_from_config(ClusterSection.model_validate({"name": "asia"})).kubeconfig.context == "asia"
    assert host_source(HostKubeconfigSection.model_validate({"inCluster": True})).in_cluster


def test_failure_report_once_per_streak_then_every_repeat() -> None:
    from ingressfed.kube.backoff import failure_report

    streak, due = failure_report(None, 10.0, repeat=300)
    assert due and streak.count == 1
    for t in (11.0, 50.0, 309.0):
        streak, due = failure_report(streak, t, repeat=300)
        assert not due
    streak, due = failure_report(streak, 310.0, repeat=300)
    assert due and streak.count == 5 and streak.since == 10.0 and streak.reported == 310.0
