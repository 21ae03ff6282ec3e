"""Status decisions and multi-cluster merging, modelled on the conformance suite's status checks."""

from __future__ import annotations

from ingressfed.gateway.conditions import condition_dicts
from ingressfed.gateway.state import COPIES_CONFLICT
from tests.gateway.world import CLASS, SAME_NAMESPACE_GATEWAY, conditions, service, state

BASE = CLASS + "---" + SAME_NAMESPACE_GATEWAY
V1 = service("infra-backend-v1", "east")


def route(
    name: str,
    body: str,
    *,
    namespace: str = "infra",
    generation: int = 1,
    created: str = "2026-01-01T00:00:00Z",
) -> str:
    return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}, generation: {generation}, creationTimestamp: "{created}"}}
spec:
{body}
"""


SIMPLE = """
  parentRefs: [{name: same-namespace}]
  rules:
  - backendRefs: [{name: infra-backend-v1, port: 8080}]
"""


def test_accepted_route_and_programmed_gateway() -> None:
    st = state(BASE + route("r", SIMPLE), services=[V1])
    assert conditions(st, "infra/r") == {
        "Accepted": (True, "Accepted"),
        "ResolvedRefs": (True, "ResolvedRefs"),
    }
    gw = st.gateways[("east", "infra", "same-namespace")]
    assert {c.type: (c.status, c.reason) for c in gw.conditions} == {
        "Accepted": (True, "Accepted"),
        "Programmed": (True, "Programmed"),
    }
    assert gw.addresses == (("IPAddress", "192.0.2.10"),)
    (listener,) = gw.listeners
    assert listener.attached_routes == 1
    assert listener.supported_kinds == (("gateway.networking.k8s.io", "HTTPRoute"),)
    assert {c.type: c.status for c in listener.conditions} == {
        "Accepted": True,
        "ResolvedRefs": True,
        "Conflicted": False,
        "Programmed": True,
    }
    assert st.classes[("east", "ingressfed")][0].status is True


def test_observed_generation_follows_each_object() -> None:
    gw = SAME_NAMESPACE_GATEWAY.replace("generation: 1", "generation: 4")
    st = state(CLASS + "---" + gw + route("r", SIMPLE, generation=7), services=[V1])
    assert {c.observed_generation for c in st.routes[("east", "infra", "r")][0].conditions} == {7}
    gws = st.gateways[("east", "infra", "same-namespace")]
    assert {c.observed_generation for c in gws.conditions} == {4}
    assert {c.observed_generation for lst in gws.listeners for c in lst.conditions} == {4}


def test_gateway_without_global_address_is_not_programmed() -> None:
    st = state(BASE + route("r", SIMPLE), services=[V1], addresses=())
    gw = st.gateways[("east", "infra", "same-namespace")]
    programmed = next(c for c in gw.conditions if c.type == "Programmed")
    assert (programmed.status, programmed.reason) == (False, "AddressNotAssigned")


def test_gateways_of_other_classes_are_left_alone() -> None:
    other = BASE.replace("gatewayClassName: ingressfed", "gatewayClassName: someone-else")
    st = state(other + route("r", SIMPLE), services=[V1])
    assert st.gateways == {}
    assert st.routes[("east", "infra", "r")] == ()  # no parent of ours: we write no parent status
    assert st.table.rules == 0


def test_backend_not_found() -> None:
    body = SIMPLE.replace("infra-backend-v1", "nonexistent")
    st = state(BASE + route("r", body), services=[V1])
    assert conditions(st, "infra/r") == {
        "Accepted": (True, "Accepted"),
        "ResolvedRefs": (False, "BackendNotFound"),
    }
    m = st.table.match(port=80, host="example.com", method="GET", path="/", headers={})
    assert m is not None
    picked = m.action.pick(0.5)
    assert picked is not None and picked.error is not None and not picked.backends  # the proxy answers 500


def test_unknown_backend_kind() -> None:
    body = SIMPLE.replace(
        "{name: infra-backend-v1, port: 8080}", "{group: unknown.example.com, kind: Unknown, name: x}"
    )
    st = state(BASE + route("r", body), services=[V1])
    assert conditions(st, "infra/r")["ResolvedRefs"] == (False, "InvalidKind")


CROSS_NS = """
  parentRefs: [{name: same-namespace, namespace: infra}]
  rules:
  - backendRefs: [{name: web-backend, namespace: web, port: 8080}]
