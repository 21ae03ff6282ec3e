"""HTTPRoute behaviours of the Gateway API conformance suite, on loopback through the real proxy.

Each "cluster" is a real aiohttp backend (conftest); HTTPRoutes are parsed from YAML, decided by
``gateway_state`` and served by ``ProxyServer.update(..., gateway=...)`` exactly as the
controller's feed does. infra-backend-v1 runs in the US cluster, v2 in the EU, v3 in Asia.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ingressfed.feed.publisher import FeedPublisher, add_feed_routes
from ingressfed.feed.view import FeedView, decode_view, encode_view
from ingressfed.gateway.state import GatewayState
from ingressfed.proxy.server import ProxyServer
from tests.fakes.ports import free_ports
from tests.gateway.world import CLASS, service, state

from .conftest import ASIA, EU, US, BackendServer, settings

GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra}
spec:
  gatewayClassName: ingressfed
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
"""
V = {"infra-backend-v1": US, "infra-backend-v2": EU, "infra-backend-v3": ASIA}


def services(backends: dict[str, BackendServer]) -> list[Any]:
    del backends  # every backend server listens on 127.0.0.1; the backendRef port picks one
    return [service(name, c.name, address="127.0.0.1") for name, c in V.items()]


GATEWAY_TLS = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra}
spec:
  gatewayClassName: ingressfed
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - name: https
    port: 443
    protocol: HTTPS
    allowedRoutes: {namespaces: {from: All}}
    tls: {certificateRefs: [{name: app-cert}]}
"""


def route(
    name: str,
    body: str,
    backends: dict[str, BackendServer],
    *,
    namespace: str = "infra",
    section: str | None = None,
) -> str:
    """``{v1}``... in ``body`` become backendRefs' ports: each backend server listens on its own."""
    ports = {f"v{i}": backends[c.name].port for i, c in enumerate((US, EU, ASIA), start=1)}
    text = body
    section_name = f", sectionName: {section}" if section else ""
    for key, port in ports.items():
        text = text.replace("{" + key + "}", str(port))
    return f"""
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}, creationTimestamp: "2026-01-01T00:00:00Z"}}
spec:
  parentRefs: [{{name: same-namespace, namespace: infra{section_name}}}]
{text}
"""


@contextlib.asynccontextmanager
async def serving(
    backends: dict[str, BackendServer], *routes: str, manifests: dict[str, str] | None = None, **kw: Any
) -> AsyncIterator[tuple[ProxyServer, aiohttp.ClientSession, GatewayState]]:
    docs = manifests if manifests is not None else {"east": CLASS + "---" + GATEWAY + "".join(routes)}
    kw.setdefault("services", services(backends))
    st = state(docs, **kw)
    async with (
        ProxyServer(settings(cluster_header="X-Served-By-Cluster")) as proxy,
        aiohttp.ClientSession() as http,
    ):
        proxy.update([], [US, EU, ASIA], gateway=st.served)
        yield proxy, http, st


