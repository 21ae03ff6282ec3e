"""A fake of the Google Cloud DNS v1 REST API on loopback, strict where the real one is.

Served paths (under ``/dns/v1``), as the real google-cloud-dns client calls them:
``GET projects/{p}/managedZones`` and ``.../managedZones/{z}``,
``GET .../managedZones/{z}/rrsets`` (``maxResults``/``pageToken``, ``name``/``type`` filters),
``POST .../managedZones/{z}/changes`` and ``GET .../changes/{id}``.

Rules enforced on a Change, all or nothing:
- names are absolute (trailing dot) and inside the zone; types known; ttl >= 0; rrdatas non-empty and
  valid for the type (addresses parse, CNAME/NS targets absolute);
- each deletion must equal a current set exactly (name, type, ttl and rrdatas) -> else 404 notFound
  (absent) or 412 conditionNotMet (differs);
- deletions apply first, then an addition of a (name, type) still present -> 409 alreadyExists;
- the result may not hold a CNAME beside other data, SOA outside the apex, or lose the apex SOA/NS;
- a set has either ``rrdatas`` or a ``routingPolicy`` (``geo`` items by GCP region, ``wrr`` items by
  weight, or ``primaryBackup``), never both; geo locations are distinct GCP regions; a deletion
  must match the routing policy exactly too;
- TXT data: each character-string at most 255 characters (longer text is several quoted strings).
Errors use Google's JSON error body. Faults: ``fail_next(status, count)``; ``rejected`` (names
refused with 400); ``before_next_change(fn)`` runs ``fn(fake)`` just before the next Change(s) is
evaluated (a concurrent writer).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

KNOWN_TYPES = {"A", "AAAA", "CNAME", "TXT", "NS", "SOA", "MX", "SRV", "CAA", "PTR"}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def response(self) -> web.Response:
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"domain": "global", "reason": self.reason, "message": self.message}],
            }
        }
        return web.json_response(body, status=self.code)


Key = tuple[str, str]


@dataclass
class Zone:
    name: str
    dns_name: str
    id: str
    rrsets: dict[Key, dict[str, Any]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        return {
            "kind": "dns#managedZone",
            "name": self.name,
            "dnsName": self.dns_name,
            "id": self.id,
            "description": "",
            "nameServers": ["ns-cloud-a1.googledomains.com."],
            "creationTime": "2026-01-01T00:00:00.000Z",
            "visibility": "public",
        }


@dataclass
class FakeCloudDNS:
    page_size: int = 100
    zones: dict[tuple[str, str], Zone] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    pending_polls: int = 0  # how many GETs of a new change answer "pending" before "done"
    _faults: list[int] = field(default_factory=list)
    _before_change: list[list[Any]] = field(default_factory=list)  # [fn, remaining]
    rejected: set[str] = field(default_factory=set)  # names (with dot) refused with 400 in any Change
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""

    # -- control ----------------------------------------------------------------------------------

    def add_zone(self, project: str, name: str, dns_name: str) -> Zone:
        z = Zone(name, dns_name, str(next(self._ids)))
        z.rrsets[(dns_name, "SOA")] = _rrset(
            dns_name,
            "SOA",
            21600,
            ["ns-cloud-a1.googledomains.com. dns-admin.google.com. 1 21600 3600 259200 300"],
        )
        z.rrsets[(dns_name, "NS")] = _rrset(dns_name, "NS", 21600, ["ns-cloud-a1.googledomains.com."])
        self.zones[(project, name)] = z
        return z

    def fail_next(self, status: int, count: int = 1) -> None:
        self._faults.extend([status] * count)

    def before_next_change(self, fn: Callable[[FakeCloudDNS], None], *, times: int = 1) -> None:
        """Run ``fn`` just before each of the next ``times`` Changes is evaluated."""
        self._before_change.append([fn, times])

    def put(self, project: str, zone: str, name: str, rtype: str, ttl: int, rrdatas: list[str]) -> None:
        """Write a set directly, as another writer would."""
        self.zones[(project, zone)].rrsets[(name, rtype)] = _rrset(name, rtype, ttl, rrdatas)

    def put_raw(self, project: str, zone: str, rrset: dict[str, Any]) -> None:
        """Write any set (e.g. one with a routing policy) directly, as another writer would."""
        z = self.zones[(project, zone)]
        checked = self._validate(z, rrset, "rrset")
        z.rrsets[(checked["name"], checked["type"])] = checked

    def change_sizes(self) -> list[int]:
        """Record sets touched by each accepted Change, in order."""
        out = []
        for z in self.zones.values():
            for ch in z.changes:
                out.append(len({(r["name"], r["type"]) for r in ch["additions"] + ch["deletions"]}))
        return out

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.endswith(suffix))

    # -- server -----------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeCloudDNS:
        app = web.Application(middlewares=[self._middleware])
        base = "/dns/v1/projects/{project}/managedZones"
        app.router.add_get(base, self._list_zones)
        app.router.add_get(base + "/{zone}", self._get_zone)
        app.router.add_get(base + "/{zone}/rrsets", self._list_rrsets)
        app.router.add_post(base + "/{zone}/changes", self._create_change)
        app.router.add_get(base + "/{zone}/changes/{id}", self._get_change)
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

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self._faults:
            status = self._faults.pop(0)
            reason = "rateLimitExceeded" if status == 429 else "backendError"
            return ApiError(status, reason, f"injected fault {status}").response()
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except ApiError as e:
            return e.response()

    def _zone(self, request: web.Request) -> Zone:
        key = (request.match_info["project"], request.match_info["zone"])
        z = self.zones.get(key)
        if z is None:
            raise ApiError(
                404, "notFound", f"The 'parameters.managedZone' resource named '{key[1]}' does not exist."
            )
        return z

    async def _list_zones(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        zones = [z.resource() for (p, _), z in sorted(self.zones.items()) if p == project]
        if "dnsName" in request.query:
            zones = [z for z in zones if z["dnsName"] == request.query["dnsName"]]
        return web.json_response(self._page(request, zones, "managedZones", "dns#managedZonesListResponse"))

    async def _get_zone(self, request: web.Request) -> web.Response:
        return web.json_response(self._zone(request).resource())

    async def _list_rrsets(self, request: web.Request) -> web.Response:
        z = self._zone(request)
        items = [z.rrsets[k] for k in sorted(z.rrsets)]
        if "name" in request.query:
            items = [r for r in items if r["name"] == request.query["name"]]
        if "type" in request.query:
            items = [r for r in items if r["type"] == request.query["type"]]
        return web.json_response(self._page(request, items, "rrsets", "dns#resourceRecordSetsListResponse"))

    def _page(self, request: web.Request, items: list[dict[str, Any]], key: str, kind: str) -> dict[str, Any]:
        try:
            size = min(int(request.query.get("maxResults", self.page_size)), self.page_size)
            start = int(request.query.get("pageToken", "0"))
        except ValueError as e:
            raise ApiError(400, "invalid", "Invalid value for maxResults or pageToken") from e
        if size <= 0 or start < 0:
            raise ApiError(400, "invalid", "Invalid value for maxResults or pageToken")
        out: dict[str, Any] = {"kind": kind, key: items[start : start + size]}
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out

    async def _get_change(self, request: web.Request) -> web.Response:
        z = self._zone(request)
        for ch in z.changes:
            if ch["id"] == request.match_info["id"]:
                if ch.get("_polls", 0) > 0:
                    ch["_polls"] -= 1
                    if ch["_polls"] == 0:
                        ch["status"] = "done"
                return web.json_response({k: v for k, v in ch.items() if not k.startswith("_")})
        raise ApiError(
            404,
            "notFound",
            f"The 'parameters.changeId' resource named '{request.match_info['id']}' does not exist.",
        )

    async def _create_change(self, request: web.Request) -> web.Response:
        z = self._zone(request)
        try:
            body = json.loads(await request.read())
        except ValueError as e:
            raise ApiError(400, "parseError", "Parse Error") from e
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "Parse Error")
        for hook in self._before_change:
            hook[0](self)
            hook[1] -= 1
        self._before_change = [h for h in self._before_change if h[1] > 0]
        additions = body.get("additions") or []
        deletions = body.get("deletions") or []
        if not additions and not deletions:
            raise ApiError(400, "required", "The 'entity.change' parameter is required but was missing.")
        adds = [self._validate(z, r, f"entity.change.additions[{i}]") for i, r in enumerate(additions)]
        dels = [self._validate(z, r, f"entity.change.deletions[{i}]") for i, r in enumerate(deletions)]
        state = dict(z.rrsets)
        for i, d in enumerate(dels):
            k = (d["name"], d["type"])
            cur = state.get(k)
            if cur is None:
                raise ApiError(
                    404,
                    "notFound",
                    f"The 'entity.change.deletions[{i}]' resource named "
                    f"'{d['name']} ({d['type']})' does not exist.",
                )
            if cur["ttl"] != d["ttl"] or _content(cur) != _content(d):
                raise ApiError(
                    412,
                    "conditionNotMet",
                    f"Precondition not met for 'entity.change.deletions[{i}]'",
                )
            del state[k]
        for i, a in enumerate(adds):
            k = (a["name"], a["type"])
            if k in state:
                raise ApiError(
                    409,
                    "alreadyExists",
                    f"The resource 'entity.change.additions[{i}]' named "
                    f"'{a['name']} ({a['type']})' already exists",
                )
            state[k] = a
        self._check_zone_rules(z, state)
        z.rrsets = state
        ch = {
            "kind": "dns#change",
            "id": str(next(self._ids)),
            "startTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "status": "pending" if self.pending_polls else "done",
            "additions": adds,
            "deletions": dels,
            "_polls": self.pending_polls,
        }
        z.changes.append(ch)
        return web.json_response({k: v for k, v in ch.items() if not k.startswith("_")})

    def _validate(self, z: Zone, r: Any, where: str) -> dict[str, Any]:
        if not isinstance(r, dict):
            raise ApiError(400, "invalid", f"Invalid value for '{where}'")
        name, rtype, ttl, rrdatas = r.get("name"), r.get("type"), r.get("ttl"), r.get("rrdatas")
        policy = r.get("routingPolicy")
        if not isinstance(name, str) or not name.endswith("."):
            raise ApiError(400, "invalid", f"Invalid value for '{where}.name': '{name}'")
        name = name.lower()
        if name != z.dns_name and not name.endswith("." + z.dns_name):
            raise ApiError(
                400, "invalid", f"The resource '{where}' named '{name}' is not within the zone '{z.dns_name}'"
            )
        if name in self.rejected:
            raise ApiError(400, "invalid", f"Invalid value for '{where}': refused for '{name}'")
        if rtype not in KNOWN_TYPES:
            raise ApiError(400, "invalid", f"Invalid value for '{where}.type': '{rtype}'")
        # Google's JSON mapping takes an int32 as a number or a decimal string (the client sends strings).
        if isinstance(ttl, str) and ttl.isdigit():
            ttl = int(ttl)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2**31 - 1:
            raise ApiError(400, "invalid", f"Invalid value for '{where}.ttl': '{ttl}'")
        if rtype == "SOA" and name != z.dns_name:
            raise ApiError(400, "invalid", f"The resource '{where}': SOA only at the zone apex")
        out: dict[str, Any] = {"kind": "dns#resourceRecordSet", "name": name, "type": rtype, "ttl": ttl}
        if policy is not None:
            if rrdatas:
                raise ApiError(
                    400,
                    "invalid",
                    f"The resource '{where}' has both rrdatas and a routingPolicy; "
                    "rrdatas must be empty when routingPolicy is set",
                )
            out["routingPolicy"] = _routing_policy(rtype, policy, f"{where}.routingPolicy")
            return out
        _check_rrdatas(rtype, rrdatas, where)
        if rtype == "CNAME" and len(rrdatas) != 1:
            raise ApiError(400, "invalid", f"The resource '{where}' is a CNAME with more than one rrdata")
        out["rrdatas"] = list(rrdatas)
        return out

    @staticmethod
    def _check_zone_rules(z: Zone, state: dict[Key, dict[str, Any]]) -> None:
        types_at: dict[str, set[str]] = {}
        for name, rtype in state:
            types_at.setdefault(name, set()).add(rtype)
        for name, types in types_at.items():
            if "CNAME" in types and len(types) > 1:
                raise ApiError(
                    400,
                    "cnameResourceRecordSetConflict",
                    f"The resource record set '{name} (CNAME)' cannot exist alongside other resource "
                    "record sets at the same name",
                )
        if (z.dns_name, "SOA") not in state or (z.dns_name, "NS") not in state:
            raise ApiError(400, "invalid", "The zone apex must keep exactly one SOA and one NS record set")


def _rrset(name: str, rtype: str, ttl: int, rrdatas: list[str]) -> dict[str, Any]:
    return {
        "kind": "dns#resourceRecordSet",
        "name": name,
        "type": rtype,
        "ttl": ttl,
        "rrdatas": list(rrdatas),
    }


# GCP region names (``us-east1``): what geo routing policy items are keyed by.
_GCP_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


def _check_rrdatas(rtype: str, rrdatas: Any, where: str) -> None:
    if not isinstance(rrdatas, list) or not rrdatas or not all(isinstance(v, str) for v in rrdatas):
        raise ApiError(400, "required", f"The '{where}.rrdatas' parameter is required but was missing.")
    if len(set(rrdatas)) != len(rrdatas):
        raise ApiError(400, "invalid", f"The resource '{where}' has duplicate rrdatas")
    for v in rrdatas:
        if not _valid_rdata(rtype, v):
            raise ApiError(400, "invalidRecordData", f"Invalid record data for '{where}': '{v}'")
        if rtype == "TXT" and any(len(part) > 255 for part in _txt_strings(v)):
            raise ApiError(
                400,
                "invalidRecordData",
                f"Invalid record data for '{where}': a TXT character-string is longer than 255 characters",
            )


def _txt_strings(v: str) -> list[str]:
    """The character-strings of TXT presentation data: quoted strings, or one unquoted word run."""
    if not v.startswith('"'):
        return [v]
    return re.findall(r'"((?:[^"\\]|\\.)*)"', v)


def _routing_policy(rtype: str, policy: Any, where: str) -> dict[str, Any]:
    if not isinstance(policy, dict):
        raise ApiError(400, "invalid", f"Invalid value for '{where}'")
    kinds = [k for k in ("geo", "wrr", "primaryBackup") if k in policy]
    if len(kinds) != 1:
        raise ApiError(400, "invalid", f"'{where}' needs exactly one of geo, wrr, primaryBackup")
    kind = kinds[0]
    body = policy[kind]
    if kind == "primaryBackup":
        return {"kind": "dns#rRSetRoutingPolicy", kind: body}
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ApiError(400, "required", f"The '{where}.{kind}.items' parameter is required but was missing.")
    seen: set[str] = set()
    out_items = []
    for i, item in enumerate(items):
        at = f"{where}.{kind}.items[{i}]"
        if not isinstance(item, dict):
            raise ApiError(400, "invalid", f"Invalid value for '{at}'")
        _check_rrdatas(rtype, item.get("rrdatas"), at)
        if kind == "geo":
            loc = item.get("location")
            if not isinstance(loc, str) or not _GCP_REGION.match(loc):
                raise ApiError(400, "invalid", f"Invalid value for '{at}.location': '{loc}'")
            if loc in seen:
                raise ApiError(400, "invalid", f"'{at}.location': '{loc}' appears twice")
            seen.add(loc)
            out_items.append(
                {
                    "kind": "dns#rRSetRoutingPolicyGeoPolicyGeoPolicyItem",
                    "location": loc,
                    "rrdatas": item["rrdatas"],
                }
            )
        else:
            weight = item.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ApiError(400, "invalid", f"Invalid value for '{at}.weight': '{weight}'")
            out_items.append(
                {
                    "kind": "dns#rRSetRoutingPolicyWrrPolicyWrrPolicyItem",
                    "weight": weight,
                    "rrdatas": item["rrdatas"],
                }
            )
    inner: dict[str, Any] = {"kind": f"dns#rRSetRoutingPolicy{'GeoPolicy' if kind == 'geo' else 'WrrPolicy'}"}
    inner["items"] = out_items
    if kind == "geo" and "enableFencing" in body:
        inner["enableFencing"] = bool(body["enableFencing"])
    return {"kind": "dns#rRSetRoutingPolicy", kind: inner}


def _content(rrset: dict[str, Any]) -> Any:
    """What a deletion must match: the data, or the routing policy (``kind`` fields aside)."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "kind"}
        if isinstance(v, list):
            return sorted((strip(x) for x in v), key=json.dumps)
        return v

    return strip({"rrdatas": rrset.get("rrdatas") or [], "routingPolicy": rrset.get("routingPolicy")})


def _valid_rdata(rtype: str, v: str) -> bool:
    try:
        if rtype == "A":
            ipaddress.IPv4Address(v)
        elif rtype == "AAAA":
            ipaddress.IPv6Address(v)
        elif rtype in ("CNAME", "NS", "PTR"):
            return v.endswith(".") and ".." not in v and len(v) <= 254
        elif rtype == "TXT":
            return len(v) > 0
    except ValueError:
        return False
    return bool(v)
