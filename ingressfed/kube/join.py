"""``join`` and ``unjoin``: give the controller a narrow account in a member cluster.

In the member: namespace ``ingressfed-system`` (if absent), ServiceAccount
``ingressfed-<NAME>``, ClusterRole and ClusterRoleBinding ``ingressfed-<NAME>``
(read Services, Ingresses, EndpointSlices, Nodes; patch Services and
Ingresses and create Events for status write-back), and a token. In the host:
a Secret holding a kubeconfig for that account and a FederatedCluster, or,
without a host, an entry in the local YAML config. Every object created is
labelled ``app.kubernetes.io/managed-by=ingressfed`` and
``ingressfed.io/cluster=<NAME>``; ``unjoin`` deletes exactly those, by name
*and* labels, so it never removes anything it did not create.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import load_kube_config_from_dict

from ingressfed.errors import IngressfedError
from ingressfed.kube.members import GROUP, KIND, PLURAL, VERSION
from ingressfed.kube.objects import DNS_NAMES_KEY, is_dns_label
from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.kube.status import object_path

__all__ = ["JoinError", "JoinPlan", "cluster_role_rules", "connect_dict", "join", "kubeconfig_for", "unjoin"]

log = logging.getLogger(__name__)

MANAGED_BY = "app.kubernetes.io/managed-by"
CLUSTER_LABEL = "ingressfed.io/cluster"
DEFAULT_NAMESPACE = "ingressfed-system"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type name


class JoinError(IngressfedError):
    """join/unjoin could not complete; the message names the object and the fix."""


@dataclass(frozen=True, slots=True)
class JoinPlan:
    name: str
    namespace: str = DEFAULT_NAMESPACE  # in the member
    host_namespace: str = DEFAULT_NAMESPACE  # for the kubeconfig Secret in the host
    region: str = ""
    zone: str = ""
    token_seconds: int | None = 365 * 24 * 3600  # None: a long-lived service-account token Secret

    def __post_init__(self) -> None:
        if not is_dns_label(self.name):
            raise JoinError(f"cluster name {self.name!r} must be a DNS label (a-z, 0-9, '-', at most 63)")
        if self.token_seconds is not None and self.token_seconds < 600:
            raise JoinError("--token-expiration must be at least 600 seconds (or 0 for a long-lived token)")

    @property
    def account(self) -> str:
        return f"ingressfed-{self.name}"

    @property
    def secret_name(self) -> str:
        return f"ingressfed-{self.name}-kubeconfig"

    def labels(self) -> dict[str, str]:
        return {MANAGED_BY: "ingressfed", CLUSTER_LABEL: self.name}


def cluster_role_rules() -> list[dict[str, list[str]]]:
    """Read what the controller watches; write only what status write-back needs."""
    read = ["get", "list", "watch"]
    return [
        {"apiGroups": [""], "resources": ["services", "nodes"], "verbs": read},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        # Gateway API and MCS inputs (watched only when their CRDs are served).
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": ["gatewayclasses", "gateways", "httproutes", "referencegrants"],
            "verbs": read,
        },
        {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports"], "verbs": read},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["patch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["patch"]},
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": ["gatewayclasses/status", "gateways/status", "httproutes/status"],
            "verbs": ["patch"],
        },
        {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        # Namespace labels, for Gateway listeners that select the namespaces of their routes.
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": read},
        # Ingress spec.tls Secrets, fetched by name only: no list or watch (docs/tls.md).
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    ]


def kubeconfig_for(
    name: str, *, server: str, token: str, ca_data: str | None, insecure: bool
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    elif insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"ingressfed-{name}", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"ingressfed-{name}"}}],
        "current-context": name,
    }


def _meta(name: str, labels: Mapping[str, str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace:
        meta["namespace"] = namespace
    return meta


async def _get(api: ApiClient, path: str) -> dict[str, Any] | None:
    try:
        return await request_json(api, "GET", path)
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise


async def _ensure(
    api: ApiClient, collection: str, body: dict[str, Any], *, update: bool = True
) -> dict[str, Any]:
    """Create, or bring an existing object we own up to date (idempotent join)."""
    name = body["metadata"]["name"]
    path = f"{collection}/{name}"
    current = await _get(api, path)
    if current is None:
        return await request_json(api, "POST", collection, body=body)
    labels = (current.get("metadata") or {}).get("labels") or {}
    wanted = body["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        raise JoinError(
            f"{path} exists but was not created by ingressfed join (labels differ); remove or rename it"
        )
    if not update:
        return current
    patch = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    return await request_json(api, "PATCH", path, body=patch, content_type="application/merge-patch+json")


async def _delete_owned(api: ApiClient, path: str, labels: Mapping[str, str]) -> bool:
    current = await _get(api, path)
    if current is None:
        return False
    have = (current.get("metadata") or {}).get("labels") or {}
    if any(have.get(k) != v for k, v in labels.items()):
        log.warning("not deleting %s: not created by ingressfed join", path)
        return False
    try:
        await request_json(api, "DELETE", path)
    except KubeApiError as exc:
        if exc.status != 404:
            raise
    return True


async def _token(api: ApiClient, plan: JoinPlan) -> str:
    ns, sa = plan.namespace, plan.account
    if plan.token_seconds is not None:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": plan.token_seconds},
        }
        answer = await request_json(
            api, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body=body
        )
        token = (answer.get("status") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise JoinError("the member's TokenRequest answer has no status.token")
        return token
    # Long-lived: a service-account token Secret the member's token controller fills in.
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SA_TOKEN_TYPE,
        "metadata": {
            **_meta(f"{sa}-token", plan.labels(), ns),
            "annotations": {"kubernetes.io/service-account.name": sa},
        },
    }
    await _ensure(api, f"/api/v1/namespaces/{ns}/secrets", secret, update=False)
    for _ in range(50):
        current = await _get(api, f"/api/v1/namespaces/{ns}/secrets/{sa}-token")
        data = (current or {}).get("data") or {}
        if isinstance(data.get("token"), str):
            return base64.b64decode(data["token"]).decode()
        await asyncio.sleep(0.2)
    raise JoinError(f"Secret {ns}/{sa}-token was not filled with a token (is the token controller running?)")


def _ca_data(api: ApiClient) -> tuple[str | None, bool]:
    cfg = api.configuration
    ca_file = getattr(cfg, "ssl_ca_cert", None)
    if ca_file:
        return base64.b64encode(Path(ca_file).read_bytes()).decode(), False
    return None, not getattr(cfg, "verify_ssl", True)


async def join(
    plan: JoinPlan,
    member: ApiClient,
    *,
    host: ApiClient | None = None,
    config_file: Path | None = None,
) -> dict[str, Any]:
    """Join ``member``; returns the kubeconfig written for the controller's account."""
    if host is None and config_file is None:
        raise JoinError(
            "join needs a host cluster (--host-cluster-context) or a local config (--config FILE)"
        )
    labels = plan.labels()
    ns, sa = plan.namespace, plan.account
    if await _get(member, f"/api/v1/namespaces/{ns}") is None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, labels)}
        await request_json(member, "POST", "/api/v1/namespaces", body=body)
    sa_body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(sa, labels, ns)}
    await _ensure(member, f"/api/v1/namespaces/{ns}/serviceaccounts", sa_body, update=False)
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(sa, labels),
        "rules": cluster_role_rules(),
    }
    await _ensure(member, f"{rbac}/clusterroles", role)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(sa, labels),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }
    await _ensure(member, f"{rbac}/clusterrolebindings", binding, update=False)
    token = await _token(member, plan)
    ca_data, insecure = _ca_data(member)
    kubeconfig = kubeconfig_for(
        plan.name, server=str(member.configuration.host), token=token, ca_data=ca_data, insecure=insecure
    )
    await _verify(kubeconfig, plan.name)
    if host is not None:
        await _register_in_host(host, plan, kubeconfig)
    if config_file is not None:
        _register_in_file(config_file, plan, kubeconfig)
    return kubeconfig


