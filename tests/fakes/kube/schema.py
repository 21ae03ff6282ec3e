"""Object shape checks: built-ins against the Kubernetes OpenAPI schemas, custom resources against their CRD.

Type errors answer 400 (the real server fails to decode them), other schema violations 422 Invalid.
Unknown fields pass, as with the server's default field validation (it drops them with a warning).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from referencing import Registry, Resource

from tests.fakes.kube.errors import ApiError
from tests.fakes.kube.openapi import KUBERNETES_VERSION, builtin_schema, crd_schema, definitions_document
from tests.fakes.kube.resources import ResourceType

__all__ = ["check_schema"]


def _path(error: jsonschema.ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
    return "".join(parts).lstrip(".") or "<root>"


def _raise(rt: ResourceType, obj: Mapping[str, Any], error: jsonschema.ValidationError) -> None:
    name = str((obj.get("metadata") or {}).get("name") or "")
    field = _path(error)
    if error.validator == "type":
        raise ApiError.bad_request(
            f"{rt.kind} in version {rt.version!r} cannot be handled as a {rt.kind}: "
            f"json: cannot unmarshal {field}: {error.message}"
        )
    raise ApiError.invalid(rt, name, [(field, f"Invalid value: {error.message}")])


def check_schema(
    rt: ResourceType,
    obj: Mapping[str, Any],
    crd: Mapping[str, Any] | None = None,
    *,
    kubernetes: str = KUBERNETES_VERSION,
) -> None:
    """Raise ApiError when ``obj`` does not fit the schema of ``rt`` (``crd`` for custom resources)."""
    if rt.custom:
        schema = crd_schema(crd, rt.version) if crd else None
        if schema is None:
            return
        try:
            jsonschema.Draft4Validator(_drop_extensions(schema)).validate(dict(obj))
        except jsonschema.ValidationError as e:
            _raise(rt, obj, e)
        return
    validator = _builtin_validator(rt.api_version, rt.kind, kubernetes)
    if validator is None:
        return
    try:
        validator.validate(dict(obj))
    except jsonschema.ValidationError as e:
        _raise(rt, obj, e)


@functools.cache
def _builtin_validator(api_version: str, kind: str, kubernetes: str) -> Any:
    """A validator for one built-in kind in one Kubernetes version, built once."""
    schema = builtin_schema(api_version, kind, kubernetes)
    if schema is None:
        return None
    defs = definitions_document(kubernetes)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _drop_extensions(schema: Any) -> Any:
    """OpenAPI's ``x-kubernetes-*`` and ``nullable`` mean nothing to JSON Schema; a null is allowed."""
    if isinstance(schema, list):
        return [_drop_extensions(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _drop_extensions(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out
