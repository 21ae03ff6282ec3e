"""HTTP face of the fake Kubernetes API server, with fault injection for tests.

Speaks the wire protocol kubernetes-asyncio uses: JSON bodies, ``Status`` errors, chunked watch streams
of newline-delimited events. One ``FakeKubeAPI`` is one cluster; start several for several clusters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import re
import ssl
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from aiohttp import web

from tests.fakes.kube.errors import ApiError
from tests.fakes.kube.openapi import KUBERNETES_VERSION
from tests.fakes.kube.rbac import allowed
from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.roles import IDENTITIES, Identity, chart_rbac_objects, member_rbac_objects
from tests.fakes.kube.selectors import Selector, parse_field_selector, parse_label_selector
from tests.fakes.kube.store import Obj, Store, StoredEvent, TokenInfo
from tests.fakes.kube.versions import server_version

__all__ = ["FakeKubeAPI", "Fault", "RequestRecord"]

log = logging.getLogger(__name__)

_TRUE = {"true", "True", "1"}
# What an API server lets anyone read, even without a token (system:public-info-viewer).
_PUBLIC_PATHS = ("/readyz", "/livez", "/healthz", "/version")
_MAX_BODY = 3 * 1024 * 1024  # the API server's request body limit


@dataclass
class RequestRecord:
    method: str
    path: str
    verb: str  # get list watch create update patch delete deletecollection, or "" for non-resource paths
    resource: str  # "services", "leases.coordination.k8s.io", "services/status", "" for non-resource
    namespace: str | None
    name: str | None
    user: str
    status: int = 0


@dataclass
class Fault:
    """A rule applied to matching requests before the server handles them.

    Matching: every given field must match; ``resource`` matches the plural, ``plural.group`` or
    ``plural/subresource``; ``path`` is a regular expression searched in the URL path.
    Action: wait ``delay`` seconds, then answer ``status`` (a Status body) if set, else handle normally.
    """

    status: int | None = None
    delay: float = 0.0
    times: int | None = None  # None: until removed
    method: str | None = None
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    path: str | None = None
    user: str | None = None
    token: str | None = None
    message: str | None = None
    retry_after: int | None = None
    hits: int = 0
    _owner: FakeKubeAPI | None = field(default=None, repr=False)

    def matches(
        self, rec: RequestRecord, token: str | None, rt: ResourceType | None, sub: str | None
    ) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method.upper() != rec.method:
            return False
        if self.verb and self.verb != rec.verb:
            return False
        if self.resource:
            names = {rec.resource}
            if rt is not None:
                names |= {rt.plural, rt.key} if sub is None else {f"{rt.plural}/{sub}", f"{rt.key}/{sub}"}
            if self.resource not in names:
                return False
        if self.namespace and self.namespace != rec.namespace:
            return False
        if self.name and self.name != rec.name:
            return False
        if self.path and not re.search(self.path, rec.path):
            return False
        if self.user and self.user != rec.user:
            return False
        return not (self.token and self.token != token)

    def remove(self) -> None:
        if self._owner is not None and self in self._owner.faults:
            self._owner.faults.remove(self)


@dataclass
class _Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    verb: str


class _Control:
    """Out-of-band messages to an open watch stream."""

    def __init__(self, kind: str, rv: int = 0) -> None:
        self.kind = kind  # "drop-now", "drop-next", "bookmark", "expire"
        self.rv = rv


@dataclass(eq=False)
class _WatchStream:
    rt: ResourceType
    namespace: str | None
    selector: Selector
    bookmarks: bool
    queue: asyncio.Queue[StoredEvent | _Control] = field(default_factory=asyncio.Queue)
    transport: asyncio.Transport | None = None
    last_bookmark: float = 0.0

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if (
            self.namespace
            and self.rt.namespaced
            and obj.get("metadata", {}).get("namespace") != self.namespace
        ):
            return False
        return self.selector.matches(obj)

    def project(self, ev: StoredEvent) -> tuple[str, Obj] | None:
        """What this watcher sees of an event, given its filter (objects move in and out of it)."""
        was, now = self.matches(ev.prev), self.matches(ev.obj)
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if was else None
        if was and now:
            return ("MODIFIED", ev.obj)
        if now:
            return ("ADDED", ev.obj)
        if was:
            return ("DELETED", ev.obj)
        return None


class FakeKubeAPI:
    """A Kubernetes API server on loopback for tests.

    ``async with FakeKubeAPI() as api:`` starts it on a free port; ``api.url`` is its address,
    ``api.write_kubeconfig(path)`` writes a kubeconfig for it, ``api.add(obj)`` and friends reach the
    store directly, and the fault methods (``fail``, ``delay``, ``compact``, ``drop_watches``, ``stop``)
    break it in the ways real clusters break.

    Strict by default, like a real cluster: every request needs a valid bearer token (anonymous
    requests reach only /readyz, /livez, /healthz and /version), RBAC is enforced, and the watch
    history keeps ``history_size`` events per resource type (the watch cache), so resuming from an
    old resourceVersion gets 410 in ordinary tests. Kubeconfigs and clients authenticate as
    ``identity``: ``"member"`` (join's account and ClusterRole), ``"host"`` (the chart's controller
    ServiceAccount, ClusterRole and Role in ``host_namespace``) or ``"admin"`` (no RBAC; setup and
    ``join``). A request RBAC refuses is recorded, and ``close()`` fails the test with the list,
    because code that swallows a 403 would otherwise pass; ``allow_forbidden=True`` opts out (say why).
    """

    def __init__(
        self,
        *,
        name: str = "fake",
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "fake-admin-token",
        require_auth: bool = True,
        history_size: int = 25,
        bookmark_interval: float = 1.0,
        watch_timeout: float | None = None,
        tls: bool = False,
        enforce_rbac: bool = True,
        schema_validation: bool = True,
        identity: str = "member",
        host_namespace: str = "ingressfed-system",
        lease_name: str = "ingressfed-controller",
        allow_forbidden: bool = False,
        kubernetes_version: str = KUBERNETES_VERSION,
    ) -> None:
        if identity not in IDENTITIES:
            raise ValueError(f"identity must be one of {', '.join(IDENTITIES)}, got {identity!r}")
        self.name = name
        self.host = host
        self.port = port
        self.token = token
        self.require_auth = require_auth
        self.enforce_rbac = enforce_rbac
        self.identity = identity
        self.host_namespace = host_namespace
        self.lease_name = lease_name
        self.allow_forbidden = allow_forbidden
        self.forbidden: list[RequestRecord] = []  # requests RBAC refused (not injected 403s)
        self._identity_tokens: dict[str, str] = {"admin": token}
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.store = Store(history_size=history_size)
        self.store.schema_validation = schema_validation
        self.store.kubernetes_version = kubernetes_version  # built-in schemas and GET /version
        self.store.tokens[token] = TokenInfo("admin")
        self.faults: list[Fault] = []
        self.requests: deque[RequestRecord] = deque(maxlen=200_000)
        self.ready = True
        self._streams: set[_WatchStream] = set()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._unlisten = self.store.listen(self._dispatch)
        self._tls = tls
        self._ssl: ssl.SSLContext | None = None
        self.ca_pem = b""
        if tls:
            self._make_certificate()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        """Listen (again) on ``port``; the first start picks a free port when ``port`` is 0."""
        if self._runner is not None:
            return
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # asyncio's or uvloop's
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and cut every open connection: the cluster becomes unreachable."""
        if self._runner is None:
            return
        self._stopping.set()
        for stream in list(self._streams):
            if stream.transport is not None:
                stream.transport.abort()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def close(self) -> None:
        await self.stop()
        self._unlisten()
        if self.forbidden and not self.allow_forbidden:
            refused = self.forbidden
            self.forbidden = []
            lines = "\n".join(
                f"  {r.user}: {r.verb} {r.resource}"
                + (f" in {r.namespace}" if r.namespace else "")
                + (f" name={r.name}" if r.name else "")
                for r in refused[:20]
            )
            raise AssertionError(
                f"fake API server {self.name!r}: RBAC refused {len(refused)} request(s) the code made:\n"
                f"{lines}\ngrant the verb in the role (charts/ingressfed/templates/rbac.yaml or "
                "ingressfed.kube.join.cluster_role_rules), or pass allow_forbidden=True where a test "
                "expects the refusal"
            )

    async def __aenter__(self) -> FakeKubeAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ identities
    def token_for(self, identity: str | None = None) -> str:
        """A bearer token for ``identity`` (default: this server's), installing its account and roles."""
        identity = identity or self.identity
        known = self._identity_tokens.get(identity)
        if known is not None:
            return known
        who: Identity
        if identity == "member":
            who = member_rbac_objects(self.name)
        elif identity == "host":
            who = chart_rbac_objects(namespace=self.host_namespace, lease_name=self.lease_name)
        else:
            raise ValueError(f"identity must be one of {', '.join(IDENTITIES)}, got {identity!r}")
        for obj in who.objects:
            self.add(copy.deepcopy(obj))
        token = f"fake-{identity}-token-{self.name}"
        self.store.tokens[token] = TokenInfo(who.user, who.namespace, who.account)
        self._identity_tokens[identity] = token
        return token

    def add_token(self, token: str, identity: str | None = None) -> str:
        """Another bearer token for ``identity``'s account (replicas sharing one ServiceAccount, each
        with its own token so that faults can target one of them)."""
        info = self.store.user_for(self.token_for(identity))
        assert info is not None
        self.store.tokens[token] = info
        return token

    # ------------------------------------------------------------------ client side helpers
    def kubeconfig(
        self,
        *,
        context: str | None = None,
        cluster: str | None = None,
        user: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        identity: str | None = None,
    ) -> dict[str, Any]:
        """A kubeconfig document (as a dict) with one cluster, user and context for this server.

        It authenticates as ``identity`` (default: the server's), or with ``token`` when given.
        """
        token = token or self.token_for(identity)
        context = context or self.name
        cluster = cluster or context
        user = user or f"{context}-user"
        cluster_entry: dict[str, Any] = {"server": self.url}
        if self._tls:
            cluster_entry["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        ctx: dict[str, Any] = {"cluster": cluster, "user": user}
        if namespace:
            ctx["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": cluster, "cluster": cluster_entry}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }

    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        context: str | None = None,
        cluster: str | None = None,
        user: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        make_current: bool = True,
        identity: str | None = None,
    ) -> Path:
        """Write (or merge into an existing) kubeconfig file; entries of the same name are replaced.

        Several fakes can write into one file with different contexts, like a multi-cluster kubeconfig.
        """
        path = Path(path)
        doc = self.kubeconfig(
            context=context, cluster=cluster, user=user, token=token, namespace=namespace, identity=identity
        )
        if path.exists():
            old = yaml.safe_load(path.read_text()) or {}
            for section in ("clusters", "users", "contexts"):
                new_names = {e["name"] for e in doc[section]}
                doc[section] = [e for e in old.get(section) or [] if e.get("name") not in new_names] + doc[
                    section
                ]
            if not make_current and old.get("current-context"):
                doc["current-context"] = old["current-context"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    @contextlib.asynccontextmanager
    async def api_client(
        self, *, token: str | None = None, identity: str | None = None
    ) -> AsyncIterator[Any]:
        """A kubernetes-asyncio ApiClient for this server, built the way the kubeconfig loader builds it."""
        from kubernetes_asyncio import client, config

        cfg = client.Configuration()
        doc = self.kubeconfig(token=token, identity=identity)
        await config.load_kube_config_from_dict(doc, client_configuration=cfg)
        async with client.ApiClient(configuration=cfg) as api:
            yield api

    # ------------------------------------------------------------------ direct store access
    def add(self, obj: Mapping[str, Any], *, validate: bool = False) -> Obj:
        """Create ``obj`` (or replace it if it exists), emitting watch events like an API write.

        Names are not validated by default so tests can plant objects the real server would refuse.
        """
        rt = self.store.type_of(obj)
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or "default") if rt.namespaced else None
        if ns and ns not in self.store.namespaces():
            self.store.create(self.store.find_type("namespaces"), None, {"metadata": {"name": ns}})
        name = meta.get("name")
        try:
            current = self.store.get(rt, ns, name) if name else None
        except ApiError:
            current = None
        if current is None:
            out = self.store.create(rt, ns, obj, validate=validate)
        else:
            rv = current["metadata"]["resourceVersion"]
            body = {**obj, "metadata": {**meta, "resourceVersion": rv}}
            out = self.store.replace(rt, ns, current["metadata"]["name"], body, validate=validate)
        if "status" in rt.subresources and "status" in obj and obj["status"] != out.get("status"):
            out = self.store.replace(
                rt,
                ns,
                out["metadata"]["name"],
                {**out, "status": obj["status"]},
                subresource="status",
                validate=validate,
            )
        return out

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = self.store.find_type(resource)
        try:
            return self.store.get(rt, namespace, name)
        except ApiError:
            return None

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        rt = self.store.find_type(resource)
        return [
            o
            for o in self.store.all_objects(rt)
            if not namespace or o["metadata"].get("namespace") == namespace
        ]

    def delete(self, resource: str, name: str, namespace: str | None = None) -> None:
        self.store.delete(self.store.find_type(resource), namespace, name)

    def patch(
        self,
        resource: str,
        name: str,
        patch: Mapping[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        validate: bool = False,
    ) -> Obj:
        """Merge-patch an object (``subresource="status"`` to change status); unchecked like ``add``."""
        rt = self.store.find_type(resource)
        ctype = "application/merge-patch+json"
        return self.store.patch(
            rt, namespace, name, dict(patch), ctype, subresource=subresource, validate=validate
        )

    @property
    def resource_version(self) -> int:
        return self.store.rv

    # ------------------------------------------------------------------ faults
    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        message: str | None = None,
        retry_after: int | None = None,
        **match: Any,
    ) -> Fault:
        """Answer matching requests with ``status`` and a Status body (``times`` times, or until removed)."""
        return self._add_fault(
            Fault(status=status, times=times, message=message, retry_after=retry_after, **match)
        )

    def delay(self, seconds: float, *, times: int | None = None, **match: Any) -> Fault:
        """Make matching requests wait ``seconds`` before they are handled (a slow server)."""
        return self._add_fault(Fault(delay=seconds, times=times, **match))

    def hang(self, *, times: int | None = None, **match: Any) -> Fault:
        """Matching requests never get an answer (until the fault is removed or the server stops)."""
        return self._add_fault(Fault(delay=float("inf"), times=times, **match))

    def clear_faults(self) -> None:
        self.faults.clear()

    def _add_fault(self, fault: Fault) -> Fault:
        fault._owner = self
        self.faults.append(fault)
        return fault

    def compact(self, *, expire_watches: bool = False) -> None:
        """Compact history: older resourceVersions and continue tokens now answer 410.

        With ``expire_watches`` open watches also get an ERROR event (410) and are closed, as when the
        real server's watch cache falls too far behind.
        """
        self.store.compact()
        if expire_watches:
            for s in self._streams:
                s.queue.put_nowait(_Control("expire", self.store.rv))

    def drop_watches(self, *, at_next_event: bool = False, resource: str | None = None) -> int:
        """Cut open watch streams after writing half an event line; returns how many were cut.

        ``at_next_event`` cuts each stream in the middle of its next real event (which the client then
        must recover by resuming from its last resourceVersion); otherwise at once, mid-line.
        """
        n = 0
        for s in list(self._streams):
            if resource and resource not in (s.rt.plural, s.rt.key):
                continue
            s.queue.put_nowait(_Control("drop-next" if at_next_event else "drop-now"))
            n += 1
        return n

    def bookmark_now(self) -> None:
        """Send a BOOKMARK now on every watch that asked for bookmarks."""
        for s in self._streams:
            if s.bookmarks:
                s.queue.put_nowait(_Control("bookmark", self.store.rv))

    @property
    def open_watches(self) -> int:
        return len(self._streams)

    def count(
        self,
        *,
        verb: str | None = None,
        resource: str | None = None,
        method: str | None = None,
        path: str | None = None,
        user: str | None = None,
        namespace: str | None = None,
    ) -> int:
        """How many requests matched (``resource`` as in Fault: plural, plural.group or plural/sub)."""
        n = 0
        for r in self.requests:
            if verb and r.verb != verb:
                continue
            if (
                resource
                and resource not in (r.resource, r.resource.split(".")[0])
                and not (
                    "/" in r.resource
                    and resource == r.resource.split(".")[0] + "/" + r.resource.split("/")[-1]
                )
            ):
                continue
            if method and r.method != method.upper():
                continue
            if path and not re.search(path, r.path):
                continue
            if user and r.user != user:
                continue
            if namespace and r.namespace != namespace:
                continue
            n += 1
        return n

    # ------------------------------------------------------------------ HTTP
    def _dispatch(self, ev: StoredEvent) -> None:
        for s in self._streams:
            if s.rt.key == ev.type_key:
                s.queue.put_nowait(ev)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else None
        info = self.store.user_for(token) if token else None
        user = info.user if info else ("system:anonymous" if not token else "unknown")
        rec = RequestRecord(request.method, path, "", "", None, None, user)
        self.requests.append(rec)
        try:
            route = self._route(request)
            rt, sub = (route.rt, route.subresource) if route else (None, None)
            if route:
                rec.verb = route.verb
                rec.resource = route.rt.key + (f"/{route.subresource}" if route.subresource else "")
                rec.namespace, rec.name = route.namespace, route.name
            await self._apply_faults(rec, token, rt, sub)
            if token is not None and info is None:
                raise ApiError(401, "Unauthorized")  # a bad or expired token is refused everywhere
            public = route is None and (request.path.rstrip("/") or "/") in _PUBLIC_PATHS
            if self.require_auth and info is None and not public:
                raise ApiError(401, "Unauthorized")
            if self.enforce_rbac and route is not None and user != "admin":
                who = info or TokenInfo(user)
                if not allowed(
                    self.store,
                    who,
                    verb=route.verb,
                    rt=route.rt,
                    sub=route.subresource,
                    namespace=route.namespace,
                    name=route.name,
                ):
                    self.forbidden.append(rec)
                    raise ApiError.forbidden(user, route.verb, route.rt, route.namespace)
            resp = await self._serve(request, route)
        except ApiError as e:
            resp = self._status(e)
        rec.status = resp.status
        return resp

    def _status(self, e: ApiError) -> web.Response:
        headers = {}
        retry = (e.details or {}).get("retryAfterSeconds")
        if retry is not None or e.code in (429, 503):
            headers["Retry-After"] = str(retry if retry is not None else 1)
        return web.json_response(e.status(), status=e.code, headers=headers)

    async def _apply_faults(
        self, rec: RequestRecord, token: str | None, rt: ResourceType | None, sub: str | None
    ) -> None:
        for fault in list(self.faults):
            if not fault.matches(rec, token, rt, sub):
                continue
            fault.hits += 1
            if fault.delay:
                with contextlib.suppress(TimeoutError):
                    timeout = None if fault.delay == float("inf") else fault.delay
                    await asyncio.wait_for(self._stopping.wait(), timeout)
                if self._stopping.is_set():
                    raise ApiError(503, "server is shutting down")
            if fault.status is not None:
                msg = fault.message or f"injected failure for {rec.method} {rec.path}"
                if fault.status == 403:
                    e = ApiError.forbidden(rec.user, rec.verb or rec.method.lower(), rt, rec.namespace)
                    if fault.message:
                        e.message = fault.message
                elif fault.status == 409 and rt is not None and rec.name:
                    e = ApiError.conflict(rt, rec.name)
                else:
                    e = ApiError(fault.status, msg)
                if fault.retry_after is not None:
                    e.details = {**(e.details or {}), "retryAfterSeconds": fault.retry_after}
                raise e

    def _route(self, request: web.Request) -> _Route | None:
        parts = [p for p in request.path.split("/") if p]
        if parts[:2] == ["api", "v1"] and len(parts) > 2:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and self.store.serves(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        rt = self.store.type_for(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub is not None and sub not in rt.subresources):
            raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
        if rt.namespaced and name is not None and namespace is None:
            raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
        if not rt.namespaced and namespace is not None:
            raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
        method = request.method
        if method == "GET":
            verb = "get" if name else ("watch" if request.query.get("watch") in _TRUE else "list")
        elif method == "POST":
            verb = "create"
            if name is not None and sub is None:
                raise ApiError(405, "the server does not allow this method on the requested resource")
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if verb in ("update", "patch") and name is None:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        return _Route(rt, namespace, name, sub, verb)

    async def _serve(self, request: web.Request, route: _Route | None) -> web.StreamResponse:
        if route is None:
            return self._non_resource(request)
        rt, ns, name, sub = route.rt, route.namespace, route.name, route.subresource
        q = request.query
        if route.verb in ("list", "watch"):
            selector = self._selector(rt, q)
            if route.verb == "watch":
                return await self._watch(request, rt, ns, selector)
            try:
                limit = int(q.get("limit", "0") or 0)
            except ValueError:
                raise ApiError.bad_request(f"invalid limit {q.get('limit')!r}") from None
            body = self.store.list(
                rt,
                ns,
                selector=selector,
                limit=max(limit, 0),
                continue_token=q.get("continue") or None,
                resource_version=q.get("resourceVersion"),
                resource_version_match=q.get("resourceVersionMatch"),
            )
            return self._json(body)
        fv = q.get("fieldValidation")
        if fv not in (None, "Strict", "Warn", "Ignore"):
            raise ApiError.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict (got {fv!r})")
        warnings: list[str] = []
        if route.verb == "create":
            body = await self._read_json(request)
            if sub == "token":
                return self._json(self.store.request_token(ns or "", name or "", body), status=201)
            if "dryRun" in q:
                return self._json(body, status=201)
            obj = self.store.create(rt, ns, body, field_validation=fv, warnings=warnings)
            if rt.plural == "secrets" and rt.group == "":
                # The token controller may have filled it in already.
                obj = self.store.get(rt, ns, obj["metadata"]["name"])
            return self._json(obj, status=201, warnings=warnings)
        if name is None:  # deletecollection
            listed = self.store.list(rt, ns, selector=self._selector(rt, q))
            for item in listed["items"]:
                m = item["metadata"]
                self.store.delete(rt, m.get("namespace"), m["name"])
            return self._json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        if route.verb == "get":
            return self._json(self.store.get(rt, ns, name))
        if route.verb == "update":
            body = await self._read_json(request)
            obj = self.store.replace(
                rt, ns, name, body, subresource=sub, field_validation=fv, warnings=warnings
            )
            return self._json(obj, warnings=warnings)
        if route.verb == "patch":
            body = await self._read_json(request)
            ctype = request.headers.get("Content-Type", "")
            obj = self.store.patch(
                rt, ns, name, body, ctype, subresource=sub, field_validation=fv, warnings=warnings
            )
            return self._json(obj, warnings=warnings)
        options = await self._read_json(request, optional=True)
        gone = self.store.delete(rt, ns, name, options=options)
        if rt.returns_deleted_object or gone["metadata"].get("finalizers"):
            return self._json(gone)  # deleted, or pending until its finalizers are removed
        details = {"name": name, "kind": rt.plural, "uid": gone["metadata"]["uid"]}
        if rt.group:
            details["group"] = rt.group
        return self._json(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    @staticmethod
    def _selector(rt: ResourceType, q: Mapping[str, str]) -> Selector:
        labels = parse_label_selector(q.get("labelSelector"))
        return labels & parse_field_selector(q.get("fieldSelector"), rt.extra_fields)

    @staticmethod
    def _json(body: Any, status: int = 200, *, warnings: list[str] | None = None) -> web.Response:
        resp = web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")
        for w in warnings or ():
            escaped = w.replace("\\", "\\\\").replace('"', '\\"')
            resp.headers.add("Warning", f'299 - "{escaped}"')
        return resp

    @staticmethod
    async def _read_json(request: web.Request, *, optional: bool = False) -> Any:
        raw = await request.read()
        if len(raw) > _MAX_BODY:
            raise ApiError(
                413, f"Request entity too large: limit is {_MAX_BODY}", reason="RequestEntityTooLarge"
            )
        if not raw:
            if optional:
                return None
            raise ApiError.bad_request("the body of the request was empty")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError.bad_request(f"the body of the request could not be decoded as JSON: {e}") from None

    def _non_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/readyz", "/livez", "/healthz"):
            if path == "/readyz" and not self.ready:
                return web.Response(status=500, text="[-]etcd failed: reason withheld\nreadyz check failed\n")
            return web.Response(text="ok")
        if path == "/version":
            return self._json(server_version(self.store.kubernetes_version))
        if path == "/api":
            return self._json(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                    ],
                }
            )
        groups: dict[str, list[str]] = {}
        for t in self.store.types():
            if t.group:
                versions = groups.setdefault(t.group, [])
                if t.version not in versions:
                    versions.append(t.version)
        if path == "/apis":
            return self._json(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group(g, vs) for g, vs in sorted(groups.items())],
                }
            )
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in groups:
            return self._json(
                {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], groups[parts[1]])}
            )
        if path == "/api/v1" or (
            parts[0] == "apis" and len(parts) == 3 and parts[2] in groups.get(parts[1], [])
        ):
            group, version = ("", "v1") if path == "/api/v1" else (parts[1], parts[2])
            return self._json(self._resource_list(group, version))
        raise ApiError(404, "the server could not find the requested resource", reason="NotFound")

    @staticmethod
    def _group(name: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for t in self.store.types():
            if (t.group, t.version) != (group, version):
                continue
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
            resources.append(
                {
                    "name": t.plural,
                    "singularName": t.singular,
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": verbs,
                    **({"shortNames": list(t.short_names)} if t.short_names else {}),
                }
            )
            for sub in sorted(t.subresources):
                kind = "TokenRequest" if sub == "token" else t.kind
                sub_verbs = ["create"] if sub == "token" else ["get", "patch", "update"]
                resources.append(
                    {
                        "name": f"{t.plural}/{sub}",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": kind,
                        "verbs": sub_verbs,
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # ------------------------------------------------------------------ watch
    async def _watch(
        self, request: web.Request, rt: ResourceType, ns: str | None, selector: Selector
    ) -> web.StreamResponse:
        q = request.query
        bookmarks = q.get("allowWatchBookmarks") in _TRUE
        timeout: float | None = self.watch_timeout
        if q.get("timeoutSeconds"):
            try:
                timeout = float(q["timeoutSeconds"])
            except ValueError:
                raise ApiError.bad_request(f"invalid timeoutSeconds {q['timeoutSeconds']!r}") from None
        stream = _WatchStream(rt, ns, selector, bookmarks)
        rv_param = q.get("resourceVersion") or ""
        initial: list[tuple[str, Obj]] = []
        error: ApiError | None = None
        if rv_param in ("", "0"):
            initial = [("ADDED", o) for _, o in self.store.state_at(rt, self.store.rv) if stream.matches(o)]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise ApiError.bad_request(f"invalid resource version {rv_param!r}") from None
            try:
                replay = self.store.events_since(rt, since)
            except ApiError as e:
                error = e
            else:
                for ev in replay:
                    seen = stream.project(ev)
                    if seen:
                        initial.append(seen)
        # Subscribing in the same step as the replay (no await in between) loses and repeats nothing.
        start_rv = self.store.rv
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        if error is None:
            self._streams.add(stream)
        try:
            await resp.prepare(request)
            transport = request.transport
            # uvloop's transports implement asyncio.Transport without subclassing it: an isinstance
            # test ended every watch at once on uvloop
            stream.transport = cast(asyncio.Transport, transport) if transport is not None else None
            if error is not None:
                await resp.write(self._line("ERROR", error.status()))
                return resp
            for kind, obj in initial:
                await resp.write(self._line(kind, self.store.present(rt, obj)))
            if bookmarks and q.get("sendInitialEvents") in _TRUE and rv_param in ("", "0"):
                await resp.write(self._bookmark(rt, start_rv, initial_end=True))
            await self._pump(resp, stream, timeout)
        except (ConnectionResetError, asyncio.CancelledError) as e:
            log.debug("watch stream on %s ended: %r", rt.key, e)
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self._streams.discard(stream)
        return resp

    async def _pump(self, resp: web.StreamResponse, stream: _WatchStream, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        drop_next = False
        stream.last_bookmark = loop.time()
        while True:
            if stream.transport is None or stream.transport.is_closing():
                return
            wait = 0.5 if not stream.bookmarks else min(0.5, self.bookmark_interval)
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    await resp.write_eof()
                    return
            try:
                item = await asyncio.wait_for(stream.queue.get(), wait)
            except TimeoutError:
                if stream.bookmarks and loop.time() - stream.last_bookmark >= self.bookmark_interval:
                    await resp.write(self._bookmark(stream.rt, self.store.rv))
                    stream.last_bookmark = loop.time()
                continue
            if isinstance(item, _Control):
                if item.kind == "bookmark":
                    await resp.write(self._bookmark(stream.rt, item.rv))
                elif item.kind == "expire":
                    err = ApiError.expired(f"too old resource version: {item.rv} ({item.rv + 1})")
                    await resp.write(self._line("ERROR", err.status()))
                    await resp.write_eof()
                    return
                elif item.kind == "drop-next":
                    drop_next = True
                else:
                    await self._cut(
                        resp, stream, b'{"type":"MODIFIED","object":{"kind":"' + stream.rt.kind.encode()
                    )
                    return
                continue
            seen = stream.project(item)
            if seen is None:
                continue
            line = self._line(seen[0], self.store.present(stream.rt, seen[1]))
            if drop_next:
                await self._cut(resp, stream, line[: len(line) // 2])
                return
            await resp.write(line)

    @staticmethod
    async def _cut(resp: web.StreamResponse, stream: _WatchStream, partial: bytes) -> None:
        await resp.write(partial)
        # Give the partial chunk a moment to reach the socket before the reset.
        await asyncio.sleep(0.01)
        if stream.transport is not None:
            stream.transport.abort()

    @staticmethod
    def _line(kind: str, obj: Mapping[str, Any]) -> bytes:
        return json.dumps({"type": kind, "object": obj}).encode() + b"\n"

    def _bookmark(self, rt: ResourceType, rv: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return self._line("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})

    # ------------------------------------------------------------------ TLS
    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1/::1/localhost, its PEM in ``ca_pem``."""
        from tests.fakes.tls import self_signed

        self.ca_pem, key_pem = self_signed(f"fake-kube-{self.name}")
        self.store.ca_pem = self.ca_pem
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as d:
            cert_path, key_path = Path(d, "tls.crt"), Path(d, "tls.key")
            cert_path.write_bytes(self.ca_pem)
            key_path.write_bytes(key_pem)
            ctx.load_cert_chain(cert_path, key_path)
        self._ssl = ctx
