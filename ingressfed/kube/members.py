"""Member clusters as declared (config file or FederatedCluster resources); pure values.

A member is identified by its name (a DNS label: it is part of published
zone-level names); everything else may change live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingressfed.config import ClusterSection, HostKubeconfigSection
from ingressfed.kube.objects import Mapped, ObjectRef, Problem, is_dns_label, is_dns_subdomain
from ingressfed.model import Cluster, Location

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "KubeconfigSource",
    "MemberSpec",
    "SecretRef",
    "cluster_of",
    "host_source",
    "member_from_config",
    "member_from_resource",
]

GROUP = "ingressfed.io"
VERSION = "v1alpha1"
PLURAL = "federatedclusters"
KIND = "FederatedCluster"
DEFAULT_SECRET_KEY = "kubeconfig"  # noqa: S105 - a data key name, not a secret


@dataclass(frozen=True, slots=True)
class SecretRef:
    namespace: str
    name: str
    key: str = DEFAULT_SECRET_KEY


@dataclass(frozen=True, slots=True)
class KubeconfigSource:
    """How to reach a member's API server: a kubeconfig file/context, a Secret in the host, or in-cluster."""

    path: str | None = None
    context: str | None = None
    secret: SecretRef | None = None
    in_cluster: bool = False


@dataclass(frozen=True, slots=True)
class MemberSpec:
    name: str
    kubeconfig: KubeconfigSource
    region: str = ""  # "" -> observed from node labels
    zone: str = ""
    location: Location | None = None
    weight: int = 100
    disabled: bool = False


def cluster_of(spec: MemberSpec, *, region: str = "", zone: str = "") -> Cluster:
    """The core's view; declared region/zone win over observed ones."""
    return Cluster(
        name=spec.name,
        region=spec.region or region,
        zone=spec.zone or zone,
        location=spec.location,
        weight=spec.weight,
    )


def _str(spec: Mapping[str, Any], key: str, problems: list[str], *, required: bool = False) -> str:
    value = spec.get(key)
    if value is None:
        if required:
            problems.append(f"spec.{key} is required")
        return ""
    if not isinstance(value, str) or len(value) > 253:
        problems.append(f"spec.{key} must be a string of at most 253 characters")
        return ""
    return value


def member_from_resource(obj: object) -> Mapped[MemberSpec]:
    """A FederatedCluster (ingressfed.io/v1alpha1) as a :class:`MemberSpec`.

    The API server validates against the CRD schema, but a hand-edited or
    older object must still not crash the registry.
    """
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    ref = ObjectRef(KIND, "", name if isinstance(name, str) and is_dns_subdomain(name) else "")
    if not is_dns_label(name):
        return Mapped(None, (Problem(ref, f"metadata.name {name!r:.100} must be a DNS label (a-z, 0-9, -)"),))
    assert isinstance(name, str) and isinstance(obj, Mapping)
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return Mapped(None, (Problem(ref, "spec is missing or not an object"),))
    problems: list[str] = []
    secret = spec.get("kubeconfigSecretRef")
    source: KubeconfigSource | None = None
    if isinstance(secret, Mapping):
        ns, sname = secret.get("namespace"), secret.get("name")
        key = secret.get("key", DEFAULT_SECRET_KEY)
        if not is_dns_label(ns):
            problems.append("spec.kubeconfigSecretRef.namespace must be a DNS label")
        if not is_dns_subdomain(sname):
            problems.append("spec.kubeconfigSecretRef.name must be a DNS subdomain")
        if not isinstance(key, str) or not key or len(key) > 253:
            problems.append("spec.kubeconfigSecretRef.key must be a non-empty string")
        if not problems:
            assert isinstance(ns, str) and isinstance(sname, str) and isinstance(key, str)
            source = KubeconfigSource(secret=SecretRef(ns, sname, key))
    else:
        problems.append("spec.kubeconfigSecretRef {namespace, name, key} is required")
    region = _str(spec, "region", problems)
    zone = _str(spec, "zone", problems)
    weight = spec.get("weight", 100)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
        problems.append("spec.weight must be an integer in 1..1000")
        weight = 100
    disabled = spec.get("disabled", False)
    if not isinstance(disabled, bool):
        problems.append("spec.disabled must be true or false")
        disabled = False
    location: Location | None = None
    raw_loc = spec.get("location")
    if raw_loc is not None:
        lat = raw_loc.get("lat") if isinstance(raw_loc, Mapping) else None
        lon = raw_loc.get("lon") if isinstance(raw_loc, Mapping) else None
        ok = all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (lat, lon)
        )
        if ok and isinstance(lat, int | float) and isinstance(lon, int | float):
            location = Location(float(lat), float(lon)) if -90 <= lat <= 90 and -180 <= lon <= 180 else None
        if location is None:
            problems.append("spec.location needs lat in -90..90 and lon in -180..180")
    if source is None:
        return Mapped(None, tuple(Problem(ref, p) for p in problems))
    member = MemberSpec(
        name=name,
        kubeconfig=source,
        region=region,
        zone=zone,
        location=location,
        weight=weight,
        disabled=disabled,
    )
    return Mapped(member, tuple(Problem(ref, p) for p in problems))


def member_from_config(section: ClusterSection) -> MemberSpec:
    """A member listed in the YAML config (``clusters[]``); no kubeconfig means the default one."""
    kc = section.kubeconfig
    if kc is None:
        source = KubeconfigSource(context=section.name)
    elif kc.secret_ref is not None:
        source = KubeconfigSource(
            secret=SecretRef(kc.secret_ref.namespace, kc.secret_ref.name), context=kc.context
        )
    else:
        source = KubeconfigSource(path=kc.path, context=kc.context)
    loc = section.location
    return MemberSpec(
        name=section.name,
        kubeconfig=source,
        region=section.region,
        zone=section.zone,
        location=Location(loc.lat, loc.lon) if loc is not None else None,
        weight=section.weight,
        disabled=section.disabled,
    )


def host_source(section: HostKubeconfigSection) -> KubeconfigSource:
    """How to reach the host cluster (the FederatedCluster registry, kubeconfig Secrets, the Lease)."""
    if section.in_cluster:
        return KubeconfigSource(in_cluster=True)
    return KubeconfigSource(path=section.path, context=section.context)
