"""Request matching through the compiled table: the conformance suite's HTTPRoute cases.

Each manifest follows the corresponding kubernetes-sigs/gateway-api conformance test
(httproute-<name>.yaml); expectations are the responses those tests require.
"""

from __future__ import annotations

import pytest

from ingressfed.gateway.state import GatewayState
from tests.gateway.world import CLASS, SAME_NAMESPACE_GATEWAY, service, state

SERVICES = [service(f"infra-backend-v{i}", "east") for i in (1, 2, 3)]


def backend(
    st: GatewayState,
    host: str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: str = "",
    port: int = 80,
) -> str | None:
    m = st.table.match(
        port=port,
        host=host,
        method=method,
        path=path,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query=query,
    )
    if m is None:
        return None
    picked = m.action.pick(0.0)
    assert picked is not None
    return picked.service.split("/")[1].split(":")[0]


def route(name: str, body: str) -> str:
    return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: infra, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z"}}
spec:
  parentRefs: [{{name: same-namespace}}]
{body}
"""


def world(*routes: str, gateway: str = SAME_NAMESPACE_GATEWAY) -> GatewayState:
    return state(CLASS + "---" + gateway + "".join(routes), services=SERVICES)


EXACT = route(
    "exact-matching",
    """
  rules:
  - matches: [{path: {type: Exact, value: /}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: Exact, value: /v2}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "infra-backend-v1"),
        ("/v2", "infra-backend-v2"),
        ("/v2/example", None),
        ("/v2/", None),
        ("/foo", None),
    ],
)
def test_exact_path_matching(path: str, expected: str | None) -> None:
    assert backend(world(EXACT), "example.com", path) == expected


PREFIX = route(
    "path-matching",
    """
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v2}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v3/}}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
""",
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "infra-backend-v1"),
        ("/v2", "infra-backend-v2"),
        ("/v2/", "infra-backend-v2"),
        ("/v2/example", "infra-backend-v2"),
        ("/v2example", "infra-backend-v1"),  # element-wise: /v2 is not a prefix of /v2example
        ("/v3", "infra-backend-v3"),  # a trailing slash in the prefix is ignored
        ("/v3/one", "infra-backend-v3"),
        ("/v3example", "infra-backend-v1"),
    ],
)
def test_path_prefix_matching(path: str, expected: str) -> None:
    assert backend(world(PREFIX), "example.com", path) == expected


