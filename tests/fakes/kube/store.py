"""The fake API server's storage: objects, a global resourceVersion, event history, the API rules.

Stored objects are never mutated in place (every write stores a fresh dict), so a list snapshot is a
list of references and history events can share objects safely.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import copy
import itertools
import json
import secrets
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.kube.errors import ApiError
from tests.fakes.kube.openapi import (
    KUBERNETES_VERSION,
    builtin_schema,
    crd_schema,
    definitions,
    prune,
    strategic_merge,
)
from tests.fakes.kube.resources import (
    BUILTIN_TYPES,
    ResourceType,
    types_from_crd,
    validate_metadata,
    validate_name,
)
from tests.fakes.kube.schema import check_schema
from tests.fakes.kube.selectors import Selector

__all__ = ["Store", "StoredEvent", "TokenInfo"]

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Types whose metadata.generation the real server maintains (spec changes bump it).
_GENERATION_TYPES = {"ingresses", "ingressclasses", "endpointslices", "customresourcedefinitions"}


@dataclass(frozen=True)
class StoredEvent:
    rv: int
    type_key: str  # ResourceType.key
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj
    prev: Obj | None  # the object before this event (None for ADDED)


@dataclass(frozen=True)
class TokenInfo:
    user: str
    namespace: str | None = None
    service_account: str | None = None
    expires: datetime | None = None


def _timestamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (null deletes a key; lists replace wholesale)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError.bad_request(f"json patch: invalid pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test, move, copy."""
    if not isinstance(ops, list):
        raise ApiError.bad_request("json patch: the body must be a list of operations")
    doc = copy.deepcopy(doc)

    def walk(parts: list[str]) -> tuple[Any, str]:
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    def get(path: str) -> Any:
        cur = doc
        for p in _pointer(path):
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def add(path: str, value: Any) -> None:
        parent, last = walk(_pointer(path))
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            parent[last] = value

    def remove(path: str) -> Any:
        parent, last = walk(_pointer(path))
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)

    for op in ops:
        try:
            kind, path = op["op"], op["path"]
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op["value"]))
            elif kind == "test":
                if get(path) != op["value"]:
                    raise ApiError(422, f"json patch: test failed at {path}")
            elif kind == "move":
                add(path, remove(op["from"]))
            elif kind == "copy":
                add(path, copy.deepcopy(get(op["from"])))
            else:
                raise ApiError.bad_request(f"json patch: unknown op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, f"json patch: cannot apply {op!r}: {e!r}") from e
    return doc


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


class Store:
    """All objects of one fake cluster. Synchronous; the HTTP layer and tests call it from one loop."""

    def __init__(self, *, history_size: int = 100, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._objects: dict[str, dict[Key, Obj]] = {}
        # Per resource type, like the API server's watch cache: a busy type does not push another
        # type's events out, and resuming a watch older than its type's window gets 410.
        self._history: dict[str, deque[StoredEvent]] = {}
        self._compacted: dict[str, int] = {}
        self._history_size = history_size
        self._listeners: list[Callable[[StoredEvent], None]] = []
        self._snapshots: OrderedDict[tuple[str, int], list[tuple[Key, Obj]]] = OrderedDict()
        self._ips = itertools.count(10)
        self._node_ports = itertools.count(30000)
        self.rv = 1
        self._compacted_all = 1  # compact(): every type's events up to here are gone
        self._epoch = 0  # bumped by compact(): continue tokens from before are expired
        self.tokens: dict[str, TokenInfo] = {}
        self.ca_pem = b""  # the server's CA, copied into service-account token Secrets
        self.schema_validation = True  # API writes must fit the OpenAPI schema / the CRD's schema
        self.kubernetes_version = KUBERNETES_VERSION  # whose built-in schemas apply ("1.27", ...)
        for t in BUILTIN_TYPES:
            self._register(t)
        for ns in INITIAL_NAMESPACES:
            self.create(self.type_for("", "v1", "namespaces"), None, {"metadata": {"name": ns}})

    # ---------------------------------------------------------------- types
    def _register(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self._objects.setdefault(rt.key, {})

    def type_for(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self._types.get((group, version, plural))
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
        return rt

    def find_type(self, name: str) -> ResourceType:
        """By plural, ``plural.group``, kind or short name (first served version)."""
        for rt in self._types.values():
            if name in (rt.plural, rt.key, rt.kind, rt.singular, *rt.short_names):
                return rt
        raise KeyError(f"unknown resource type {name!r}")

    def type_of(self, obj: Mapping[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group, _, version = str(api_version).rpartition("/")
        for rt in self._types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise KeyError(f"no resource type for apiVersion={api_version!r} kind={kind!r}")

    def types(self) -> list[ResourceType]:
        return list(self._types.values())

    def serves(self, group: str, version: str, plural: str) -> bool:
        return (group, version, plural) in self._types

    def namespaces(self) -> set[str]:
        return {name for _, name in self._bucket(self.type_for("", "v1", "namespaces"))}

    # ---------------------------------------------------------------- events
    def listen(self, fn: Callable[[StoredEvent], None]) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)

    def _emit(self, rt: ResourceType, kind: str, obj: Obj, prev: Obj | None) -> None:
        ev = StoredEvent(self.rv, rt.key, kind, obj, prev)
        history = self._history.setdefault(rt.key, deque())
        history.append(ev)
        while len(history) > self._history_size:
            self._compacted[rt.key] = history.popleft().rv
        for fn in list(self._listeners):
            fn(ev)

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def compact(self) -> None:
        """Forget all history: watches and continue tokens from before now get 410."""
        self._history.clear()
        self._compacted.clear()
        self._compacted_all = self.rv
        self._snapshots.clear()
        self._epoch += 1

    def compacted_rv(self, rt: ResourceType) -> int:
        """Events of ``rt`` with resourceVersion <= this are gone from history."""
        return max(self._compacted_all, self._compacted.get(rt.key, 0))

    def events_since(self, rt: ResourceType, rv: int) -> list[StoredEvent]:
        compacted = self.compacted_rv(rt)
        if rv < compacted:
            raise ApiError.expired(f"too old resource version: {rv} ({compacted + 1})")
        return [e for e in self._history.get(rt.key, ()) if e.rv > rv]

    # ---------------------------------------------------------------- reads
    def _bucket(self, rt: ResourceType) -> dict[Key, Obj]:
        return self._objects[rt.key]

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> Key:
        return ((namespace or "") if rt.namespaced else "", name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._bucket(rt).get(self._key(rt, namespace, name))
        if obj is None:
            raise ApiError.not_found(rt, name)
        return self.present(rt, obj)

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as served under ``rt``'s apiVersion (a CR stored once, served per version)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    def state_at(self, rt: ResourceType, rv: int) -> list[tuple[Key, Obj]]:
        """Sorted (key, object) pairs as they were at ``rv``; 410 once history before it is compacted."""
        cached = self._snapshots.get((rt.key, rv))
        if cached is not None:
            self._snapshots.move_to_end((rt.key, rv))
            return cached
        if rv < self.compacted_rv(rt) and rv != self.rv:
            raise ApiError.expired(
                "The provided continue parameter is too old to display a consistent list result. You can "
                "start a new list without the continue parameter, or use the continue token in this response "
                "to retrieve the remainder of the results. Continuing with the provided token results in an "
                "inconsistent list - objects that were created, modified, or deleted between the time the "
                "first chunk was returned and now may show up in the list."
            )
        state = dict(self._bucket(rt))
        for ev in reversed(self._history.get(rt.key, ())):
            if ev.rv <= rv:
                break
            key = (_meta(ev.obj).get("namespace", "") or "", _meta(ev.obj).get("name", ""))
            if ev.prev is None:
                state.pop(key, None)
            else:
                state[key] = ev.prev
        snap = sorted(state.items())
        self._snapshots[(rt.key, rv)] = snap
        while len(self._snapshots) > 32:
            self._snapshots.popitem(last=False)
        return snap

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        selector: Selector,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Obj:
        if resource_version == "0" and not continue_token:
            # Served from the watch cache, which ignores limit (clients must cope with one big page).
            limit = 0
        if continue_token:
            rv, start = self._decode_continue(continue_token, rt)
        else:
            start = None
            rv = self.rv
            if resource_version not in (None, "", "0"):
                try:
                    wanted = int(str(resource_version))
                except ValueError:
                    raise ApiError.bad_request(f"invalid resource version {resource_version!r}") from None
                if wanted > self.rv:
                    raise ApiError(
                        504,
                        f"Too large resource version: {wanted}, current: {self.rv}",
                        reason="Timeout",
                        details={"causes": [{"reason": "ResourceVersionTooLarge"}]},
                    )
                if resource_version_match == "Exact":
                    compacted = self.compacted_rv(rt)
                    if wanted < compacted:
                        raise ApiError.expired(f"too old resource version: {wanted} ({compacted + 1})")
                    rv = wanted
        items: list[Obj] = []
        token: str | None = None
        remaining = 0
        last_key: Key = ("", "")
        for key, obj in self.state_at(rt, rv):
            if start is not None and key <= start:
                continue
            if namespace and rt.namespaced and key[0] != namespace:
                continue
            if not selector.matches(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                if token is None:
                    token = self._encode_continue(rt, rv, last_key)
                continue
            items.append(obj)
            last_key = key
        meta: Obj = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
            if not selector.predicates:
                meta["remainingItemCount"] = remaining
        if not rt.custom:
            # The real server leaves apiVersion/kind out of built-in list items.
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        else:
            items = [self.present(rt, o) for o in items]
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def _encode_continue(self, rt: ResourceType, rv: int, key: Key) -> str:
        raw = json.dumps(
            {"v": "meta.k8s.io/v1", "rv": rv, "start": list(key), "t": rt.key, "e": self._epoch}
        ).encode()
        return base64.urlsafe_b64encode(raw).decode()

    def _decode_continue(self, token: str, rt: ResourceType) -> tuple[int, Key]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            rv, start, tkey, epoch = int(data["rv"]), tuple(data["start"]), data["t"], int(data["e"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise ApiError.bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion"
            ) from None
        if tkey != rt.key or len(start) != 2:
            raise ApiError.bad_request("continue key is not valid: the key does not belong to this resource")
        if epoch != self._epoch:
            self.state_at(rt, -1)  # compacted since the token was issued: 410 Expired
        self.state_at(rt, rv)  # 410 Expired if compacted
        return rv, (str(start[0]), str(start[1]))

    # ---------------------------------------------------------------- writes
    def _check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if rt.namespaced:
            if not namespace:
                raise ApiError.bad_request(
                    "the server could not find the requested resource: namespace required"
                )
            if ("", namespace) not in self._bucket(self.type_for("", "v1", "namespaces")):
                raise ApiError.namespace_not_found(namespace)

    def _body(self, rt: ResourceType, body: Any, namespace: str | None) -> Obj:
        if not isinstance(body, dict):
            raise ApiError.bad_request(
                f"the body of the request was in an unknown format; expected a {rt.kind}"
            )
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, rt.kind) or obj.get("apiVersion") not in (None, rt.api_version):
            raise ApiError.bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API "
                f"version ({rt.api_version}) or kind ({obj.get('kind')} vs {rt.kind})"
            )
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        validate: bool = True,
        field_validation: str | None = None,
        warnings: builtins.list[str] | None = None,
    ) -> Obj:
        """Create like a POST; ``validate=False`` plants the object as given (for tests' hostile input).

        ``field_validation`` is the request's fieldValidation (Strict rejects unknown fields, otherwise
        they are dropped); notes about dropped fields are appended to ``warnings``.
        """
        self._check_namespace(rt, namespace)
        obj = self._body(rt, body, namespace)
        if validate:
            obj = self._prune(rt, obj, field_validation, warnings)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            else:
                raise ApiError.invalid(
                    rt, "", [("metadata.name", "Required value: name or generateName is required")]
                )
        name = str(meta["name"])
        if validate:
            validate_name(rt, name)
        key = self._key(rt, namespace, name)
        if key in self._bucket(rt):
            raise ApiError.already_exists(rt, name)
        if meta.get("resourceVersion"):
            raise ApiError.bad_request("resourceVersion should not be set on objects to be created")
        for drop in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(drop, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _timestamp(self._clock())
        if rt.plural in _GENERATION_TYPES or rt.custom:
            meta["generation"] = 1
        self._defaults(rt, obj, validate=validate)
        if validate:
            self._check_schema(rt, obj)
        meta["resourceVersion"] = str(self._next_rv())
        self._bucket(rt)[key] = obj
        self._emit(rt, "ADDED", obj, None)
        self._after_create(rt, obj)
        return self.present(rt, obj)

    def _schema(self, rt: ResourceType) -> dict[str, Any] | None:
        if not rt.custom:
            return builtin_schema(rt.api_version, rt.kind, self.kubernetes_version)
        crd = self._bucket(self.find_type("customresourcedefinitions")).get(("", f"{rt.plural}.{rt.group}"))
        return crd_schema(crd, rt.version) if crd else None

    def _prune(
        self, rt: ResourceType, obj: Obj, field_validation: str | None, warnings: builtins.list[str] | None
    ) -> Obj:
        """Drop fields the schema does not know, as the server does (Strict field validation refuses)."""
        schema = self._schema(rt) if self.schema_validation else None
        if schema is None:
            return obj
        pruned, dropped = prune(obj, schema, defs=definitions(self.kubernetes_version))
        if dropped and field_validation == "Strict":
            raise ApiError.bad_request(
                f"{rt.kind} in version {rt.version!r} cannot be handled as a {rt.kind}: "
                "strict decoding error: " + ", ".join(f'unknown field "{d}"' for d in dropped)
            )
        if warnings is not None and field_validation != "Ignore":
            warnings += [f'unknown field "{d}"' for d in dropped]
        assert isinstance(pruned, dict)
        return pruned

    def _check_schema(self, rt: ResourceType, obj: Obj) -> None:
        validate_metadata(rt, obj["metadata"])
        if not self.schema_validation:
            return
        crd = None
        if rt.custom:
            crd = self._bucket(self.find_type("customresourcedefinitions")).get(
                ("", f"{rt.plural}.{rt.group}")
            )
        check_schema(rt, obj, crd, kubernetes=self.kubernetes_version)

    def _defaults(self, rt: ResourceType, obj: Obj, *, validate: bool) -> None:
        """What the real server's defaulting and admission fill in on create."""
        name = obj["metadata"]["name"]
        if rt.plural == "namespaces":
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif rt.plural == "services" and rt.group == "":
            spec = obj.setdefault("spec", {})
            if not isinstance(spec, dict):
                if validate:
                    raise ApiError.invalid(rt, name, [("spec", "Invalid value: must be an object")])
                return  # a planted malformed object stays as it is
            spec.setdefault("type", "ClusterIP")
            ports = spec.get("ports")
            if validate and spec["type"] != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
                raise ApiError.invalid(rt, name, [("spec.ports", "Required value")])
            for port in ports or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
                    port.setdefault("targetPort", port.get("port"))
                    if spec["type"] in ("NodePort", "LoadBalancer"):
                        port.setdefault("nodePort", next(self._node_ports))
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                n = next(self._ips)
                spec["clusterIP"] = f"10.96.{n // 256 % 256}.{n % 256}"
            if spec.get("clusterIP"):
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("sessionAffinity", "None")
            obj.setdefault("status", {"loadBalancer": {}})
        elif rt.plural == "customresourcedefinitions":
            for new in types_from_crd(obj):
                old = self._types.get((new.group, new.version, new.plural))
                if old is not None and not old.custom:
                    raise ApiError.invalid(rt, name, [("spec.group", "Invalid value: a built-in group")])
            names = obj["spec"]["names"]
            obj["status"] = {
                "acceptedNames": copy.deepcopy(names),
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "reason": "NoConflicts",
                        "lastTransitionTime": _timestamp(self._clock()),
                        "message": "no conflicts found",
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "lastTransitionTime": _timestamp(self._clock()),
                        "message": "the initial names have been accepted",
                    },
                ],
                "storedVersions": [v["name"] for v in obj["spec"]["versions"] if v.get("storage")],
            }

    def _after_create(self, rt: ResourceType, obj: Obj) -> None:
        if rt.plural == "customresourcedefinitions":
            for t in types_from_crd(obj):
                self._register(t)
        elif (
            rt.plural == "secrets"
            and rt.group == ""
            and obj.get("type") == "kubernetes.io/service-account-token"
        ):
            self._fill_legacy_token(obj)

    def _fill_legacy_token(self, secret: Obj) -> None:
        """The token controller fills long-lived service-account token Secrets."""
        meta = secret["metadata"]
        sa_name = (meta.get("annotations") or {}).get("kubernetes.io/service-account.name")
        ns = meta["namespace"]
        if not sa_name or (ns, sa_name) not in self._bucket(self.find_type("serviceaccounts")):
            return
        token = secrets.token_urlsafe(32)
        self.tokens[token] = TokenInfo(f"system:serviceaccount:{ns}:{sa_name}", ns, sa_name, None)
        data = dict(secret.get("data") or {})
        data["token"] = base64.b64encode(token.encode()).decode()
        data["namespace"] = base64.b64encode(ns.encode()).decode()
        data.setdefault("ca.crt", base64.b64encode(self.ca_pem).decode())
        filled = {**secret, "data": data}
        self._write(self.find_type("secrets"), filled, secret)

    def _write(self, rt: ResourceType, new: Obj, old: Obj) -> Obj:
        """Store a changed object with a new resourceVersion and emit MODIFIED (no-op if unchanged)."""
        new_meta = dict(_meta(new))
        new_meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        new = {**new, "metadata": new_meta}
        if new == old:
            return old
        deleting = bool(old["metadata"].get("deletionTimestamp"))
        if deleting and set(new_meta.get("finalizers") or ()) - set(old["metadata"].get("finalizers") or ()):
            raise ApiError.invalid(
                rt,
                new_meta["name"],
                [
                    (
                        "metadata.finalizers",
                        "Forbidden: no new finalizers can be added if the object is being deleted",
                    )
                ],
            )
        if "generation" in old["metadata"] and _spec_part(new) != _spec_part(old):
            new_meta["generation"] = int(old["metadata"]["generation"]) + 1
        new_meta["resourceVersion"] = str(self._next_rv())
        key = self._key(rt, new_meta.get("namespace"), new_meta["name"])
        self._bucket(rt)[key] = new
        self._emit(rt, "MODIFIED", new, old)
        if deleting and not new_meta.get("finalizers"):
            # The last finalizer is gone: the pending deletion completes.
            del self._bucket(rt)[key]
            gone = {**new, "metadata": {**new_meta, "resourceVersion": str(self._next_rv())}}
            self._emit(rt, "DELETED", gone, new)
        return new

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        validate: bool = True,
        field_validation: str | None = None,
        warnings: builtins.list[str] | None = None,
    ) -> Obj:
        old = self._bucket(rt).get(self._key(rt, namespace, name))
        if old is None:
            raise ApiError.not_found(rt, name)
        obj = self._body(rt, body, namespace)
        if validate:
            obj = self._prune(rt, obj, field_validation, warnings)
        meta = obj["metadata"]
        if meta.get("name") not in (None, name):
            raise ApiError.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        given_rv = meta.get("resourceVersion")
        if given_rv:
            if str(given_rv) != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(rt, name)
        elif not rt.unconditional_update:
            raise ApiError.invalid(
                rt,
                name,
                [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")],
            )
        new = self._merge_update(rt, old, obj, subresource)
        if validate:
            self._check_schema(rt, new)
        return self._write(rt, new, old)

    def _merge_update(self, rt: ResourceType, old: Obj, obj: Obj, subresource: str | None) -> Obj:
        if subresource == "status":
            return (
                {**old, "status": obj.get("status")}
                if "status" in obj
                else {k: v for k, v in old.items() if k != "status"}
            )
        new_meta = dict(obj["metadata"])
        for fixed in ("uid", "creationTimestamp", "name", "namespace", "generation", "deletionTimestamp"):
            if fixed in old["metadata"]:
                new_meta[fixed] = old["metadata"][fixed]
            else:
                new_meta.pop(fixed, None)
        new = {**obj, "metadata": new_meta}
        if "status" in rt.subresources:
            # The main resource ignores status changes when a status subresource exists.
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if rt.plural == "customresourcedefinitions":
            types_from_crd(new)
        return new

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        content_type: str,
        *,
        subresource: str | None = None,
        validate: bool = True,
        field_validation: str | None = None,
        warnings: builtins.list[str] | None = None,
    ) -> Obj:
        old = self._bucket(rt).get(self._key(rt, namespace, name))
        if old is None:
            raise ApiError.not_found(rt, name)
        ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
        if ctype == "application/strategic-merge-patch+json" and rt.custom:
            raise ApiError(
                415,
                "strategic merge patch is not supported for custom resources; use "
                "application/merge-patch+json or application/json-patch+json",
            )
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(body, dict):
                raise ApiError.bad_request("merge patch: the body must be a JSON object")
            if ctype == "application/merge-patch+json":
                patched = merge_patch(old, body)
            else:
                schema = builtin_schema(rt.api_version, rt.kind, self.kubernetes_version)
                patched = strategic_merge(old, body, schema, definitions(self.kubernetes_version))
            given_rv = _meta(body).get("resourceVersion")
        elif ctype == "application/json-patch+json":
            patched = json_patch(old, body)
            given_rv = None
        else:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json-patch+json, application/merge-patch+json, "
                f"application/strategic-merge-patch+json (got {content_type!r})",
            )
        if not isinstance(patched, dict):
            raise ApiError(422, "patch result is not an object")
        if given_rv and str(given_rv) != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(rt, name)
        obj = self._body(rt, patched, namespace)
        if validate:
            obj = self._prune(rt, obj, field_validation, warnings)
        new = self._merge_update(rt, old, obj, subresource)
        if validate:
            self._check_schema(rt, new)
        return self._write(rt, new, old)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        options: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> Obj:
        """Delete like a DELETE. An object with finalizers only gets a deletionTimestamp and goes away
        when its last finalizer is removed; ``force`` (cascades) skips that."""
        key = self._key(rt, namespace, name)
        old = self._bucket(rt).get(key)
        if old is None:
            raise ApiError.not_found(rt, name)
        pre = (options or {}).get("preconditions") or {}
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {rt.key} "{name}": Precondition failed: '
                f"ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{old['metadata']['resourceVersion']}",
                reason="Conflict",
            )
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {rt.key} "{name}": Precondition failed: '
                f"UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}",
                reason="Conflict",
            )
        if old["metadata"].get("finalizers") and not force:
            if old["metadata"].get("deletionTimestamp"):
                return self.present(rt, old)
            meta = {
                **old["metadata"],
                "deletionTimestamp": _timestamp(self._clock()),
                "deletionGracePeriodSeconds": 0,
            }
            return self.present(rt, self._write(rt, {**old, "metadata": meta}, old))
        self._before_delete(rt, old)
        del self._bucket(rt)[key]
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._next_rv())}}
        self._emit(rt, "DELETED", gone, old)
        return self.present(rt, gone)

    def _before_delete(self, rt: ResourceType, obj: Obj) -> None:
        """Cascades the real server performs (asynchronously there, at once here)."""
        name = obj["metadata"]["name"]
        if rt.plural == "namespaces" and rt.group == "":
            for t in {t.key: t for t in self._types.values() if t.namespaced}.values():
                for ns, n in [k for k in self._bucket(t) if k[0] == name]:
                    self.delete(t, ns, n, force=True)
        elif rt.plural == "customresourcedefinitions":
            served = types_from_crd(obj)
            if served:
                for key in list(self._bucket(served[0])):
                    self.delete(served[0], key[0] or None, key[1], force=True)
            for t in served:
                self._types.pop((t.group, t.version, t.plural), None)
        elif rt.plural == "serviceaccounts" and rt.group == "":
            ns = obj["metadata"]["namespace"]
            for token, info in list(self.tokens.items()):
                if info.namespace == ns and info.service_account == name:
                    del self.tokens[token]

    # ---------------------------------------------------------------- tokens
    def request_token(self, namespace: str, name: str, body: Any) -> Obj:
        sa_type = self.find_type("serviceaccounts")
        if (namespace, name) not in self._bucket(sa_type):
            raise ApiError.not_found(sa_type, name)
        spec = body.get("spec") if isinstance(body, dict) else None
        spec = dict(spec) if isinstance(spec, dict) else {}
        seconds = spec.get("expirationSeconds") or 3600
        if not isinstance(seconds, int) or seconds < 600:
            raise ApiError(
                422,
                'TokenRequest.authentication.k8s.io "' + name + '" is invalid: spec.expirationSeconds: '
                "Invalid value: may not specify a duration less than 10 minutes",
            )
        if seconds > 2**32:
            raise ApiError(
                422,
                "spec.expirationSeconds: Invalid value: may not specify a duration larger than 2^32 seconds",
            )
        expires = self._clock() + timedelta(seconds=seconds)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = TokenInfo(f"system:serviceaccount:{namespace}:{name}", namespace, name, expires)
        spec["expirationSeconds"] = seconds
        spec.setdefault("audiences", ["https://kubernetes.default.svc.cluster.local"])
        spec.setdefault("boundObjectRef", None)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": _timestamp(expires)},
        }

    def user_for(self, token: str) -> TokenInfo | None:
        info = self.tokens.get(token)
        if info is None or (info.expires is not None and info.expires <= self._clock()):
            return None
        return info

    # ---------------------------------------------------------------- helpers for tests
    def all_objects(self, rt: ResourceType) -> Iterable[Obj]:
        return (self.present(rt, o) for _, o in sorted(self._bucket(rt).items()))