async def _verify(kubeconfig: dict[str, Any], name: str) -> None:
    """The new account can read what the controller watches."""
    api = await connect_dict(kubeconfig)
    try:
        for path in ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices"):
            await request_json(api, "GET", path, query={"limit": 1})
    except KubeApiError as exc:
        raise JoinError(f"member {name} does not answer with the new account's token: {exc}") from exc
    finally:
        await api.close()


async def connect_dict(kubeconfig: dict[str, Any]) -> ApiClient:
    cfg = Configuration()
    await load_kube_config_from_dict(kubeconfig, client_configuration=cfg)
    return ApiClient(configuration=cfg)


async def _register_in_host(host: ApiClient, plan: JoinPlan, kubeconfig: dict[str, Any]) -> None:
    labels = plan.labels()
    hns = plan.host_namespace
    if await _get(host, f"/api/v1/namespaces/{hns}") is None:
        raise JoinError(
            f"host namespace {hns} does not exist; install the Helm chart first or pass --host-namespace"
        )
    encoded = base64.b64encode(yaml.safe_dump(kubeconfig).encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(plan.secret_name, labels, hns),
        "data": {"kubeconfig": encoded},
    }
    await _ensure(host, f"/api/v1/namespaces/{hns}/secrets", secret)
    spec: dict[str, Any] = {
        "kubeconfigSecretRef": {"namespace": hns, "name": plan.secret_name, "key": "kubeconfig"}
    }
    if plan.region:
        spec["region"] = plan.region
    if plan.zone:
        spec["zone"] = plan.zone
    fc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": _meta(plan.name, labels),
        "spec": spec,
    }
    await _ensure(host, f"/apis/{GROUP}/{VERSION}/{PLURAL}", fc)