HEADERS = route(
    "header-matching",
    """
  rules:
  - matches: [{headers: [{name: version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{headers: [{name: version, value: two}, {name: color, value: orange}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: color, value: blue}]}, {headers: [{name: color, value: green}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: color, value: red}]}, {headers: [{name: color, value: yellow}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Version": "one"}, "infra-backend-v1"),
        ({"Version": "two"}, "infra-backend-v2"),
        ({"Version": "two", "Color": "orange"}, "infra-backend-v1"),  # more header matches win
        ({"Version": "three", "Color": "orange"}, None),
        ({"Color": "blue"}, "infra-backend-v1"),
        ({"Color": "green"}, "infra-backend-v1"),
        ({"Color": "red"}, "infra-backend-v2"),
        ({"Color": "yellow"}, "infra-backend-v2"),
        ({"Color": "purple"}, None),
        ({"Version": "ONE"}, None),  # values are case-sensitive, names are not
        ({}, None),
    ],
)
def test_header_matching(headers: dict[str, str], expected: str | None) -> None:
    assert backend(world(HEADERS), "example.com", "/", headers=headers) == expected


QUERY = route(
    "query-param-matching",
    """
  rules:
  - matches: [{queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{queryParams: [{name: ANIMAL, value: Whale}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{queryParams: [{name: id, type: RegularExpression, value: "[0-9]+"}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("animal=whale", "infra-backend-v1"),
        ("animal=dolphin", "infra-backend-v2"),
        ("animal=dolphin&color=blue", "infra-backend-v3"),
        ("ANIMAL=Whale", "infra-backend-v3"),  # names are case-sensitive
        ("animal=whale&otherparam=irrelevant", "infra-backend-v1"),
        ("animal=dolphin&color=yellow", "infra-backend-v2"),
        ("color=blue", None),
        ("animal=whale&animal=dolphin", "infra-backend-v1"),  # repeated: the first value counts
        ("id=42", "infra-backend-v2"),
        ("id=42x", None),
        ("", None),
    ],
)
def test_query_param_matching(query: str, expected: str | None) -> None:
    assert backend(world(QUERY), "example.com", "/", query=query) == expected


METHOD = route(
    "method-matching",
    """
  rules:
  - matches: [{method: POST}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{method: GET}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path1}, method: GET}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: one}], method: PUT}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path2}, headers: [{name: version, value: two}], method: POST}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches:
    - {path: {type: PathPrefix, value: /path3}, method: PATCH}
    - {path: {type: PathPrefix, value: /path4}, method: DELETE}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path5}, method: PATCH}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path5}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
)


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("POST", "/", {}, "infra-backend-v1"),
        ("GET", "/", {}, "infra-backend-v2"),
        ("HEAD", "/", {}, None),
        ("GET", "/path1", {}, "infra-backend-v1"),
        ("PUT", "/", {"version": "one"}, "infra-backend-v2"),
        ("POST", "/path2", {"version": "two"}, "infra-backend-v3"),
        ("PATCH", "/path3", {}, "infra-backend-v1"),
        ("DELETE", "/path4", {}, "infra-backend-v1"),
        ("PATCH", "/path5", {}, "infra-backend-v1"),  # a method match beats none at equal path
        ("GET", "/path5", {}, "infra-backend-v2"),
        ("DELETE", "/path3", {}, None),
        ("PUT", "/", {}, None),
    ],
)
def test_method_matching(method: str, path: str, headers: dict[str, str], expected: str | None) -> None:
    assert backend(world(METHOD), "example.com", path, method=method, headers=headers) == expected


def test_matching_across_routes() -> None:
    """HTTPRouteMatchingAcrossRoutes: rules of routes sharing a host compete by precedence."""
    part1 = route(
        "matching-part1",
        """
  hostnames: [example.com, example.net]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
""",
    )
    part2 = route(
        "matching-part2",
        """
  hostnames: ["*.com"]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
    )
    st = world(part1, part2)
    assert backend(st, "example.com", "/") == "infra-backend-v1"
    assert backend(st, "example.com", "/example") == "infra-backend-v1"
    assert backend(st, "example.net", "/example") == "infra-backend-v1"
    assert backend(st, "example.com", "/example", headers={"Version": "one"}) == "infra-backend-v1"
    assert backend(st, "example.com", "/v2") == "infra-backend-v2"
    assert backend(st, "example.net", "/v2") == "infra-backend-v1"  # v2 is limited to *.com
    assert backend(st, "example.com", "/v2/example") == "infra-backend-v2"
    assert backend(st, "example.com", "/", headers={"Version": "two"}) == "infra-backend-v2"
    assert backend(st, "other.com", "/v2") == "infra-backend-v2"
    assert backend(st, "other.com", "/") is None
    assert backend(st, "other.org", "/v2") is None


def test_equal_matches_across_routes_oldest_route_wins_then_name() -> None:
    body = """
  rules:
  - matches: [{path: {type: PathPrefix, value: /same}}]
    backendRefs: [{name: %s, port: 8080}]
"""
    older = route("zzz-older", body % "infra-backend-v1").replace(
        "2026-01-01T00:00:00Z", "2025-06-01T00:00:00Z"
    )
    newer_a = route("aaa-newer", body % "infra-backend-v2")
    newer_b = route("bbb-newer", body % "infra-backend-v3")
    assert backend(world(newer_b, newer_a, older), "example.com", "/same") == "infra-backend-v1"
    assert backend(world(newer_b, newer_a), "example.com", "/same") == "infra-backend-v2"


def test_within_a_route_the_first_rule_wins_a_tie() -> None:
    r = route(
        "ties",
        """
  rules:
  - matches: [{path: {type: PathPrefix, value: /t}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /t}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
""",
    )
    assert backend(world(r), "example.com", "/t") == "infra-backend-v2"


def test_precedence_exact_then_longest_prefix_then_method_headers_query() -> None:
    r = route(
        "precedence",
        """
  rules:
  - matches:
    - path: {type: PathPrefix, value: /a}
      headers: [{name: x, value: "1"}]
      queryParams: [{name: q, value: "1"}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /a/b}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: Exact, value: /a/b/c}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches:
    - path: {type: PathPrefix, value: /q}
      queryParams: [{name: a, value: "1"}, {name: b, value: "1"}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /q}, headers: [{name: h, value: "1"}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
""",
    )
    st = world(r)
    h = {"x": "1"}
    assert backend(st, "example.com", "/a/b/c", headers=h, query="q=1") == "infra-backend-v1"
    assert backend(st, "example.com", "/a/b/d", headers=h, query="q=1") == "infra-backend-v2"
    assert backend(st, "example.com", "/a/x", headers=h, query="q=1") == "infra-backend-v3"
    # one header match beats two query matches
    assert backend(st, "example.com", "/q", headers={"h": "1"}, query="a=1&b=1") == "infra-backend-v2"
    assert backend(st, "example.com", "/q", query="a=1&b=1") == "infra-backend-v3"


def test_regular_expression_paths_rank_after_exact_and_before_prefixes() -> None:
    r = route(
        "regex",
        """
  rules:
  - matches: [{path: {type: RegularExpression, value: "/users/[0-9]+"}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: Exact, value: /users/0}}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /users}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: agent, type: RegularExpression, value: "curl/.*"}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
""",
    )
    st = world(r)
    assert backend(st, "example.com", "/users/42") == "infra-backend-v2"
    assert backend(st, "example.com", "/users/0") == "infra-backend-v3"
    assert backend(st, "example.com", "/users/42/x") == "infra-backend-v1"  # the regex matches whole paths
    assert backend(st, "example.com", "/users/abc") == "infra-backend-v1"
    assert backend(st, "example.com", "/", headers={"Agent": "curl/8.5"}) == "infra-backend-v3"
    assert backend(st, "example.com", "/", headers={"Agent": "wget"}) is None


HOSTNAME_INTERSECTION_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra, generation: 1}
spec:
  gatewayClassName: ingressfed
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, hostname: very.specific.com}
  - {name: listener-2, port: 80, protocol: HTTP, hostname: "*.wildcard.io"}
  - {name: listener-3, port: 80, protocol: HTTP, hostname: "*.anotherwildcard.io"}
"""


def hostname_intersection_world() -> GatewayState:
    def r(name: str, hostnames: str, prefix: str, svc: str) -> str:
        return route(
            name,
            f"""
  hostnames: {hostnames}
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]
    backendRefs: [{{name: {svc}, port: 8080}}]
""",
        )

    return world(
        r(
            "specific-host-matches-listener-specific-host",
            '[non.matching.com, "*.nonmatchingwildcard.io", very.specific.com]',
            "/s1",
            "infra-backend-v1",
        ),
        r(
            "specific-host-matches-listener-wildcard-host",
            "[non.matching.com, wildcard.io, foo.wildcard.io, bar.wildcard.io, foo.bar.wildcard.io]",
            "/s2",
            "infra-backend-v2",
        ),
        r(
            "wildcard-host-matches-listener-specific-host",
            '[non.matching.com, "*.specific.com"]',
            "/s3",
            "infra-backend-v3",
        ),
        r(
            "wildcard-host-matches-listener-wildcard-host",
            '["*.anotherwildcard.io"]',
            "/s4",
            "infra-backend-v1",
        ),
        r("no-intersecting-hosts", "[specific.but.wrong.com, wildcard.io]", "/s5", "infra-backend-v2"),
        gateway=HOSTNAME_INTERSECTION_GATEWAY,
    )


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("very.specific.com", "/s1", "infra-backend-v1"),
        ("non.matching.com", "/s1", None),
        ("foo.nonmatchingwildcard.io", "/s1", None),
        ("foo.wildcard.io", "/s2", "infra-backend-v2"),
        ("bar.wildcard.io", "/s2", "infra-backend-v2"),
        ("foo.bar.wildcard.io", "/s2", "infra-backend-v2"),
        ("non.matching.com", "/s2", None),
        ("wildcard.io", "/s2", None),
        ("very.specific.com", "/s3", "infra-backend-v3"),
        ("non.matching.com", "/s3", None),
        ("foo.anotherwildcard.io", "/s4", "infra-backend-v1"),
        ("specific.but.wrong.com", "/s5", None),
        ("wildcard.io", "/s5", None),
    ],
)
def test_hostname_intersection(host: str, path: str, expected: str | None) -> None:
    assert backend(hostname_intersection_world(), host, path) == expected


LISTENER_HOSTNAMES_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra, generation: 1}
spec:
  gatewayClassName: ingressfed
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, hostname: bar.com}
  - {name: listener-2, port: 80, protocol: HTTP, hostname: foo.bar.com}
  - {name: listener-3, port: 80, protocol: HTTP, hostname: "*.bar.com"}
  - {name: listener-4, port: 80, protocol: HTTP, hostname: "*.foo.com"}
"""


def test_listener_hostname_matching() -> None:
    """HTTPRouteListenerHostnameMatching: routes without hostnames take their listener's."""

    def r(name: str, sections: str, svc: str) -> str:
        return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: infra}}
