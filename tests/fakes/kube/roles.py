"""The identities ingressfed really runs as, with the rights the project really grants them.

- ``member``: the account ``ingressfed join`` creates in a member cluster, bound to the ClusterRole of
  ``ingressfed.kube.join.cluster_role_rules()`` (the same function join uses, so the two cannot drift).
- ``host``: the controller's ServiceAccount in the host cluster with the chart's ClusterRole and Role,
  rendered from ``charts/ingressfed`` by helm (``templates/rbac.yaml`` and ``serviceaccount.yaml``).
- ``admin``: bypasses RBAC, for test setup and for ``join`` itself (which a cluster admin runs).

A fake API server installs a role's objects on first use and hands out a bearer token for it.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["IDENTITIES", "Identity", "chart_rbac_objects", "member_rbac_objects"]

IDENTITIES = ("member", "host", "admin")
ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "ingressfed"
HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE = "fed"


@dataclass(frozen=True, slots=True)
class Identity:
    """A ServiceAccount and the objects that give it its rights."""

    namespace: str
    account: str
    objects: tuple[dict[str, Any], ...]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.account}"


def member_rbac_objects(cluster: str, *, namespace: str | None = None) -> Identity:
    """What ``ingressfed join <cluster>`` creates in the member (names and rules from join itself)."""
    from ingressfed.kube.join import JoinPlan, cluster_role_rules

    plan = JoinPlan(name=_label(cluster)) if namespace is None else JoinPlan(_label(cluster), namespace)
    sa, ns = plan.account, plan.namespace
    labels = plan.labels()
    objects = (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": sa, "namespace": ns, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": sa, "labels": labels},
            "rules": cluster_role_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": sa, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        },
    )
    return Identity(ns, sa, objects)


def chart_rbac_objects(*, namespace: str, lease_name: str) -> Identity:
    """The chart's controller ServiceAccount, ClusterRole(Binding) and Role(Binding), as helm renders them."""
    docs = _render(namespace, lease_name)
    # The controller's account is the one the chart binds its roles to (the data-plane account has none).
    bound = {
        s["name"]
        for d in docs
        if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
        for s in d.get("subjects") or []
        if s.get("kind") == "ServiceAccount"
    }
    accounts = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] in bound]
    if len(accounts) != 1:
        raise AssertionError(
            f"the chart binds roles to {sorted(bound)}, expected the controller's account only"
        )
    namespace_doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    return Identity(namespace, accounts[0]["metadata"]["name"], (namespace_doc, *docs))


@functools.lru_cache(maxsize=16)
def _render(namespace: str, lease_name: str) -> tuple[dict[str, Any], ...]:
    if not (HELM.is_file() and os.access(HELM, os.X_OK)):
        # No silent fallback to a hand-written copy: the point is the chart's own rules.
        raise AssertionError(
            f"helm not found at {HELM} (run .ci/helm.sh); the host role comes from the chart"
        )
    result = subprocess.run(
        [
            str(HELM),
            "template",
            RELEASE,
            str(CHART),
            "-n",
            namespace,
            "--set",
            "source.kind=kubernetes",
            "--set",
            "leaderElection.enabled=true",
            "--set-string",
            f"leaderElection.leaseName={lease_name}",
            "--show-only",
            "templates/rbac.yaml",
            "--show-only",
            "templates/serviceaccount.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"helm template of the chart's RBAC failed:\n{result.stderr}")
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    for d in docs:
        d.setdefault("metadata", {})
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            d["metadata"].setdefault("namespace", namespace)
    return docs


def _label(name: str) -> str:
    """A fake's name as a DNS label (join refuses anything else)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "fake"