"""
ALL_NAMESPACES_GATEWAY = BASE.replace("from: Same", "from: All")
GRANT = """
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-infra, namespace: web}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: infra}]
  to: [{group: "", kind: Service}]
"""


def test_cross_namespace_backend_needs_a_reference_grant() -> None:
    web = service("web-backend", "east", namespace="web")
    st = state(BASE + route("r", CROSS_NS), services=[web])
    assert conditions(st, "infra/r")["ResolvedRefs"] == (False, "RefNotPermitted")
    st = state(BASE + route("r", CROSS_NS) + GRANT, services=[web])
    assert conditions(st, "infra/r")["ResolvedRefs"] == (True, "ResolvedRefs")
    m = st.table.match(port=80, host="a.example", method="GET", path="/", headers={})
    assert m is not None
    picked = m.action.pick(0.1)
    assert picked is not None and [b.cluster for b in picked.backends] == ["east"]


def test_a_grant_counts_only_in_its_own_cluster() -> None:
    web_east = service("web-backend", "east", namespace="web")
    web_west = service("web-backend", "west", namespace="web")
    st = state({"east": BASE + route("r", CROSS_NS), "west": GRANT}, services=[web_east, web_west])
    m = st.table.match(port=80, host="a.example", method="GET", path="/", headers={})
    assert m is not None
    picked = m.action.pick(0.1)
    assert picked is not None and [b.cluster for b in picked.backends] == ["west"]


def test_grant_naming_another_service_does_not_permit() -> None:
    web = service("web-backend", "east", namespace="web")
    grant = GRANT.replace('to: [{group: "", kind: Service}]', 'to: [{group: "", kind: Service, name: other}]')
    st = state(BASE + route("r", CROSS_NS) + grant, services=[web])
    assert conditions(st, "infra/r")["ResolvedRefs"] == (False, "RefNotPermitted")


OTHER_NS_ROUTE = """
  parentRefs: [{name: same-namespace, namespace: infra}]
  rules:
  - backendRefs: [{name: b, port: 80}]