async def get(
    proxy: ProxyServer,
    http: aiohttp.ClientSession,
    path: str,
    *,
    host: str = "example.com",
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> tuple[int, str | None, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    """(status, serving cluster, what the backend saw, response headers)."""
    async with http.request(
        method,
        f"http://127.0.0.1:{proxy.port}{path}",
        headers={"Host": host, **(headers or {})},
        allow_redirects=False,
    ) as resp:
        body = await resp.read()
        seen: dict[str, Any] = {}
        if resp.status == 200 and resp.content_type == "application/json":
            seen = json.loads(body)
        return resp.status, resp.headers.get("X-Served-By-Cluster"), seen, resp.headers


PATHS = """
  rules:
  - matches: [{path: {type: Exact, value: /exact}}]
    backendRefs: [{name: infra-backend-v3, port: {v3}}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
  - matches: [{path: {type: PathPrefix, value: /v2}}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
"""


async def test_exact_and_prefix_path_matching(backends: dict[str, BackendServer]) -> None:
    async with serving(backends, route("paths", PATHS, backends)) as (proxy, http, _):
        assert (await get(proxy, http, "/"))[1] == US.name
        assert (await get(proxy, http, "/v2"))[1] == EU.name
        assert (await get(proxy, http, "/v2/example?x=1"))[1] == EU.name
        assert (await get(proxy, http, "/v2example"))[1] == US.name
        assert (await get(proxy, http, "/exact"))[1] == ASIA.name
        assert (await get(proxy, http, "/exact/more"))[1] == US.name
        status, _, seen, _ = await get(proxy, http, "/v2/example?x=1")
        assert status == 200 and seen["path"] == "/v2/example?x=1"


MATCHES = """
  rules:
  - matches: [{path: {type: PathPrefix, value: /h}, headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
  - matches: [{path: {type: PathPrefix, value: /h}}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
  - matches: [{path: {type: PathPrefix, value: /q}, queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: infra-backend-v3, port: {v3}}]
  - matches: [{path: {type: PathPrefix, value: /m}, method: POST}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
  - matches: [{path: {type: PathPrefix, value: /m}, method: GET}]
    backendRefs: [{name: infra-backend-v3, port: {v3}}]
"""


async def test_header_query_and_method_matching(backends: dict[str, BackendServer]) -> None:
    async with serving(backends, route("matches", MATCHES, backends)) as (proxy, http, _):
        assert (await get(proxy, http, "/h", headers={"Version": "two"}))[1] == EU.name
        assert (await get(proxy, http, "/h", headers={"version": "one"}))[1] == US.name
        assert (await get(proxy, http, "/q?animal=whale"))[1] == ASIA.name
        assert (await get(proxy, http, "/q?animal=dolphin"))[0] == 404
        assert (await get(proxy, http, "/m", method="POST"))[1] == EU.name
        assert (await get(proxy, http, "/m"))[1] == ASIA.name
        assert (await get(proxy, http, "/m", method="PUT"))[0] == 404


async def test_matching_across_routes_and_hostname_intersection(backends: dict[str, BackendServer]) -> None:
    part1 = route(
        "matching-part1",
        """
  hostnames: [example.com, example.net]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
""",
        backends,
    )
    part2 = route(
        "matching-part2",
        """
  hostnames: ["*.com"]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
""",
        backends,
    )
    async with serving(backends, part1, part2) as (proxy, http, _):
        assert (await get(proxy, http, "/example", host="example.net"))[1] == US.name
        assert (await get(proxy, http, "/v2", host="example.com"))[1] == EU.name
        assert (await get(proxy, http, "/v2", host="example.net"))[1] == US.name
        assert (await get(proxy, http, "/", host="example.com", headers={"Version": "two"}))[1] == EU.name
        assert (await get(proxy, http, "/v2", host="EXAMPLE.com:80"))[1] == EU.name
        assert (await get(proxy, http, "/", host="example.org"))[0] == 404


async def test_listener_hostname_matching(backends: dict[str, BackendServer]) -> None:
    gw = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra}
spec:
  gatewayClassName: ingressfed
  listeners:
  - {name: listener-1, port: 80, protocol: HTTP, hostname: bar.com}
  - {name: listener-2, port: 80, protocol: HTTP, hostname: "*.bar.com"}
"""

    def r(name: str, section: str, v: str) -> str:
        return route(
            name, f"  rules:\n  - backendRefs: [{{name: infra-backend-{v}, port: {{{v}}}}}]\n", backends
        ).replace(
            "parentRefs: [{name: same-namespace, namespace: infra}]",
            f"parentRefs: [{{name: same-namespace, namespace: infra, sectionName: {section}}}]",
        )

    docs = {"east": CLASS + "---" + gw + r("one", "listener-1", "v1") + r("two", "listener-2", "v2")}
    async with serving(backends, manifests=docs) as (proxy, http, _):
        assert (await get(proxy, http, "/", host="bar.com"))[1] == US.name
        assert (await get(proxy, http, "/", host="foo.bar.com"))[1] == EU.name
        assert (await get(proxy, http, "/", host="a.b.bar.com"))[1] == EU.name
        assert (await get(proxy, http, "/", host="foo.com"))[0] == 404


async def test_weights_split_traffic_across_clusters(backends: dict[str, BackendServer]) -> None:
    canary = route(
        "canary",
        """
  hostnames: [app.example.com]
  rules:
  - backendRefs:
    - {name: infra-backend-v1, port: {v1}, weight: 90}
    - {name: infra-backend-v2, port: {v2}, weight: 10}
    - {name: infra-backend-v3, port: {v3}, weight: 0}
""",
        backends,
    )
    async with serving(backends, canary) as (proxy, http, _):
        served = [(await get(proxy, http, "/", host="app.example.com"))[1] for _ in range(200)]
    assert served.count(ASIA.name) == 0  # weight 0: never
    assert 5 <= served.count(EU.name) <= 45, served.count(EU.name)  # ~10% (binomial, > 4 sd margin)
    assert served.count(US.name) + served.count(EU.name) == 200


async def test_all_backends_weight_zero_is_500(backends: dict[str, BackendServer]) -> None:
    zero = route(
        "zero", "  rules:\n  - backendRefs: [{name: infra-backend-v1, port: {v1}, weight: 0}]\n", backends
    )
    async with serving(backends, zero) as (proxy, http, _):
        assert (await get(proxy, http, "/"))[0] == 500
    assert not backends[US.name].seen


HEADER_FILTERS = """
  rules:
  - matches: [{path: {value: /req}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: header-val-1}]
        remove: [X-Header-Remove]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
  - matches: [{path: {value: /resp}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: Content-Type, value: text/overwritten}]
        add: [{name: X-Header-Add, value: added}]
        remove: [Server]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
  - matches: [{path: {value: /backend}}]
    backendRefs:
    - name: infra-backend-v2
      port: {v2}
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {add: [{name: X-From-Backend-Ref, value: v2}]}
"""


async def test_request_and_response_header_modifiers(backends: dict[str, BackendServer]) -> None:
    async with serving(backends, route("headers", HEADER_FILTERS, backends)) as (proxy, http, _):
        status, _, seen, _ = await get(
            proxy, http, "/req", headers={"X-Header-Set": "set-val", "X-Header-Remove": "gone", "Keep": "k"}
        )
        assert status == 200
        h = {k.lower(): v for k, v in seen["headers"].items()}
        assert h["x-header-set"] == "set-overwrites-values"
        assert h["x-header-add"] == "header-val-1"
        assert "x-header-remove" not in h and h["keep"] == "k"
        assert h["host"] == "example.com"
        status, _, _, resp = await get(proxy, http, "/resp")
        assert status == 200
        assert resp["Content-Type"] == "text/overwritten"
        assert resp["X-Header-Add"] == "added"
        assert "Server" not in resp
        _, cluster, seen, _ = await get(proxy, http, "/backend")
        assert cluster == EU.name and seen["headers"].get("X-From-Backend-Ref") == "v2"


REDIRECTS = """
  rules:
  - matches: [{path: {value: /original-prefix}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}
  - matches: [{path: {value: /full}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}
  - matches: [{path: {value: /host}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
  - matches: [{path: {value: /scheme}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
  - matches: [{path: {value: /port}}]
    filters: [{type: RequestRedirect, requestRedirect: {port: 8443, scheme: https}}]
  - matches: [{path: {value: /s303}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 303}}]
  - matches: [{path: {value: /s307}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307, hostname: example.org}}]
  - matches: [{path: {value: /s308}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 308, path: {type: ReplaceFullPath, replaceFullPath: /new}}
"""


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/original-prefix/lemon", 302, "http://example.com/replacement-prefix/lemon"),
        ("/full/path/original", 302, "http://example.com/full-path-replacement"),
        ("/host?a=1", 302, "http://example.org/host?a=1"),
        ("/scheme", 301, "https://example.com/scheme"),
        ("/port", 302, "https://example.com:8443/port"),
        ("/s303", 303, "http://example.com/s303"),
        ("/s307", 307, "http://example.org/s307"),
        ("/s308", 308, "http://example.com/new"),
    ],
)
async def test_redirects(backends: dict[str, BackendServer], path: str, status: int, location: str) -> None:
    async with serving(backends, route("redirects", REDIRECTS, backends)) as (proxy, http, _):
        got_status, _, _, headers = await get(proxy, http, path)
        assert (got_status, headers.get("Location")) == (status, location)
    assert not any(b.seen for b in backends.values())  # answered by the proxy itself


REWRITES = """
  rules:
  - matches: [{path: {value: /prefix}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
  - matches: [{path: {value: /full}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
  - matches: [{path: {value: /host}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.example.org}}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
"""


async def test_url_rewrite_path_and_host(backends: dict[str, BackendServer]) -> None:
    async with serving(backends, route("rewrite", REWRITES, backends)) as (proxy, http, _):
        _, _, seen, _ = await get(proxy, http, "/prefix/one/two?q=1")
        assert seen["path"] == "/one/two?q=1"
        _, _, seen, _ = await get(proxy, http, "/full/one/two")
        assert seen["path"] == "/one"
        _, cluster, seen, _ = await get(proxy, http, "/host/x")
        assert cluster == EU.name
        assert seen["headers"]["Host"] == "rewritten.example.org" and seen["path"] == "/host/x"
        assert seen["headers"]["X-Forwarded-Host"] == "example.com"


async def test_invalid_references_answer_500_and_report_reasons(backends: dict[str, BackendServer]) -> None:
    bad = route(
        "bad-refs",
        """
  rules:
  - matches: [{path: {value: /missing}}]
    backendRefs: [{name: not-there, port: 80}]
  - matches: [{path: {value: /cross}}]
    backendRefs: [{name: web, namespace: other, port: {v1}}]
""",
        backends,
    )
    svc = [*services(backends), service("web", US.name, namespace="other", address="127.0.0.1")]
    async with serving(backends, bad, services=svc) as (proxy, http, st):
        assert (await get(proxy, http, "/missing"))[0] == 500
        assert (await get(proxy, http, "/cross"))[0] == 500
        (parent,) = st.routes[("east", "infra", "bad-refs")]
        resolved = next(c for c in parent.conditions if c.type == "ResolvedRefs")
        assert (resolved.status, resolved.reason) == (False, "BackendNotFound")
        assert "spec.rules[1].backendRefs[0]" in resolved.message and "ReferenceGrant" in resolved.message
    assert not backends[US.name].seen


async def test_unknown_host_and_unmatched_path_are_404(backends: dict[str, BackendServer]) -> None:
    only = route(
        "only",
        """
  hostnames: [a.example.com]
  rules:
  - matches: [{path: {type: Exact, value: /x}}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
""",
        backends,
    )
    async with serving(backends, only) as (proxy, http, _):
        assert (await get(proxy, http, "/x", host="a.example.com"))[0] == 200
        assert (await get(proxy, http, "/y", host="a.example.com"))[0] == 404
        assert (await get(proxy, http, "/x", host="b.example.com"))[0] == 404


async def test_route_merged_from_two_clusters_fails_over_between_them(
    backends: dict[str, BackendServer],
) -> None:
    body = "  hostnames: [web.example.com]\n  rules:\n  - backendRefs: [{name: web, port: {v1}}]\n"
    r = route("web", body, backends)
    docs = {"east": CLASS + "---" + GATEWAY + r, "west": CLASS + "---" + GATEWAY + r}
    # The same Service in two clusters; both "clusters" listen on the US server's port here.
    svc = [service("web", US.name, address="127.0.0.1"), service("web", EU.name, address="127.0.0.1")]
    async with serving(backends, manifests=docs, services=svc) as (proxy, http, st):
        entry = next(e for e in proxy.engine.router.table.entries if e.hop is not None)
        assert sorted(t.name for t in entry.targets) == sorted([US.name, EU.name])
        status, cluster, _, _ = await get(proxy, http, "/", host="web.example.com")
        assert status == 200 and cluster in (US.name, EU.name)
        assert len(st.routes) == 2  # a status for each copy


async def test_feed_round_trip_keeps_every_rule(backends: dict[str, BackendServer]) -> None:
    """What a remote proxy receives over the feed serves the same as the controller's own value."""
    st = state(
        {
            "east": CLASS
            + "---"
            + GATEWAY
            + route("all", REWRITES + REDIRECTS.replace("  rules:\n", ""), backends)
        },
        services=services(backends),
    )
    view = FeedView(
        version=3, records=(), routes=(), clusters=(US, EU, ASIA), zone="example.com", gateway_rules=st.served
    )
    back = decode_view(encode_view(view))
    assert back.gateway_rules == st.served
    async with ProxyServer(settings()) as proxy, aiohttp.ClientSession() as http:
        proxy.update(back.routes, back.clusters, gateway=back.gateway_rules)
        status, _, _, headers = await get(proxy, http, "/s307")
        assert (status, headers.get("Location")) == (307, "http://example.org/s307")
        _, _, seen, _ = await get(proxy, http, "/full/one/two")
        assert seen["path"] == "/one"


async def test_a_remote_proxy_serves_httproutes_from_the_feed(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    """``ingressfed proxy --feed``: the rules arrive over HTTP with the token and are served."""
    header_route = route(
        "canary",
        """
  hostnames: [app.example.com]
  rules:
  - matches: [{headers: [{name: X-Canary, value: always}]}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
  - backendRefs: [{name: infra-backend-v1, port: {v1}}]
""",
        backends,
    )
    st = state({"east": CLASS + "---" + GATEWAY + header_route}, services=services(backends))
    publisher = FeedPublisher()
    publisher.publish(
        FeedView(
            version=0,
            records=(),
            routes=(),
            clusters=(US, EU, ASIA),
            zone="example.com",
            gateway_rules=st.served,
        )
    )
    app = web.Application()
    add_feed_routes(app, publisher, "s3cret")
    runner = web.AppRunner(app)
    await runner.setup()
    feed_port, port, admin = free_ports(3)
    await web.TCPSite(runner, "127.0.0.1", feed_port).start()
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingressfed.cli", "proxy",
        "--feed", f"http://127.0.0.1:{feed_port}", "--token-file", str(token),
        "--state-file", str(tmp_path / "view.json"),
        "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:

            async def served_by(headers: dict[str, str]) -> str | None:
                try:
                    async with http.get(
                        f"http://127.0.0.1:{port}/", headers={"Host": "app.example.com", **headers}
                    ) as r:
                        return r.headers.get("X-Served-By-Cluster") if r.status == 200 else None
                except aiohttp.ClientError:
                    return None

            async with asyncio.timeout(20):
                while await served_by({}) != US.name:
                    await asyncio.sleep(0.1)
            assert await served_by({"X-Canary": "always"}) == EU.name
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        publisher.close()
        await runner.cleanup()


async def test_https_listener_rules_only_over_tls(backends: dict[str, BackendServer], tmp_path: Path) -> None:
    """A route attached to the HTTPS listener answers on the TLS listener (HTTP/2 here: a redirect
    carries its Location) and is 404 on plain HTTP; a route attached to the HTTP listener only is
    404 over TLS."""
    from tests.proxy.h2client import h2_client
    from tests.proxy.tlsproxy import HOST, https_proxy

    body = """
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}
  - matches: [{path: {value: /api}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: X-Via-Route, value: h2}]}}]
    backendRefs: [{name: infra-backend-v2, port: {v2}}]
"""
    plain_only = """
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {value: /plain}}]
    backendRefs: [{name: infra-backend-v1, port: {v1}}]
"""
    docs = (
        CLASS
        + "---"
        + GATEWAY_TLS
        + route("h2", body, backends, section="https")
        + route("plain", plain_only, backends, section="http")
    )
    st = state({"east": docs}, services=services(backends))
    assert {r.port for r in st.served} == {80, 443}
    async with (
        https_proxy(backends, tmp_path) as h,
        h2_client(h.port, HOST, h.client_context()) as c,
        aiohttp.ClientSession() as http,
    ):
        h.proxy.update([], [US, EU, ASIA], gateway=st.served)
        moved = await c.get(HOST, "/old?x=1")
        assert moved.status == 301
        assert moved.headers[b"location"] == b"https://app.example.com/new?x=1"
        served = await c.get(HOST, "/api/v1")
        assert served.status == 200
        assert json.loads(served.body)["headers"]["X-Via-Route"] == "h2"
        assert (await c.get(HOST, "/plain")).status == 404
        # The plain listener: the HTTP listener's route only.
        assert (await get(h.proxy, http, "/plain", host=HOST))[1] == US.name
        for path in ("/old", "/api/v1"):
            assert (await get(h.proxy, http, path, host=HOST))[0] == 404