spec:
  parentRefs: {sections}
  rules:
  - backendRefs: [{{name: {svc}, port: 8080}}]
"""

    st = world(
        r("backend-v1", "[{name: same-namespace, sectionName: listener-1}]", "infra-backend-v1"),
        r("backend-v2", "[{name: same-namespace, sectionName: listener-2}]", "infra-backend-v2"),
        r(
            "backend-v3",
            "[{name: same-namespace, sectionName: listener-3},"
            " {name: same-namespace, sectionName: listener-4}]",
            "infra-backend-v3",
        ),
        gateway=LISTENER_HOSTNAMES_GATEWAY,
    )
    assert backend(st, "bar.com", "/") == "infra-backend-v1"
    assert backend(st, "foo.bar.com", "/") == "infra-backend-v2"
    assert backend(st, "baz.bar.com", "/") == "infra-backend-v3"
    assert backend(st, "boo.bar.com", "/") == "infra-backend-v3"
    assert backend(st, "multiple.prefixes.bar.com", "/") == "infra-backend-v3"
    assert backend(st, "multiple.prefixes.foo.com", "/") == "infra-backend-v3"
    assert backend(st, "foo.com", "/") is None
    assert backend(st, "no.matching.host", "/") is None


def test_routes_only_serve_on_their_listener_port() -> None:
    gw = SAME_NAMESPACE_GATEWAY + "  - {name: http-8080, port: 8080, protocol: HTTP}\n"
    r = """
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: only-8080, namespace: infra}
spec:
  parentRefs: [{name: same-namespace, sectionName: http-8080}]
  rules:
  - backendRefs: [{name: infra-backend-v1, port: 8080}]
"""
    st = state(CLASS + "---" + gw + r, services=SERVICES, served_ports={"HTTP": frozenset({80, 8080})})
    assert backend(st, "example.com", "/", port=8080) == "infra-backend-v1"
    assert backend(st, "example.com", "/", port=80) is None