def _load_config(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text()) if path.exists() else {}
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise JoinError(f"{path} is not a YAML mapping")
    return doc


def _register_in_file(path: Path, plan: JoinPlan, kubeconfig: dict[str, Any]) -> None:
    """Write the account's kubeconfig beside the config (mode 0600) and list the member in ``clusters``."""
    kc_path = path.parent / f"{plan.name}.kubeconfig"
    kc_path.touch(mode=0o600, exist_ok=True)
    kc_path.write_text(yaml.safe_dump(kubeconfig))
    doc = _load_config(path)
    entries = [
        c for c in doc.get("clusters") or [] if not (isinstance(c, dict) and c.get("name") == plan.name)
    ]
    entry: dict[str, Any] = {"name": plan.name, "kubeconfig": {"path": str(kc_path), "context": plan.name}}
    if plan.region:
        entry["region"] = plan.region
    if plan.zone:
        entry["zone"] = plan.zone
    doc["clusters"] = [*entries, entry]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _unregister_in_file(path: Path, name: str) -> None:
    if not path.exists():
        return
    doc = _load_config(path)
    doc["clusters"] = [
        c for c in doc.get("clusters") or [] if not (isinstance(c, dict) and c.get("name") == name)
    ]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (path.parent / f"{name}.kubeconfig").unlink(missing_ok=True)


async def unjoin(
    plan: JoinPlan,
    member: ApiClient | None,
    *,
    host: ApiClient | None = None,
    config_file: Path | None = None,
) -> list[str]:
    """Remove what :func:`join` created (checked by labels); returns the paths deleted."""
    labels = plan.labels()
    ns, sa = plan.namespace, plan.account
    deleted: list[str] = []

    async def drop(api: ApiClient, path: str) -> None:
        if await _delete_owned(api, path, labels):
            deleted.append(path)

    if host is not None:
        await drop(host, f"/apis/{GROUP}/{VERSION}/{PLURAL}/{plan.name}")
        await drop(host, f"/api/v1/namespaces/{plan.host_namespace}/secrets/{plan.secret_name}")
    if config_file is not None:
        _unregister_in_file(config_file, plan.name)
    if member is not None:
        deleted.extend(await _drop_status_annotations(member))
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        await drop(member, f"{rbac}/clusterrolebindings/{sa}")
        await drop(member, f"{rbac}/clusterroles/{sa}")
        await drop(member, f"/api/v1/namespaces/{ns}/secrets/{sa}-token")
        await drop(member, f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}")
        # The namespace goes only if this join created it (labels) and nothing else lives there.
        nspath = f"/api/v1/namespaces/{ns}"
        current = await _get(member, nspath)
        have = ((current or {}).get("metadata") or {}).get("labels") or {}
        if current is not None and all(have.get(k) == v for k, v in labels.items()):
            if await _namespace_empty(member, ns):
                await drop(member, nspath)
            else:
                log.warning("keeping namespace %s: it still holds objects ingressfed did not create", ns)
    return deleted


async def _drop_status_annotations(api: ApiClient) -> list[str]:
    """Remove the controller's ``dns-names`` annotation from every Service and Ingress in the member.

    It describes what this federation published; after unjoin it would be a stale claim. Other
    annotations (the opt-in among them: the user's) stay.
    """
    cleaned: list[str] = []
    for kind, collection in (
        ("Service", "/api/v1/services"),
        ("Ingress", "/apis/networking.k8s.io/v1/ingresses"),
    ):
        token: str | None = None
        while True:
            query: dict[str, str | int] = {"limit": 500, **({"continue": token} if token else {})}
            page = await request_json(api, "GET", collection, query=query)
            for item in page.get("items") or []:
                meta = item.get("metadata") or {}
                if DNS_NAMES_KEY not in (meta.get("annotations") or {}):
                    continue
                path = object_path(kind, meta["namespace"], meta["name"])
                body = {"metadata": {"annotations": {DNS_NAMES_KEY: None}}}
                try:
                    await request_json(
                        api, "PATCH", path, body=body, content_type="application/merge-patch+json"
                    )
                except KubeApiError as exc:
                    if exc.status != 404:  # deleted meanwhile: nothing to clean
                        raise
                    continue
                cleaned.append(f"{path} (annotation {DNS_NAMES_KEY})")
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
    return cleaned


async def _namespace_empty(api: ApiClient, ns: str) -> bool:
    for path in ("serviceaccounts", "secrets", "configmaps", "services"):
        listing = await request_json(api, "GET", f"/api/v1/namespaces/{ns}/{path}")
        for item in listing.get("items") or []:
            meta = item.get("metadata") or {}
            name = meta.get("name", "")
            # Objects the API server itself puts into every namespace.
            if (path, name) in {("serviceaccounts", "default"), ("configmaps", "kube-root-ca.crt")}:
                continue
            return False
    return True
