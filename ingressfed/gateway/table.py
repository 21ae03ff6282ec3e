"""The compiled HTTPRoute matcher: built once per route change, read by every request.

Per listener port and host, matches are indexed by their path so that a request costs a dict
lookup for the host, one for an Exact path, a scan of the (few) RegularExpression matches and
one dict lookup per path segment for PathPrefix matches; only the matches found there have their
method, headers and query parameters checked.

Precedence is the Gateway API's, across every route and member cluster: Exact path, then
RegularExpression (implementation-specific: longer patterns first), then PathPrefix with the most
characters; then a method match, more header matches, more query matches; then the more
specific hostname; then the oldest route, then ``namespace/name``; then rule and match order.
A request's host gathers the matches of every hostname that covers it (an exact name, the
wildcards above it, routes without hostnames), as conformance test HTTPRouteMatchingAcrossRoutes
requires.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl

from ingressfed.gateway.hostnames import ANY, host_matches, intersect, specificity
from ingressfed.gateway.resources import HeaderModifier, Match, RequestRedirect, URLRewrite
from ingressfed.model import Backend

__all__ = [
    "GatewayTable",
    "RouteAction",
    "RouteMatch",
    "ServedRule",
    "WeightedBackend",
    "build_gateway_table",
]


@dataclass(frozen=True, slots=True)
class WeightedBackend:
    """One backendRef: its share of the rule's traffic and where it is served.

    ``backends`` holds one target per member cluster serving the Service (ranked per client by
    the proxy); ``error`` set means the reference is invalid and requests picked here get 500.
    """

    weight: int
    service: str  # "namespace/name:port", for logs and the serving-cluster header
    backends: tuple[Backend, ...] = ()
    error: str | None = None
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None


@dataclass(frozen=True, slots=True)
class RouteAction:
    """What a matched rule does: a redirect, or forwarding to weighted backends after filters."""

    route: str  # "namespace/name"
    rule: int
    backends: tuple[WeightedBackend, ...] = ()
    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    redirect: RequestRedirect | None = None
    rewrite: URLRewrite | None = None
    total_weight: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_weight", sum(b.weight for b in self.backends))

    def pick(self, r: float) -> WeightedBackend | None:
        """The backendRef for a uniform ``r`` in [0, 1); None when every weight is 0 (answer 500)."""
        if self.total_weight <= 0:
            return None
        point = r * self.total_weight
        for b in self.backends:
            if point < b.weight:
                return b
            point -= b.weight
        return next(b for b in reversed(self.backends) if b.weight > 0)


@dataclass(frozen=True, slots=True)
class ServedRule:
    """One match of one rule, attached on one listener port with the hostnames it serves there."""

    port: int
    hostnames: tuple[str, ...]  # effective (intersected) patterns; "*" is any host
    match: Match
    action: RouteAction
    created: str  # the route's creation timestamp
    match_index: int = 0


@dataclass(frozen=True, slots=True)
class RouteMatch:
    action: RouteAction
    matched_prefix: str | None  # the PathPrefix value that matched (ReplacePrefixMatch needs it)


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    method: str | None
    headers: tuple[tuple[str, str | None, re.Pattern[str] | None], ...]
    query: tuple[tuple[str, str | None, re.Pattern[str] | None], ...]
    result: RouteMatch
    key: tuple[object, ...]

    def accepts(
        self, method: str, headers: Mapping[str, str], query: Callable[[], Mapping[str, str]]
    ) -> bool:
        if self.method is not None and self.method != method:
            return False
        for name, exact, rx in self.headers:
            got = headers.get(name)
            if got is None or (got != exact if rx is None else rx.fullmatch(got) is None):
                return False
        if self.query:
            params = query()
            for name, exact, rx in self.query:
                got = params.get(name)
                if got is None or (got != exact if rx is None else rx.fullmatch(got) is None):
                    return False
        return True


def _first(
    entries: Sequence[_Entry], method: str, headers: Mapping[str, str], query: Callable[[], Mapping[str, str]]
) -> RouteMatch | None:
    for e in entries:
        if e.accepts(method, headers, query):
            return e.result
    return None


class _Query:
    """The query string's parameters, parsed on the first match that asks (first value wins)."""

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: str) -> None:
        self._raw = raw
        self._parsed: dict[str, str] | None = None

    def __call__(self) -> Mapping[str, str]:
        if self._parsed is None:
            self._parsed = {}
            for k, v in parse_qsl(self._raw, keep_blank_values=True):
                self._parsed.setdefault(k, v)  # a repeated parameter: the first value counts
        return self._parsed


@dataclass(frozen=True, slots=True, eq=False)
class _PathIndex:
    exact: Mapping[str, tuple[_Entry, ...]]
    regex: tuple[tuple[re.Pattern[str], tuple[_Entry, ...]], ...]
    prefix: Mapping[str, tuple[_Entry, ...]]  # prefix without trailing "/" ("" is "/")

    def find(
        self, path: str, method: str, headers: Mapping[str, str], query: Callable[[], Mapping[str, str]]
    ) -> RouteMatch | None:
        entries = self.exact.get(path)
        if entries:
            got = _first(entries, method, headers, query)
            if got is not None:
                return got
        for rx, group in self.regex:
            if rx.fullmatch(path):
                got = _first(group, method, headers, query)
                if got is not None:
                    return got
        if not self.prefix:
            return None
        # Element-wise prefixes: only the path cut at a "/" can match, longest first.
        stem = path.rstrip("/")
        while True:
            bucket = self.prefix.get(stem)
            if bucket:
                got = _first(bucket, method, headers, query)
                if got is not None:
                    return got
            if not stem:
                return None
            stem = stem[: stem.rfind("/")]


