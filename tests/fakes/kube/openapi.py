"""Schema-driven behaviour of the API server: dropping unknown fields and strategic merge patches.

Built-in kinds use the Kubernetes OpenAPI schemas shipped with ``kubernetes-validate`` for the
server's version (1.30 unless the fake is started as another; ``versions.OLDEST``/``NEWEST`` are the
ends of the supported range); custom resources use their CRD's ``openAPIV3Schema``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from kubernetes_validate import utils as kv_utils  # type: ignore[import-untyped]

from tests.fakes.kube.errors import ApiError

__all__ = [
    "KUBERNETES_VERSION",
    "builtin_schema",
    "crd_schema",
    "definitions",
    "definitions_document",
    "prune",
    "strategic_merge",
]

KUBERNETES_VERSION = "1.30"
_META_PROPERTIES = {"apiVersion", "kind", "metadata"}


def _folder(kubernetes: str) -> str:
    versions = [v for v in kv_utils.all_versions() if _tuple(kv_utils.major_minor(v)) <= _tuple(kubernetes)]
    return f"kubernetes-json-schema/v{versions[-1]}-local"


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@functools.cache
def definitions_document(kubernetes: str = KUBERNETES_VERSION) -> dict[str, Any]:
    """The shared ``_definitions.json`` every built-in schema refers into (large: load once)."""
    doc: dict[str, Any] = kv_utils.schema_contents(f"{_folder(kubernetes)}/_definitions.json", kubernetes)
    return doc


def definitions(kubernetes: str = KUBERNETES_VERSION) -> dict[str, Any]:
    defs: dict[str, Any] = definitions_document(kubernetes)["$defs"]
    return defs


@functools.cache
def builtin_schema(
    api_version: str, kind: str, kubernetes: str = KUBERNETES_VERSION
) -> dict[str, Any] | None:
    """The OpenAPI schema of a built-in kind in that Kubernetes version (``None`` if none)."""
    group, _, version = api_version.rpartition("/")
    short = f"{group.split('.')[0]}-{version}" if group else version
    try:
        schema: dict[str, Any] = kv_utils.schema_contents(
            f"{_folder(kubernetes)}/{kind.lower()}-{short}.json", kubernetes
        )
    except FileNotFoundError:
        return None
    return schema


def crd_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any] | None:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(v, dict) and v.get("name") == version:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else None
    return None


def _resolve(node: Any, defs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Follow ``$ref`` into the shared definitions; anything unusable reads as an empty schema."""
    seen = 0
    table = defs if defs is not None else definitions()
    while isinstance(node, dict) and "$ref" in node and seen < 32:
        node = table.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        seen += 1
    return node if isinstance(node, dict) else {}


def _keeps_everything(node: Mapping[str, Any]) -> bool:
    return bool(node.get("x-kubernetes-preserve-unknown-fields")) or not (
        "properties" in node or "additionalProperties" in node or "items" in node
    )


def prune(
    obj: Any, schema: Mapping[str, Any], path: str = "", defs: Mapping[str, Any] | None = None
) -> tuple[Any, list[str]]:
    """``obj`` without the fields ``schema`` does not know, and the dotted paths that were dropped."""
    node = _resolve(schema, defs)
    if _keeps_everything(node):
        return obj, []
    dropped: list[str] = []
    if isinstance(obj, dict) and ("properties" in node or "additionalProperties" in node):
        props: Mapping[str, Any] = node.get("properties") or {}
        extra = node.get("additionalProperties")
        out: dict[str, Any] = {}
        for key, value in obj.items():
            where = f"{path}.{key}" if path else str(key)
            if key in props:
                sub = props[key]
            elif isinstance(extra, dict):
                sub = extra
            elif extra is True or (not path and key in _META_PROPERTIES):
                out[key] = value
                continue
            else:
                dropped.append(where)
                continue
            out[key], lost = prune(value, sub, where, defs)
            dropped += lost
        return out, dropped
    if isinstance(obj, list) and isinstance(node.get("items"), dict):
        items = []
        for i, value in enumerate(obj):
            pruned, lost = prune(value, node["items"], f"{path}[{i}]", defs)
            items.append(pruned)
            dropped += lost
        return items, dropped
    return obj, dropped


def strategic_merge(
    original: Any, patch: Any, schema: Mapping[str, Any] | None, defs: Mapping[str, Any] | None = None
) -> Any:
    """A strategic merge patch: like a JSON merge patch, except lists the schema marks
    ``x-kubernetes-patch-strategy: merge`` are merged item by item (by their merge key, or as a set of
    primitives), and ``$patch: replace|delete`` directives are honoured."""
    node = _resolve(schema, defs) if schema is not None else {}
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise ApiError.bad_request(f"strategic merge patch: unknown $patch directive {directive!r}")
    out = dict(original) if isinstance(original, dict) else {}
    props: Mapping[str, Any] = node.get("properties") or {}
    extra = node.get("additionalProperties")
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $retainKeys, $setElementOrder: ordering/retention hints we do not model
        sub = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, sub, defs)
        else:
            merged = strategic_merge(out.get(key), value, sub, defs)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
    return out


def _merge_list(
    original: Any, patch: list[Any], schema: Mapping[str, Any] | None, defs: Mapping[str, Any] | None
) -> list[Any]:
    node = _resolve(schema, defs) if schema is not None else {}
    if node.get("x-kubernetes-patch-strategy", "").split(",")[0] != "merge" or not isinstance(original, list):
        return [
            strategic_merge(None, v, node.get("items"), defs) if isinstance(v, dict) else v for v in patch
        ]
    key = node.get("x-kubernetes-patch-merge-key")
    if key is None:  # a set of primitives
        return list(original) + [v for v in patch if v not in original]
    out = [copy.deepcopy(v) for v in original]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiError.bad_request(
                f"strategic merge patch: list item without merge key {key!r}: {item!r}"
            )
        at = next((i for i, v in enumerate(out) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if at is not None:
                del out[at]
        elif at is None:
            out.append(strategic_merge(None, item, node.get("items"), defs))
        else:
            out[at] = strategic_merge(out[at], item, node.get("items"), defs)
    return out
