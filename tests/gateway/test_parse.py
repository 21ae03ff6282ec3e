"""Bad Gateway API objects become problems that name the field (schema and CEL rules of v1.6.1)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ingressfed.gateway.parse import gateway_from, httproute_from, referencegrant_from


def route_doc(rules_yaml: str = "", **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "ns", "generation": 3},
        "spec": {"parentRefs": [{"name": "gw"}], **spec},
    }
    if rules_yaml:
        doc["spec"]["rules"] = yaml.safe_load(rules_yaml)
    return doc


RULE_CASES = [
    (
        "- matches: [{path: {type: PathPrefix, value: foo}}]",
        "spec.rules[0].matches[0].path.value",
        "must be an absolute path",
    ),
    (
        "- matches: [{path: {type: Exact, value: /a//b}}]",
        "spec.rules[0].matches[0].path.value",
        "must not contain '//'",
    ),
    (
        "- matches: [{path: {type: Exact, value: /a/..}}]",
        "spec.rules[0].matches[0].path.value",
        "must not end with '/..'",
    ),
    (
        "- matches: [{path: {type: PathPrefix, value: '/a%2Fb'}}]",
        "spec.rules[0].matches[0].path.value",
        "'%2F'",
    ),
    ("- matches: [{path: {type: Glob, value: /a}}]", "spec.rules[0].matches[0].path.type", "not one of"),
    (
        "- matches: [{path: {type: RegularExpression, value: '/a(['}}]",
        "spec.rules[0].matches[0].path.value",
        "regular expression",
    ),
    ("- matches: [{method: FETCH}]", "spec.rules[0].matches[0].method", "not one of"),
    (
        "- matches: [{headers: [{name: 'bad header', value: x}]}]",
        "spec.rules[0].matches[0].headers[0].name",
        "HTTP token",
    ),
    (
        "- matches: [{queryParams: [{name: q}]}]",
        "spec.rules[0].matches[0].queryParams[0].value",
        "is required",
    ),
    (
        "- backendRefs: [{name: svc}]",
        "spec.rules[0].backendRefs[0].port",
        "Must have port for Service reference",
    ),
    (
        "- backendRefs: [{name: svc, port: 80, weight: -1}]",
        "spec.rules[0].backendRefs[0].weight",
        "0..1000000",
    ),
    (
        "- filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]",
        "spec.rules[0].filters[0].requestRedirect.statusCode",
        "301, 302, 303, 307, 308",
    ),
    (
        "- filters: [{type: RequestRedirect, requestRedirect: {}}]\n  backendRefs: [{name: svc, port: 80}]",
        "spec.rules[0].filters",
        "must not be used together with backendRefs",
    ),
    (
        "- filters: [{type: RequestRedirect, requestRedirect: {}},"
        " {type: URLRewrite, urlRewrite: {hostname: a.b}}]",
        "spec.rules[0].filters",
        "not both",
    ),
    (
        "- filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}},"
        " {type: RequestHeaderModifier, requestHeaderModifier: {}}]",
        "spec.rules[0].filters",
        "cannot be repeated",
    ),
    (
        "- filters: [{type: RequestHeaderModifier}]",
        "spec.rules[0].filters[0].requestHeaderModifier",
        "must be specified",
    ),
    (
        "- filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}, urlRewrite: {}}]",
        "spec.rules[0].filters[0].urlRewrite",
        "must be nil",
    ),
    (
        "- matches: [{path: {value: /a}}, {path: {value: /b}}]\n"
        "  filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch,"
        " replacePrefixMatch: /x}}}]",
        "spec.rules[0].filters",
        "exactly one PathPrefix match",
    ),
    (
        "- filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}]",
        "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath",
        "must be specified",
    ),
    (
        "- filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}}}]",
        "spec.rules[0].filters[0].type",
        "not supported by ingressfed",
    ),
]


@pytest.mark.parametrize(("rules", "path", "words"), RULE_CASES)
def test_a_bad_rule_is_dropped_with_its_field(rules: str, path: str, words: str) -> None:
    good = "- matches: [{path: {type: PathPrefix, value: /ok}}]\n  backendRefs: [{name: svc, port: 80}]\n"
    got = httproute_from(route_doc(rules + "\n" + good), cluster="east")
    assert got.value is not None
    assert [r.index for r in got.value.spec.rules] == [1]  # the good rule stays
    assert any(p.path == path and words in p.message for p in got.problems), got.problems
    assert got.value.spec.invalid_rules


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ({"hostnames": ["Example.com"]}, "spec.hostnames[0]", "lower-case DNS name"),
        ({"hostnames": ["*"]}, "spec.hostnames[0]", "not valid"),
        (
            {"parentRefs": [{"name": "gw"}, {"name": "gw"}]},
            "spec.parentRefs",
            "sectionName must be specified",
        ),
        (
            {"parentRefs": [{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "a"}]},
            "spec.parentRefs",
            "sectionName must be unique",
        ),
        ({"parentRefs": [{"name": "gw", "port": 0}]}, "spec.parentRefs[0].port", "1..65535"),
        ({"rules": [{}] * 17}, "spec.rules", "at most 16"),
        (
            {"rules": [{"matches": [{}] * 64}, {"matches": [{}] * 64}, {"matches": [{}]}]},
            "spec.rules",
            "less than 128",
        ),
    ],
)
def test_a_bad_route_is_refused_with_its_field(spec: dict[str, Any], path: str, words: str) -> None:
    got = httproute_from(route_doc(**spec), cluster="east")
    assert got.value is None
    assert any(p.path == path and words in p.message for p in got.problems), got.problems


def test_defaults_follow_the_crd() -> None:
    got = httproute_from(route_doc(), cluster="east")
    assert got.value is not None and not got.problems
    (rule,) = got.value.spec.rules
    assert rule.matches[0].path.type == "PathPrefix" and rule.matches[0].path.value == "/"
    ref = got.value.spec.parent_refs[0]
    assert (ref.group, ref.kind, ref.namespace) == ("gateway.networking.k8s.io", "Gateway", None)
    assert got.value.meta.generation == 3


def test_repeated_header_match_names_count_once() -> None:
    got = httproute_from(
        route_doc("- matches: [{headers: [{name: Version, value: one}, {name: version, value: two}]}]"),
        cluster="east",
    )
    assert got.value is not None
    assert [(h.name, h.value) for h in got.value.spec.rules[0].matches[0].headers] == [("version", "one")]


def gw_doc(listeners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "gw", "namespace": "ns"},
        "spec": {"gatewayClassName": "ingressfed", "listeners": listeners},
    }


@pytest.mark.parametrize(
    ("listeners", "path", "words"),
    [
        ([], "spec.listeners", "at least 1"),
        (
            [{"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "a", "port": 81, "protocol": "HTTP"}],
            "spec.listeners",
            "name must be unique",
        ),
        (
            [{"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "b", "port": 80, "protocol": "HTTP"}],
            "spec.listeners",
            "port, protocol and hostname",
        ),
        ([{"name": "a", "port": 443, "protocol": "HTTPS"}], "spec.listeners[0].tls", "tls must be specified"),
        (
            [{"name": "a", "port": 80, "protocol": "HTTP", "tls": {}}],
            "spec.listeners[0].tls",
            "must not be specified",
        ),
        ([{"name": "a", "port": 70000, "protocol": "HTTP"}], "spec.listeners[0].port", "1..65535"),
        (
            [{"name": "a", "port": 80, "protocol": "HTTP", "hostname": "*"}],
            "spec.listeners[0].hostname",
            "not valid",
        ),
        (
            [
                {
                    "name": "a",
                    "port": 80,
                    "protocol": "HTTP",
                    "allowedRoutes": {"namespaces": {"from": "Selector"}},
                }
            ],
            "spec.listeners[0].allowedRoutes.namespaces.selector",
            "required when from is Selector",
        ),
    ],
)
def test_a_bad_gateway_is_refused_with_its_field(
    listeners: list[dict[str, Any]], path: str, words: str
) -> None:
    got = gateway_from(gw_doc(listeners), cluster="east")
    assert got.value is None
    assert any(p.path == path and words in p.message for p in got.problems), got.problems


def test_reference_grant_needs_from_and_to() -> None:
    got = referencegrant_from(
        {"metadata": {"name": "g", "namespace": "b"}, "spec": {"from": [], "to": []}}, cluster="east"
    )
    assert got.value is None
    assert {p.path for p in got.problems} == {"spec.from", "spec.to"}


@pytest.mark.parametrize(
    "hostile", [None, 7, "x", [], {"metadata": "x"}, {"metadata": {"name": 5}, "spec": []}]
)
def test_hostile_objects_never_raise(hostile: object) -> None:
    assert httproute_from(hostile, cluster="east").value is None
    assert gateway_from(hostile, cluster="east").value is None
    assert referencegrant_from(hostile, cluster="east").value is None


def test_rule_names_must_be_unique() -> None:
    named = "- {name: a, backendRefs: [{name: s, port: 80}]}\n- {name: a, backendRefs: [{name: s, port: 80}]}"
    got = httproute_from(route_doc(named), cluster="east")
    assert got.value is None
    assert any(p.path == "spec.rules" and "Rule name must be unique" in p.message for p in got.problems)
    ok = httproute_from(route_doc("- {name: a}\n- {name: b}"), cluster="east")
    assert ok.value is not None and [r.name for r in ok.value.spec.rules] == ["a", "b"]