"""


def test_route_from_another_namespace_not_allowed_by_listener() -> None:
    body = OTHER_NS_ROUTE
    st = state(BASE + route("r", body, namespace="other"), services=[service("b", "east", namespace="other")])
    assert conditions(st, "other/r")["Accepted"] == (False, "NotAllowedByListeners")
    assert st.table.rules == 0
    st = state(
        ALL_NAMESPACES_GATEWAY + route("r", body, namespace="other"),
        services=[service("b", "east", namespace="other")],
    )
    assert conditions(st, "other/r")["Accepted"] == (True, "Accepted")


def test_listener_selector_uses_namespace_labels() -> None:
    gw = BASE.replace("from: Same}", "from: Selector, selector: {matchLabels: {team: a}}}")
    body = OTHER_NS_ROUTE
    labels = {("east", "other"): {"team": "a"}}
    st = state(gw + route("r", body, namespace="other"), namespace_labels=labels)
    assert conditions(st, "other/r")["Accepted"] == (True, "Accepted")
    st = state(gw + route("r", body, namespace="other"), namespace_labels={("east", "other"): {"team": "b"}})
    assert conditions(st, "other/r")["Accepted"] == (False, "NotAllowedByListeners")


def test_parent_ref_to_missing_section_name() -> None:
    body = SIMPLE.replace("{name: same-namespace}", "{name: same-namespace, sectionName: nope}")
    st = state(BASE + route("r", body), services=[V1])
    assert conditions(st, "infra/r")["Accepted"] == (False, "NoMatchingParent")


def test_no_matching_listener_hostname() -> None:
    gw = BASE.replace("protocol: HTTP\n", "protocol: HTTP\n    hostname: very.specific.com\n")
    body = SIMPLE + "  hostnames: [specific.but.wrong.com, wildcard.io]\n"
    st = state(gw + route("r", body), services=[V1])
    assert conditions(st, "infra/r")["Accepted"] == (False, "NoMatchingListenerHostname")
    assert st.gateways[("east", "infra", "same-namespace")].listeners[0].attached_routes == 0


def test_listener_on_a_port_the_proxy_does_not_serve() -> None:
    gw = BASE.replace("port: 80", "port: 8081")
    st = state(gw + route("r", SIMPLE), services=[V1])
    gws = st.gateways[("east", "infra", "same-namespace")]
    accepted = {c.type: (c.status, c.reason) for c in gws.listeners[0].conditions}["Accepted"]
    assert accepted == (False, "PortUnavailable")
    assert {c.type: (c.status, c.reason) for c in gws.conditions}["Accepted"] == (False, "ListenersNotValid")
    assert conditions(st, "infra/r")["Accepted"] == (False, "NotAllowedByListeners")


def test_https_listener_is_programmed_unless_the_proxy_has_no_tls() -> None:
    gw = (
        BASE
        + """  - name: https
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: cert}]}
"""
    )
    st = state(gw + route("r", SIMPLE), services=[V1])
    https = st.gateways[("east", "infra", "same-namespace")].listeners[1]
    assert {c.type: c.status for c in https.conditions}["Programmed"] is True
    st = state(gw + route("r", SIMPLE), services=[V1], https_ready=False)
    https = st.gateways[("east", "infra", "same-namespace")].listeners[1]
    got = {c.type: (c.status, c.reason) for c in https.conditions}
    assert got["Accepted"] == (True, "Accepted") and got["Programmed"] == (False, "Pending")


def test_partially_invalid_route_keeps_its_valid_rules() -> None:
    body = (
        SIMPLE
        + "  - matches: [{path: {type: RegularExpression, value: '(['}}]\n"
        + "    backendRefs: [{name: infra-backend-v1, port: 8080}]\n"
    )
    st = state(BASE + route("r", body), services=[V1])
    got = conditions(st, "infra/r")
    assert got["Accepted"] == (True, "Accepted")
    assert got["PartiallyInvalid"] == (True, "UnsupportedValue")
    only_bad = "  parentRefs: [{name: same-namespace}]\n  rules:\n  - matches: [{method: FETCH}]\n"
    st = state(BASE + route("r", only_bad), services=[V1])
    assert conditions(st, "infra/r")["Accepted"] == (False, "UnsupportedValue")


def test_same_route_in_two_clusters_is_one_route_served_by_both() -> None:
    west_gw = BASE  # the Gateway may exist in several members too
    st = state(
        {
            "east": BASE + route("r", SIMPLE),
            "west": west_gw + route("r", SIMPLE, created="2026-02-01T00:00:00Z"),
        },
        services=[V1, service("infra-backend-v1", "west")],
    )
    for cluster in ("east", "west"):
        assert conditions(st, "infra/r", cluster=cluster) == {
            "Accepted": (True, "Accepted"),
            "ResolvedRefs": (True, "ResolvedRefs"),
        }
    assert st.table.rules == 1  # merged, not served twice
    m = st.table.match(port=80, host="x.example", method="GET", path="/", headers={})
    assert m is not None
    picked = m.action.pick(0.0)
    assert picked is not None and sorted(b.cluster for b in picked.backends) == ["east", "west"]
    assert st.route_clusters[("infra", "r")] == ("east", "west")


def test_conflicting_copies_oldest_served_every_copy_told() -> None:
    other = SIMPLE.replace(
        "rules:\n",
        "rules:\n  - matches: [{path: {value: /west}}]\n"
        "    backendRefs: [{name: infra-backend-v1, port: 8080}]\n",
    )
    st = state(
        {
            "east": BASE + route("r", SIMPLE, created="2026-01-01T00:00:00Z"),
            "west": route("r", other, created="2026-03-01T00:00:00Z"),
        },
        services=[V1],
    )
    east = conditions(st, "infra/r", cluster="east")
    west = conditions(st, "infra/r", cluster="west")
    assert east["Accepted"] == (True, "Accepted") and east[COPIES_CONFLICT] == (True, "SpecDiffers")
    assert west["Accepted"] == (False, "ConflictingCopies") and west[COPIES_CONFLICT] == (True, "SpecDiffers")
    msg = next(
        c.message for c in st.routes[("west", "infra", "r")][0].conditions if c.type == COPIES_CONFLICT
    )
    assert "east" in msg and "west" in msg
    assert st.table.rules == 1  # only the served definition's one rule


CANARY = """
  parentRefs: [{name: same-namespace}]
  hostnames: [app.example.com]
  rules:
  - backendRefs:
    - {name: app-v1, port: 80, weight: 90}
    - {name: app-v2, port: 80, weight: 10}
