"""RBAC authorization as the API server evaluates it: bindings grant the union of their roles' rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.store import Store, TokenInfo

__all__ = ["allowed", "groups_of"]


def groups_of(info: TokenInfo) -> set[str]:
    groups = {"system:authenticated"}
    if info.service_account and info.namespace:
        groups |= {"system:serviceaccounts", f"system:serviceaccounts:{info.namespace}"}
    return groups


def _subject_matches(subject: Mapping[str, Any], info: TokenInfo, groups: set[str], binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return info.service_account == name and info.namespace == (subject.get("namespace") or binding_ns)
    if kind == "User":
        return info.user == name
    if kind == "Group":
        return name in groups
    return False


def _rule_allows(
    rule: Mapping[str, Any], verb: str, rt: ResourceType, sub: str | None, name: str | None
) -> bool:
    def has(field: str, *values: str) -> bool:
        listed = rule.get(field) or []
        return "*" in listed or any(v in listed for v in values)

    resource = f"{rt.plural}/{sub}" if sub else rt.plural
    if not (
        has("apiGroups", rt.group)
        and has("resources", resource, f"{rt.plural}/*" if sub else "")
        and has("verbs", verb)
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def _rules(store: Store, ref: Mapping[str, Any], namespace: str | None) -> Iterable[Mapping[str, Any]]:
    kind, name = ref.get("kind"), ref.get("name")
    if kind == "ClusterRole":
        role = next(
            (o for o in store.all_objects(store.find_type("clusterroles")) if o["metadata"]["name"] == name),
            None,
        )
    elif kind == "Role" and namespace:
        role = next(
            (
                o
                for o in store.all_objects(store.find_type("roles"))
                if o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
            ),
            None,
        )
    else:
        role = None
    return (role or {}).get("rules") or []


def allowed(
    store: Store,
    info: TokenInfo,
    *,
    verb: str,
    rt: ResourceType,
    sub: str | None,
    namespace: str | None,
    name: str | None,
) -> bool:
    """Whether ``info`` may ``verb`` the resource; list/watch of all namespaces needs a cluster grant."""
    groups = groups_of(info)

    def grants(binding: Mapping[str, Any], ns: str | None) -> bool:
        subjects = binding.get("subjects") or []
        if not any(_subject_matches(s, info, groups, ns or "") for s in subjects):
            return False
        rules = _rules(store, binding.get("roleRef") or {}, ns)
        return any(_rule_allows(r, verb, rt, sub, name) for r in rules)

    if any(grants(b, None) for b in store.all_objects(store.find_type("clusterrolebindings"))):
        return True
    if not (namespace and rt.namespaced):
        return False
    bindings = store.all_objects(store.find_type("rolebindings"))
    return any(grants(b, namespace) for b in bindings if b["metadata"].get("namespace") == namespace)