@dataclass(frozen=True, slots=True, eq=False)
class _HostIndex:
    exact: Mapping[str, _PathIndex]
    wildcard: Mapping[str, _PathIndex]  # ".example.com" for "*.example.com"
    any: _PathIndex | None

    def for_host(self, host: str) -> _PathIndex | None:
        found = self.exact.get(host)
        if found is not None:
            return found
        if self.wildcard:
            dot = host.find(".")
            while dot >= 0:
                found = self.wildcard.get(host[dot:])
                if found is not None:
                    return found
                dot = host.find(".", dot + 1)
        return self.any


@dataclass(frozen=True, slots=True, eq=False)
class GatewayTable:
    ports: Mapping[int, _HostIndex]
    rules: int  # number of served matches, for logs and metrics

    def index_for(self, port: int, host: str) -> _PathIndex | None:
        """The matches a request to ``host`` on ``port`` competes among (None: no rule at all)."""
        hosts = self.ports.get(port)
        return hosts.for_host(host) if hosts is not None else None

    def match(
        self,
        *,
        port: int,
        host: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: str = "",
    ) -> RouteMatch | None:
        """The rule for a request, or None (the API says: 404).

        ``host`` is normalised (lower case, no port); ``headers`` maps lower-case names to the
        first value; ``query`` is the raw query string, parsed only if a match needs it.
        """
        index = self.index_for(port, host)
        if index is None:
            return None
        return self.match_in(index, method=method, path=path, headers=headers, query=query)

    @staticmethod
    def match_in(
        index: _PathIndex, *, method: str, path: str, headers: Mapping[str, str], query: str
    ) -> RouteMatch | None:
        """``match`` once ``index_for`` found the host's matches (callers that pre-check the host)."""
        return index.find(path, method, headers, _Query(query))


EMPTY_GATEWAY_TABLE = GatewayTable(ports={}, rules=0)


def _value_tests(
    items: Iterable[tuple[str, str, str]],
) -> tuple[tuple[str, str | None, re.Pattern[str] | None], ...]:
    return tuple(
        (name, None, _regex(v)) if t == "RegularExpression" else (name, v, None) for name, t, v in items
    )


def _entry(rule: ServedRule, pattern: str) -> _Entry:
    m = rule.match
    p = m.path
    path_key: tuple[object, ...]
    if p.type == "Exact":
        path_key = (0, 0)
    elif p.type == "RegularExpression":
        path_key = (1, -len(p.value))
    else:
        path_key = (2, -len(p.value.rstrip("/")))
    ns_name = rule.action.route
    key = (
        *path_key,
        0 if m.method else 1,
        -len(m.headers),
        -len(m.query),
        *specificity(pattern),
        rule.created or "~",
        ns_name,
        rule.action.rule,
        rule.match_index,
    )
    prefix = p.value if p.type == "PathPrefix" else None
    return _Entry(
        method=m.method,
        headers=_value_tests((h.name, h.type, h.value) for h in m.headers),
        query=_value_tests((q.name, q.type, q.value) for q in m.query),
        result=RouteMatch(action=rule.action, matched_prefix=prefix),
        key=key,
    )


def _path_index(entries: list[tuple[ServedRule, _Entry]]) -> _PathIndex:
    exact: dict[str, list[_Entry]] = {}
    regex: dict[str, list[_Entry]] = {}
    prefix: dict[str, list[_Entry]] = {}
    for rule, e in sorted(entries, key=lambda item: item[1].key):
        p = rule.match.path
        if p.type == "Exact":
            exact.setdefault(p.value, []).append(e)
        elif p.type == "RegularExpression":
            regex.setdefault(p.value, []).append(e)
        else:
            prefix.setdefault(p.value.rstrip("/"), []).append(e)
    return _PathIndex(
        exact={k: tuple(v) for k, v in exact.items()},
        regex=tuple(
            (_regex(k), tuple(v)) for k, v in sorted(regex.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        ),
        prefix={k: tuple(v) for k, v in prefix.items()},
    )


def build_gateway_table(rules: Iterable[ServedRule]) -> GatewayTable:
    """Index served rules per port and host; each host gathers every pattern that covers it."""
    per_port: dict[int, dict[str, list[tuple[ServedRule, _Entry]]]] = {}
    count = 0
    for rule in rules:
        patterns = per_port.setdefault(rule.port, {})
        for pattern in rule.hostnames:
            patterns.setdefault(pattern, []).append((rule, _entry(rule, pattern)))
            count += 1
    ports: dict[int, _HostIndex] = {}
    for port, patterns in per_port.items():
        wild = [p for p in patterns if p.startswith("*.")]
        catch_all = patterns.get(ANY, [])
        exact: dict[str, _PathIndex] = {}
        wildcard: dict[str, _PathIndex] = {}
        for pattern, own in patterns.items():
            if pattern == ANY:
                continue
            if pattern.startswith("*."):
                covering = [w for w in wild if w != pattern and intersect(w, pattern) == pattern]
            else:
                covering = [w for w in wild if host_matches(w, pattern)]
            merged = list(own) + [item for w in covering for item in patterns[w]] + list(catch_all)
            index = _path_index(merged)
            if pattern.startswith("*."):
                wildcard[pattern[1:]] = index
            else:
                exact[pattern] = index
        ports[port] = _HostIndex(
            exact=exact, wildcard=wildcard, any=_path_index(list(catch_all)) if catch_all else None
        )
    return GatewayTable(ports=ports, rules=count)