"""


def test_weights_split_between_services_served_by_different_clusters() -> None:
    st = state(
        BASE + route("canary", CANARY), services=[service("app-v1", "east"), service("app-v2", "west")]
    )
    m = st.table.match(port=80, host="app.example.com", method="GET", path="/", headers={})
    assert m is not None
    picks = [m.action.pick(i / 1000) for i in range(1000)]
    clusters = [p.backends[0].cluster for p in picks if p is not None]
    assert clusters.count("east") == 900 and clusters.count("west") == 100
    assert st.hostnames[("infra", "canary")] == ("app.example.com",)


def test_all_weights_zero_picks_nothing() -> None:
    body = CANARY.replace("weight: 90", "weight: 0").replace("weight: 10", "weight: 0")
    st = state(BASE + route("zero", body), services=[service("app-v1", "east"), service("app-v2", "west")])
    m = st.table.match(port=80, host="app.example.com", method="GET", path="/", headers={})
    assert m is not None and m.action.pick(0.3) is None


def test_condition_transition_time_kept_while_status_unchanged() -> None:
    st = state(BASE + route("r", SIMPLE), services=[V1])
    conds = st.routes[("east", "infra", "r")][0].conditions
    first = condition_dicts(conds, None, now="2026-12-01T10:00:00Z")
    again = condition_dicts(conds, first, now="2026-12-01T11:00:00Z")
    assert {c["lastTransitionTime"] for c in again} == {"2026-12-01T10:00:00Z"}
    st2 = state(BASE + route("r", SIMPLE.replace("infra-backend-v1", "gone")), services=[V1])
    changed = condition_dicts(
        st2.routes[("east", "infra", "r")][0].conditions, again, now="2026-12-01T12:00:00Z"
    )
    times = {c["type"]: c["lastTransitionTime"] for c in changed}
    assert times == {"Accepted": "2026-12-01T10:00:00Z", "ResolvedRefs": "2026-12-01T12:00:00Z"}
    assert {c["status"] for c in changed if c["type"] == "ResolvedRefs"} == {"False"}


def test_parent_ref_port_selects_listeners() -> None:
    gw = BASE + "  - {name: other, port: 8080, protocol: HTTP}\n"
    ports = {"HTTP": frozenset({80, 8080})}
    body = SIMPLE.replace("{name: same-namespace}", "{name: same-namespace, port: 8080}")
    st = state(gw + route("r", body), services=[V1], served_ports=ports)
    assert conditions(st, "infra/r")["Accepted"] == (True, "Accepted")
    listeners = {
        x.name: x.attached_routes for x in st.gateways[("east", "infra", "same-namespace")].listeners
    }
    assert listeners == {"http": 0, "other": 1}
    body = SIMPLE.replace("{name: same-namespace}", "{name: same-namespace, port: 9999}")
    st = state(gw + route("r", body), services=[V1], served_ports=ports)
    assert conditions(st, "infra/r")["Accepted"] == (False, "NoMatchingParent")
