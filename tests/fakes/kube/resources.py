"""Resource types the fake API server serves: built-ins plus those registered by CRDs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.kube.errors import ApiError

__all__ = ["BUILTIN_TYPES", "ResourceType", "types_from_crd", "validate_metadata", "validate_name"]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# RBAC role names are path segments: anything but "/" and "%" (and not "." or "..").
_PATH_SEGMENT = re.compile(r"^[^/%]+$")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    # Which rule metadata.name must follow: "subdomain", "label", "dns1035", "segment".
    name_rule: str = "subdomain"
    # Whether DELETE answers with the deleted object (true for services, CRDs, CRs) or a Status.
    returns_deleted_object: bool = False
    # Whether PUT without metadata.resourceVersion is accepted (false for custom resources).
    unconditional_update: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    extra_fields: tuple[str, ...] = field(default=())  # field selectors beyond metadata.name/namespace
    custom: bool = False  # defined by a CRD: list items keep apiVersion/kind, status is per version

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Name used in messages and for matching, like ``leases.coordination.k8s.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_CORE = "v1"


def _t(group: str, version: str, plural: str, kind: str, *, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, singular=kind.lower(), **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t(
        "",
        _CORE,
        "namespaces",
        "Namespace",
        namespaced=False,
        subresources=frozenset({"status"}),
        name_rule="label",
        returns_deleted_object=True,
        short_names=("ns",),
    ),
    _t(
        "",
        _CORE,
        "services",
        "Service",
        namespaced=True,
        subresources=frozenset({"status"}),
        name_rule="dns1035",
        returns_deleted_object=True,
        short_names=("svc",),
    ),
    _t(
        "",
        _CORE,
        "nodes",
        "Node",
        namespaced=False,
        subresources=frozenset({"status"}),
        extra_fields=("spec.unschedulable",),
        short_names=("no",),
    ),
    _t("", _CORE, "secrets", "Secret", namespaced=True, extra_fields=("type",)),
    _t(
        "",
        _CORE,
        "serviceaccounts",
        "ServiceAccount",
        namespaced=True,
        subresources=frozenset({"token"}),
        short_names=("sa",),
    ),
    _t(
        "",
        _CORE,
        "events",
        "Event",
        namespaced=True,
        short_names=("ev",),
        extra_fields=(
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "reason",
            "type",
            "source",
        ),
    ),
    _t("", _CORE, "configmaps", "ConfigMap", namespaced=True, short_names=("cm",)),
    _t(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        namespaced=True,
        subresources=frozenset({"status"}),
        short_names=("ing",),
    ),
    _t("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False),
    _t("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", namespaced=True),
    _t("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True),
    _t(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        namespaced=False,
        name_rule="segment",
    ),
    _t(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
        name_rule="segment",
    ),
    _t("rbac.authorization.k8s.io", "v1", "roles", "Role", namespaced=True, name_rule="segment"),
    _t(
        "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", namespaced=True, name_rule="segment"
    ),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        subresources=frozenset({"status"}),
        returns_deleted_object=True,
        short_names=("crd", "crds"),
    ),
)


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024


def _qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "name part must be 63 characters or less, alphanumerics, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return None


def validate_metadata(rt: ResourceType, meta: dict[str, Any]) -> None:
    """Label and annotation rules the API server enforces on every write (422 Invalid)."""
    name = str(meta.get("name") or "")
    causes: list[tuple[str, str]] = []
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    for where, mapping in (("metadata.labels", labels), ("metadata.annotations", annotations)):
        if not isinstance(mapping, dict):
            causes.append((where, "Invalid value: must be a map of strings"))
            continue
        for key, value in mapping.items():
            problem = _qualified_name_problem(str(key))
            if problem:
                causes.append((where, f"Invalid value: {key!r}: {problem}"))
            if not isinstance(value, str):
                causes.append((f"{where}.{key}", "Invalid value: must be a string"))
            elif where == "metadata.labels" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                causes.append(
                    (
                        f"{where}.{key}",
                        f"Invalid value: {value!r}: a valid label value is 63 "
                        "characters or less, alphanumerics, '-', '_' or '.'",
                    )
                )
    if isinstance(annotations, dict):
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            causes.append(
                ("metadata.annotations", f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")
            )
    if causes:
        raise ApiError.invalid(rt, name, causes)


def validate_name(rt: ResourceType, name: str) -> None:
    """Raise 422 Invalid when ``name`` breaks the rule the real API server applies to ``rt``."""
    if rt.name_rule == "label":
        ok, limit, what = bool(_DNS1123_LABEL.match(name)), 63, "RFC 1123 label"
    elif rt.name_rule == "dns1035":
        ok, limit, what = bool(_DNS1035_LABEL.match(name)), 63, "RFC 1035 label"
    elif rt.name_rule == "segment":
        ok, limit, what = bool(_PATH_SEGMENT.match(name)) and name not in {".", ".."}, 253, "path segment"
    else:
        ok, limit, what = bool(_DNS1123_SUBDOMAIN.match(name)), 253, "RFC 1123 subdomain"
    if ok and len(name) <= limit:
        return
    raise ApiError.invalid(
        rt,
        name,
        [("metadata.name", f"Invalid value: {name!r}: a lowercase {what} of at most {limit} characters")],
    )


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served resource types a CustomResourceDefinition declares; 422 Invalid if it is malformed."""
    name = str(crd.get("metadata", {}).get("name", ""))
    spec = crd.get("spec")
    crd_type = next(t for t in BUILTIN_TYPES if t.plural == "customresourcedefinitions")
    if not isinstance(spec, dict):
        raise ApiError.invalid(crd_type, name, [("spec", "Required value")])
    group = spec.get("group")
    raw_names = spec.get("names")
    names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    plural, kind = names.get("plural"), names.get("kind")
    scope = spec.get("scope")
    versions = spec.get("versions")
    causes: list[tuple[str, str]] = []
    if not isinstance(group, str) or "." not in group:
        causes.append(("spec.group", "Invalid value: should be a domain with at least one dot"))
    if not isinstance(plural, str) or not _DNS1123_LABEL.match(plural):
        causes.append(("spec.names.plural", "Required value: a lowercase RFC 1123 label"))
    if not isinstance(kind, str) or not kind:
        causes.append(("spec.names.kind", "Required value"))
    if scope not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", 'Unsupported value: supported values: "Cluster", "Namespaced"'))
    storage = (
        [v for v in versions if isinstance(v, dict) and v.get("storage")]
        if isinstance(versions, list)
        else []
    )
    if len(storage) != 1:
        causes.append(("spec.versions", "Invalid value: must have exactly one version marked as storage"))
    if not causes and name != f"{plural}.{group}":
        causes.append(("metadata.name", f'Invalid value: {name!r}: must be spec.names.plural+"."+spec.group'))
    if causes:
        raise ApiError.invalid(crd_type, name, causes)
    assert isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str)
    assert isinstance(versions, list)
    out: list[ResourceType] = []
    for v in versions:
        if not v.get("served"):
            continue
        subs = frozenset(k for k in (v.get("subresources") or {}) if k in {"status", "scale"})
        out.append(
            ResourceType(
                group,
                str(v["name"]),
                plural,
                kind,
                scope == "Namespaced",
                subresources=subs,
                returns_deleted_object=True,
                unconditional_update=False,
                singular=str(names.get("singular") or kind.lower()),
                short_names=tuple(names.get("shortNames") or ()),
                custom=True,
            )
        )
    return out
