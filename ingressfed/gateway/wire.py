"""Served HTTPRoute rules on the controller -> data-plane feed: encoding and strict decoding.

Actions (what a rule does) are listed once and referenced by index from each served match, so
a rule with many matches, served on several hostnames, travels once. Decoding checks every field
and raises :class:`RulesFormatError` naming the path of the first bad one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ingressfed.gateway.parse import REDIRECT_CODES, compile_regex
from ingressfed.gateway.resources import (
    HeaderMatch,
    HeaderModifier,
    Match,
    PathMatch,
    PathModifier,
    QueryMatch,
    RequestRedirect,
    URLRewrite,
)
from ingressfed.gateway.table import RouteAction, ServedRule, WeightedBackend
from ingressfed.model import Backend

__all__ = ["RulesFormatError", "rules_from_wire", "rules_to_wire"]


class RulesFormatError(ValueError):
    pass


def _mods(m: HeaderModifier | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {"set": [list(p) for p in m.set], "add": [list(p) for p in m.add], "remove": list(m.remove)}


def _pmod(p: PathModifier | None) -> dict[str, Any] | None:
    return None if p is None else {"type": p.type, "value": p.value}


def _action(a: RouteAction) -> dict[str, Any]:
    return {
        "route": a.route,
        "rule": a.rule,
        "requestHeaders": _mods(a.request_headers),
        "responseHeaders": _mods(a.response_headers),
        "redirect": None
        if a.redirect is None
        else {
            "scheme": a.redirect.scheme,
            "hostname": a.redirect.hostname,
            "port": a.redirect.port,
            "path": _pmod(a.redirect.path),
            "statusCode": a.redirect.status_code,
        },
        "rewrite": None
        if a.rewrite is None
        else {"hostname": a.rewrite.hostname, "path": _pmod(a.rewrite.path)},
        "backends": [
            {
                "weight": b.weight,
                "service": b.service,
                "error": b.error,
                "requestHeaders": _mods(b.request_headers),
                "responseHeaders": _mods(b.response_headers),
                "targets": [{"cluster": t.cluster, "host": t.host, "port": t.port} for t in b.backends],
            }
            for b in a.backends
        ],
    }


def rules_to_wire(rules: Sequence[ServedRule]) -> dict[str, Any]:
    actions: list[dict[str, Any]] = []
    index: dict[int, int] = {}
    out: list[dict[str, Any]] = []
    for r in rules:
        key = id(r.action)
        if key not in index:
            index[key] = len(actions)
            actions.append(_action(r.action))
        m = r.match
        out.append(
            {
                "port": r.port,
                "hostnames": list(r.hostnames),
                "created": r.created,
                "matchIndex": r.match_index,
                "action": index[key],
                "match": {
                    "path": {"type": m.path.type, "value": m.path.value},
                    "method": m.method,
                    "headers": [{"name": h.name, "type": h.type, "value": h.value} for h in m.headers],
                    "query": [{"name": q.name, "type": q.type, "value": q.value} for q in m.query],
                },
            }
        )
    return {"actions": actions, "rules": out}


class _R:
    def __init__(self, doc: object, path: str) -> None:
        if not isinstance(doc, Mapping):
            raise RulesFormatError(f"{path}: must be an object")
        self.doc, self.path = doc, path

    def get(self, key: str, typ: type, *, optional: bool = False) -> Any:
        value = self.doc.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise RulesFormatError(f"{self.path}.{key}: must be {typ.__name__}")
        return value

    def items(self, key: str) -> list[tuple[str, object]]:
        value = self.get(key, list)
        return [(f"{self.path}.{key}[{i}]", v) for i, v in enumerate(value)]


def _mods_from(doc: object, path: str) -> HeaderModifier | None:
    if doc is None:
        return None
    r = _R(doc, path)

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        out = []
        for p, item in r.items(key):
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                raise RulesFormatError(f"{p}: must be [name, value]")
            out.append((item[0], item[1]))
        return tuple(out)

    removes = []
    for p, item in r.items("remove"):
        if not isinstance(item, str):
            raise RulesFormatError(f"{p}: must be str")
        removes.append(item)
    return HeaderModifier(set=pairs("set"), add=pairs("add"), remove=tuple(removes))


def _pmod_from(doc: object, path: str) -> PathModifier | None:
    if doc is None:
        return None
    r = _R(doc, path)
    ptype = r.get("type", str)
    if ptype not in ("ReplaceFullPath", "ReplacePrefixMatch"):
        raise RulesFormatError(f"{path}.type: {ptype!r} is not a path modifier")
    return PathModifier(type=ptype, value=r.get("value", str))


def _action_from(doc: object, path: str) -> RouteAction:
    r = _R(doc, path)
    redirect = None
    if r.doc.get("redirect") is not None:
        rr = _R(r.doc["redirect"], f"{path}.redirect")
        code = rr.get("statusCode", int)
        if code not in REDIRECT_CODES:
            raise RulesFormatError(f"{path}.redirect.statusCode: {code} is not a redirect status")
        redirect = RequestRedirect(
            scheme=rr.get("scheme", str, optional=True),
            hostname=rr.get("hostname", str, optional=True),
            port=rr.get("port", int, optional=True),
            path=_pmod_from(rr.doc.get("path"), f"{path}.redirect.path"),
            status_code=code,
        )
    rewrite = None
    if r.doc.get("rewrite") is not None:
        rw = _R(r.doc["rewrite"], f"{path}.rewrite")
        rewrite = URLRewrite(
            hostname=rw.get("hostname", str, optional=True),
            path=_pmod_from(rw.doc.get("path"), f"{path}.rewrite.path"),
        )
    backends = []
    for bp, bdoc in r.items("backends"):
        b = _R(bdoc, bp)
        targets = []
        for tp, tdoc in b.items("targets"):
            t = _R(tdoc, tp)
            port = t.get("port", int)
            if not 0 < port < 65536:
                raise RulesFormatError(f"{tp}.port: {port} is not a port")
            targets.append(Backend(cluster=t.get("cluster", str), host=t.get("host", str), port=port))
        weight = b.get("weight", int)
        if weight < 0:
            raise RulesFormatError(f"{bp}.weight: must be >= 0")
        backends.append(
            WeightedBackend(
                weight=weight,
                service=b.get("service", str),
                backends=tuple(targets),
                error=b.get("error", str, optional=True),
                request_headers=_mods_from(b.doc.get("requestHeaders"), f"{bp}.requestHeaders"),
                response_headers=_mods_from(b.doc.get("responseHeaders"), f"{bp}.responseHeaders"),
            )
        )
    return RouteAction(
        route=r.get("route", str),
        rule=r.get("rule", int),
        backends=tuple(backends),
        request_headers=_mods_from(r.doc.get("requestHeaders"), f"{path}.requestHeaders"),
        response_headers=_mods_from(r.doc.get("responseHeaders"), f"{path}.responseHeaders"),
        redirect=redirect,
        rewrite=rewrite,
    )


def _value_matches(r: _R, key: str) -> list[tuple[str, str, str]]:
    out = []
    for p, doc in r.items(key):
        v = _R(doc, p)
        mtype = v.get("type", str)
        value = v.get("value", str)
        if mtype not in ("Exact", "RegularExpression"):
            raise RulesFormatError(f"{p}.type: {mtype!r} is not a match type")
        if mtype == "RegularExpression" and compile_regex(value) is None:
            raise RulesFormatError(f"{p}.value: not a valid regular expression")
        out.append((v.get("name", str), mtype, value))
    return out


def rules_from_wire(doc: object, path: str = "gatewayRules") -> tuple[ServedRule, ...]:
    r = _R(doc, path)
    actions = [_action_from(d, p) for p, d in r.items("actions")]
    rules: list[ServedRule] = []
    for p, d in r.items("rules"):
        s = _R(d, p)
        idx = s.get("action", int)
        if not 0 <= idx < len(actions):
            raise RulesFormatError(f"{p}.action: {idx} names no action")
        m = _R(s.doc.get("match"), f"{p}.match")
        pm = _R(m.doc.get("path"), f"{p}.match.path")
        ptype = pm.get("type", str)
        pvalue = pm.get("value", str)
        if ptype not in ("Exact", "PathPrefix", "RegularExpression"):
            raise RulesFormatError(f"{p}.match.path.type: {ptype!r} is not a path match type")
        if ptype == "RegularExpression" and compile_regex(pvalue) is None:
            raise RulesFormatError(f"{p}.match.path.value: not a valid regular expression")
        if ptype != "RegularExpression" and not pvalue.startswith("/"):
            raise RulesFormatError(f"{p}.match.path.value: must start with '/'")
        hostnames = []
        for hp, h in s.items("hostnames"):
            if not isinstance(h, str) or not h:
                raise RulesFormatError(f"{hp}: must be a hostname")
            hostnames.append(h)
        port = s.get("port", int)
        if not 0 < port < 65536:
            raise RulesFormatError(f"{p}.port: {port} is not a port")
        rules.append(
            ServedRule(
                port=port,
                hostnames=tuple(hostnames),
                match=Match(
                    path=PathMatch(type=ptype, value=pvalue),
                    headers=tuple(
                        HeaderMatch(name=n.lower(), type=t, value=v)
                        for n, t, v in _value_matches(m, "headers")
                    ),
                    query=tuple(
                        QueryMatch(name=n, type=t, value=v) for n, t, v in _value_matches(m, "query")
                    ),
                    method=m.get("method", str, optional=True),
                ),
                action=actions[idx],
                created=s.get("created", str),
                match_index=s.get("matchIndex", int),
            )
        )
    return tuple(rules)
