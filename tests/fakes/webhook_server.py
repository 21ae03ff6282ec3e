"""A small conforming external-dns webhook provider on loopback, backed by a strict store.

Speaks the protocol as external-dns's webhook client expects it: ``GET /`` (negotiation: the
domain filter, ``Content-Type`` the versioned media type and ``Vary: Content-Type``),
``GET /records``, ``POST /records`` (204) and ``POST /adjustendpoints``. It insists on the
media type in ``Accept`` and, for bodies, ``Content-Type`` (406/415 otherwise).

The store is strict and each POST is all or nothing: creating an existing (name, type, set id)
or updating/deleting one that is missing or differs -> 409; a name outside the domain filter,
an invalid address or a refused name -> 400; every error has a JSON ``{"message": ...}`` body.
Switches: ``pascal`` (answer PascalCase field names, as Go servers without JSON tags do),
``fail_next(status, count)``, ``min_ttl`` (adjustendpoints raises lower TTLs), ``rejected``.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MEDIA_TYPE = "application/external.dns.webhook+json;version=1"
Key = tuple[str, str, str]


def _pascal(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_pascal(o) for o in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = {"dnsName": "DNSName", "recordTTL": "RecordTTL"}.get(k, k[0].upper() + k[1:])
            out[key] = v if k in ("labels",) else _pascal(v)
        return out
    return obj


def _get(obj: dict[str, Any], camel: str) -> Any:
    # Go's encoding/json matches field names case-insensitively; so does this server.
    for k, v in obj.items():
        if k.lower() == camel.lower():
            return v
    return None


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FakeWebhook:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    regex_include: str = ""
    regex_exclude: str = ""
    pascal: bool = False
    min_ttl: int = 0
    rejected: set[str] = field(default_factory=set)
    store: dict[Key, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    _faults: list[int] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    def fail_next(self, status: int, count: int = 1) -> None:
        self._faults.extend([status] * count)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if (m, p) == (method, path))

    def seed(self, endpoint: dict[str, Any]) -> None:
        ep = self._normalise(endpoint)
        self.store[self._key(ep)] = ep

    async def __aenter__(self) -> FakeWebhook:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/", self._negotiate)
        app.router.add_get("/records", self._records)
        app.router.add_post("/records", self._apply)
        app.router.add_post("/adjustendpoints", self._adjust)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- helpers ----------------------------------------------------------------------------------

    def _json(self, obj: Any, status: int = 200) -> web.Response:
        body = _pascal(obj) if self.pascal else obj
        return web.Response(
            status=status,
            body=json.dumps(body).encode(),
            headers={"Content-Type": MEDIA_TYPE, "Vary": "Content-Type"},
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self._faults:
            status = self._faults.pop(0)
            return web.json_response({"message": f"injected fault {status}"}, status=status)
        if request.path != "/healthz" and request.headers.get("Accept") != MEDIA_TYPE:
            return web.json_response({"message": f"Accept must be {MEDIA_TYPE}"}, status=406)
        if request.method == "POST" and request.headers.get("Content-Type") != MEDIA_TYPE:
            return web.json_response({"message": f"Content-Type must be {MEDIA_TYPE}"}, status=415)
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except Refused as e:
            return web.json_response({"message": str(e)}, status=e.status)

    def _matches(self, name: str) -> bool:
        import re

        if self.regex_include or self.regex_exclude:
            if self.regex_exclude and re.search(self.regex_exclude, name):
                return False
            return not self.regex_include or bool(re.search(self.regex_include, name))
        under = lambda n, f: n == f or n.endswith("." + f)  # noqa: E731
        if self.include and not any(under(name, f) for f in self.include):
            return False
        return not any(under(name, f) for f in self.exclude)

    @staticmethod
    def _key(ep: dict[str, Any]) -> Key:
        return (ep["dnsName"], ep["recordType"], ep.get("setIdentifier", ""))

    def _normalise(self, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Refused(400, "endpoint must be an object")
        name, rtype, targets = _get(obj, "dnsName"), _get(obj, "recordType"), _get(obj, "targets")
        ttl = _get(obj, "recordTTL") or 0
        if not isinstance(name, str) or not name or name.endswith("."):
            raise Refused(400, f"invalid dnsName {name!r}")
        if rtype not in ("A", "AAAA", "CNAME", "TXT", "MX", "NS", "SRV"):
            raise Refused(400, f"{name}: unsupported recordType {rtype!r}")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise Refused(400, f"{name}: targets must be a non-empty list of strings")
        if not isinstance(ttl, int) or ttl < 0:
            raise Refused(400, f"{name}: invalid recordTTL")
        for t in targets:
            try:
                if rtype == "A":
                    ipaddress.IPv4Address(t)
                elif rtype == "AAAA":
                    ipaddress.IPv6Address(t)
            except ValueError:
                raise Refused(400, f"{name}: invalid {rtype} target {t!r}") from None
        ep = {"dnsName": name.lower(), "recordType": rtype, "targets": sorted(targets), "recordTTL": ttl}
        if _get(obj, "setIdentifier"):
            ep["setIdentifier"] = _get(obj, "setIdentifier")
        return ep

    # -- handlers ---------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _negotiate(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {}
        if self.include:
            body["include"] = self.include
        if self.exclude:
            body["exclude"] = self.exclude
        if self.regex_include:
            body["regexInclude"] = self.regex_include
        if self.regex_exclude:
            body["regexExclude"] = self.regex_exclude
        return self._json(body)

    async def _records(self, request: web.Request) -> web.Response:
        return self._json([self.store[k] for k in sorted(self.store)])

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except ValueError:
            raise Refused(400, "body is not JSON") from None

    async def _adjust(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, list):
            raise Refused(400, "expected a list of endpoints")
        out = []
        for obj in body:
            ep = self._normalise(obj)
            ep["recordTTL"] = max(ep["recordTTL"], self.min_ttl)
            out.append(ep)
        return self._json(out)

    async def _apply(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise Refused(400, "expected a changes object")
        self.posts.append(body)
        lists = {k: _get(body, k) or [] for k in ("create", "updateOld", "updateNew", "delete")}
        if len(lists["updateOld"]) != len(lists["updateNew"]):
            raise Refused(400, "updateOld and updateNew differ in length")
        state = dict(self.store)
        parsed = {k: [self._normalise(o) for o in v] for k, v in lists.items()}
        for ep in [e for k in parsed for e in parsed[k]]:
            if not self._matches(ep["dnsName"]):
                raise Refused(400, f"{ep['dnsName']} is outside the domain filter")
            if ep["dnsName"] in self.rejected:
                raise Refused(400, f"{ep['dnsName']}: refused by the provider")
        for ep in parsed["delete"] + parsed["updateOld"]:
            if state.get(self._key(ep)) != ep:
                raise Refused(409, f"{ep['dnsName']} {ep['recordType']}: not found as given")
            del state[self._key(ep)]
        for ep in parsed["create"] + parsed["updateNew"]:
            if self._key(ep) in state:
                raise Refused(409, f"{ep['dnsName']} {ep['recordType']}: already exists")
            state[self._key(ep)] = ep
        names: dict[str, set[str]] = {}
        for name, rtype, _ in state:
            names.setdefault(name, set()).add(rtype)
        for name, types in names.items():
            if "CNAME" in types and len(types) > 1:
                raise Refused(409, f"{name}: CNAME beside other data")
        self.store = state
        return web.Response(status=204)
