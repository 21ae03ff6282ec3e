"""HTTPS listeners' certificateRefs: which Secrets are read for which hostnames, and what a bad
Secret does to the listener's conditions (pure; the Secret reading is tests/kube, serving is
tests/tls/test_gateway_https_run.py)."""

from __future__ import annotations

from ingressfed.gateway.certificates import listener_tls_refs, with_certificate_problems
from ingressfed.gateway.state import GatewayState
from ingressfed.tls.secrets import SecretProblem
from tests.gateway.world import CLASS, service, state

V1 = service("infra-backend-v1", "east")


def gateway(refs: str, *, hostname: str | None = "secure.example.com") -> str:
    host = f"    hostname: {hostname}\n" if hostname else ""
    return (
        CLASS
        + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, generation: 2}
spec:
  gatewayClassName: ingressfed
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - name: https
    port: 443
    protocol: HTTPS
"""
        + host
        + f"    tls: {{certificateRefs: [{refs}]}}\n"
    )


ROUTE = """
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: https}]
  hostnames: [secure.example.com, other.example.com]
  rules:
  - backendRefs: [{name: infra-backend-v1, port: 8080}]
"""
GRANT = """
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: certs-for-infra, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]
  to: [{group: "", kind: Secret}]
"""


def listener(st: GatewayState, name: str = "https") -> dict[str, tuple[bool, str]]:
    gws = st.gateways[("east", "infra", "gw")]
    found = next(ls for ls in gws.listeners if ls.name == name)
    return {c.type: (c.status, c.reason) for c in found.conditions}


def test_same_namespace_ref_is_read_for_the_listener_hostname() -> None:
    st = state(gateway("{name: site}") + ROUTE, services=[V1])
    (ref,) = listener_tls_refs(st)
    assert (ref.cluster, ref.kind, ref.namespace, ref.ingress, ref.listener) == (
        "east",
        "Gateway",
        "infra",
        "gw",
        "https",
    )
    assert (ref.secret_ns, ref.secret, ref.hosts) == ("infra", "site", ("secure.example.com",))
    assert listener(st)["Programmed"] == (True, "Programmed")


def test_listener_without_hostname_serves_its_routes_hostnames() -> None:
    st = state(gateway("{name: site}", hostname=None) + ROUTE, services=[V1])
    (ref,) = listener_tls_refs(st)
    assert ref.hosts == ("other.example.com", "secure.example.com")
    # No route attached: no hostname to serve, nothing to read.
    st = state(gateway("{name: site}", hostname=None), services=[V1])
    assert listener_tls_refs(st) == []


def test_cross_namespace_ref_needs_a_reference_grant_for_gateways() -> None:
    refs = "{name: site, namespace: certs}"
    st = state(gateway(refs) + ROUTE, services=[V1])
    assert listener(st)["ResolvedRefs"] == (False, "RefNotPermitted")
    assert listener(st)["Programmed"][0] is False
    assert listener_tls_refs(st) == []
    # A grant for HTTPRoutes → Services does not allow Gateways → Secrets.
    wrong = GRANT.replace("kind: Gateway,", "kind: HTTPRoute,").replace("kind: Secret", "kind: Service")
    assert listener_tls_refs(state(gateway(refs) + ROUTE + wrong, services=[V1])) == []
    st = state(gateway(refs) + ROUTE + GRANT, services=[V1])
    assert listener(st)["ResolvedRefs"] == (True, "ResolvedRefs")
    (ref,) = listener_tls_refs(st)
    assert (ref.secret_ns, ref.secret, ref.namespace) == ("certs", "site", "infra")


def test_a_bad_secret_makes_the_listener_invalid_certificate_ref() -> None:
    st = state(gateway("{name: site}") + ROUTE, services=[V1])
    (ref,) = listener_tls_refs(st)
    bad = with_certificate_problems(st, [SecretProblem(ref, "SecretNotFound", "no Secret site in infra")])
    got = listener(bad)
    assert got["ResolvedRefs"] == (False, "InvalidCertificateRef")
    assert got["Programmed"] == (False, "Invalid")
    gws = bad.gateways[("east", "infra", "gw")]
    https = next(ls for ls in gws.listeners if ls.name == "https")
    message = next(c.message for c in https.conditions if c.type == "ResolvedRefs")
    assert "infra/site" in message and "SecretNotFound" in message
    assert all(c.observed_generation == 2 for c in https.conditions)
    # The HTTP listener and the Gateway (one listener still programmed) are untouched.
    assert listener(bad, "http") == listener(st, "http")
    assert {c.type: c.status for c in gws.conditions}["Programmed"] is True
    # No problem: the very same state.
    assert with_certificate_problems(st, []) is st
