"""``ingressfed demo``: the kubefed walkthrough on one machine, no cloud, no cluster.

Three "clusters" (`cluster-us-east1-b`, `cluster-europe-west1-b`,
`cluster-asia-east1-a`), each a small HTTP backend on its own loopback address
that answers like the k8shserver example; the static source publishes their
`k8shserver` Service and Ingress; the real controller, embedded DNS server and
geo-aware proxy run exactly as ``ingressfed run`` would run them from the
config the demo writes. ``ingressfed demo down|up CLUSTER`` talks to the
running demo's control endpoint to kill or revive a cluster (API server and
data plane together).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ingressfed.config import load_config, read_token_file, split_host_port
from ingressfed.edge.local import EdgeSpec, LocalEdge
from ingressfed.model import ClusterStatus

__all__ = ["DEMO_CLUSTERS", "DEMO_EDGES", "Backend", "DemoCluster", "register", "write_demo_files"]

log = logging.getLogger(__name__)

FEDERATION = "federation"
ZONE = "example.com"
SERVICE = "k8shserver"
NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class DemoCluster:
    name: str
    region: str
    zone: str
    address: str  # the cluster's load-balancer address (a loopback address of its own)


DEMO_CLUSTERS = (
    DemoCluster("cluster-us-east1-b", "us-east1", "us-east1-b", "127.0.0.11"),
    DemoCluster("cluster-europe-west1-b", "europe-west1", "europe-west1-b", "127.0.0.12"),
    DemoCluster("cluster-asia-east1-a", "asia-east1", "asia-east1-a", "127.0.0.13"),
)

# One edge (a proxy point of presence) per cluster, each on a loopback address of its own:
# edge name -> (its cluster, its address).
DEMO_EDGES = {
    "edge-us-east1": ("cluster-us-east1-b", "127.0.0.21"),
    "edge-europe-west1": ("cluster-europe-west1-b", "127.0.0.22"),
    "edge-asia-east1": ("cluster-asia-east1-a", "127.0.0.23"),
}
# Client subnets whose GeoLite2 City entries sit near each edge, for the printed dig lines.
SAMPLE_SUBNETS = {
    "edge-europe-west1": "81.2.69.0/24",
    "edge-asia-east1": "1.0.16.0/24",
    "edge-us-east1": "8.8.8.0/24",
}
EDGE_STALE_AFTER = 4.0

# Public addresses whose GeoLite2 City entries sit in each continent, for the printed curl lines.
SAMPLE_CLIENTS = {"US": "8.8.8.8", "Europe": "81.2.69.160", "Asia": "1.0.16.1"}


class Backend:
    """The cluster's app: answers who served the request, like the k8shserver example."""

    def __init__(self, cluster: DemoCluster) -> None:
        self.cluster = cluster
        self.port = _free_port(cluster.address)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_route("*", "/{tail:.*}", self._hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.cluster.address, self.port, reuse_address=True).start()
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _hello(self, request: web.Request) -> web.Response:
        c = self.cluster
        return web.Response(
            text=(
                f"You've hit {SERVICE}-{c.zone} in cluster {c.name} (zone {c.zone}, region {c.region});"
                f" path {request.path}\n"
            )
        )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_demo_files(
    workdir: Path,
    backends: dict[str, Backend],
    *,
    dns_listen: str,
    proxy_listen: str,
    proxy_admin_listen: str,
    controller_listen: str,
    geoip: str | None,
    https_listen: str | None = None,
) -> Path:
    """Write config.yaml and objects.yaml for the demo (and, with ``https_listen``, the demo CA and
    certificates); returns the config path."""
    config: dict[str, Any] = {
        "federation": {
            "name": FEDERATION,
            "zone": ZONE,
            "ttl": 5,
            "ownerId": "ingressfed-demo",
        },
        "dns": {"provider": "embedded", "options": {"zoneFile": str(workdir / "zone.json")}},
        "clusters": [{"name": c.name, "region": c.region, "zone": c.zone} for c in DEMO_CLUSTERS],
        # Ingress hosts resolve to the nearest live edge; Service names keep answering every cluster.
        # Their health reports carry a token of their own (the feed and the status page stay open on
        # loopback, as before).
        "edges": [
            {"name": n, "cluster": c, "addresses": [a], "tokenFile": str(workdir / "edge-token")}
            for n, (c, a) in DEMO_EDGES.items()
        ],
        "edgeHealth": {"staleAfter": EDGE_STALE_AFTER},
        "source": {"kind": "static", "file": str(workdir / "objects.yaml")},
        "geo": {
            "database": geoip,
            "trustedProxies": ["127.0.0.0/8", "::1/128"],
            "defaultOrder": [c.name for c in DEMO_CLUSTERS],
        },
        "proxy": {
            "listen": proxy_listen,
            "adminListen": proxy_admin_listen,
            "healthCheck": {"path": "/healthz", "interval": 1, "timeout": 0.5},
        },
        "dnsServer": {
            "listen": dns_listen,
            "answers": "geo",
            "geoServiceNames": False,
            "zoneFile": str(workdir / "zone.json"),
        },
        "controller": {
            "listen": controller_listen,
            "debounce": 0.1,
            "resync": 30,
        },
        # On loopback for one user: the page and `get` need no token (the edges' feed keeps its own).
        "status": {"enabled": True, "anonymous": True},
    }
    if geoip is None:
        del config["geo"]["database"]
    if https_listen:
        from ingressfed.tls.demo_certs import write_demo_certificates

        _, certs = write_demo_certificates(workdir, [f"{SERVICE}.{ZONE}"])
        _, https_port = split_host_port(https_listen)
        config["proxy"]["tls"] = {
            "listen": https_listen,
            "certificateDir": str(certs),
            "redirectPort": https_port,
        }
    objects = {
        "services": [
            {
                "cluster": c.name,
                "namespace": NAMESPACE,
                "name": SERVICE,
                "readyEndpoints": 1,
                "addresses": [c.address],
            }
            for c in DEMO_CLUSTERS
        ],
        "ingresses": [
            {
                "cluster": c.name,
                "namespace": NAMESPACE,
                "name": SERVICE,
                "rules": [{"host": f"{SERVICE}.{ZONE}", "path": "/", "pathType": "Prefix"}],
                "addresses": [c.address],
                "port": backends[c.name].port,
            }
            for c in DEMO_CLUSTERS
        ],
    }
    # The edges' report token: fresh for every demo run.
    (workdir / "edge-token").write_text(secrets.token_urlsafe(24) + "\n")
    cfg_path = workdir / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (workdir / "objects.yaml").write_text(yaml.safe_dump(objects, sort_keys=False))
    return cfg_path


def _https_lines(https_listen: str | None, workdir: Path) -> list[str]:
    if not https_listen:
        return []
    host, port = split_host_port(https_listen)
    ip = host if host not in ("0.0.0.0", "") else "127.0.0.1"
    name = f"{SERVICE}.{ZONE}"
    curl = f"curl --cacert {workdir / 'ca.pem'} --resolve {name}:{port}:{ip}"
    return [
        "",
        f"HTTPS (certificate from the demo CA in {workdir}; HTTP/1.1, then HTTP/2 by ALPN):",
        f"  {curl} --http1.1 https://{name}:{port}/",
        f"  {curl} --http2 https://{name}:{port}/",
    ]


def _instructions(
    dns_listen: str,
    proxy_listen: str,
    control: str,
    controller_listen: str,
    edges: dict[str, LocalEdge],
    *,
    proxy_admin_listen: str = "",
) -> str:
    dns_host, dns_port = split_host_port(dns_listen)
    p_host, p_port = split_host_port(proxy_listen)
    if p_host in ("0.0.0.0", ""):
        p_host = "127.0.0.1"
    prefix = f"{SERVICE}.{NAMESPACE}.{FEDERATION}.svc"
    dig = f"dig @{dns_host} -p {dns_port} +noall +answer"
    lines = [
        "ingressfed demo is running: federation 'federation', zone 'example.com', 3 clusters.",
        "",
        *_status_lines(controller_listen, proxy_admin_listen),
        "",
        "DNS (the embedded authoritative server):",
        f"  {dig} {prefix}.{ZONE}",
        f"  {dig} {prefix}.europe-west1.{ZONE}",
        f"  {dig} {prefix}.europe-west1-b.europe-west1.{ZONE}",
        f"  {dig} {SERVICE}.{ZONE}",
        "",
        "Edges (a proxy in every cluster; each sends its clients to its own cluster first):",
    ]
    lines += [f"edge {name} {e.spec.cluster} {e.url}" for name, e in edges.items()]
    lines += [
        "",
        f"{SERVICE}.{ZONE} resolves to the nearest live edge (geo answers, EDNS Client Subnet):",
    ]
    for name, subnet in SAMPLE_SUBNETS.items():
        lines.append(f"  dig @{dns_host} -p {dns_port} +short +subnet={subnet} {SERVICE}.{ZONE} A   # {name}")
    for e in edges.values():
        lines.append(f"  curl -H 'Host: {SERVICE}.{ZONE}' {e.url}/   # answered by {e.spec.cluster}")
    lines += [
        "",
        "The global address (the geo-aware proxy); X-Forwarded-For is trusted from loopback:",
    ]
    for where, ip in SAMPLE_CLIENTS.items():
        lines.append(
            f"  curl -H 'Host: {SERVICE}.{ZONE}' -H 'X-Forwarded-For: {ip}' http://{p_host}:{p_port}/"
            f"   # a client in {where}"
        )
    lines += [
        "",
        "Take a cluster down and up again (watch the region level turn into a CNAME and back,",
        "and the proxy move the same client to the next nearest cluster):",
        f"  ingressfed demo down cluster-europe-west1-b --control {control}",
        f"  ingressfed demo up cluster-europe-west1-b --control {control}",
        "",
        f"Take an edge away: within {EDGE_STALE_AFTER:g}s its clients resolve to the next nearest edge:",
        f"  ingressfed demo edge-down edge-europe-west1 --control {control}",
        f"  ingressfed demo edge-up edge-europe-west1 --control {control}",
        "",
        "Ctrl-C stops the demo.",
    ]
    return "\n".join(lines)


def _status_lines(controller_listen: str, proxy_admin_listen: str) -> list[str]:
    def url(listen: str) -> str:
        host, port = split_host_port(listen)
        return f"http://{host if host not in ('0.0.0.0', '') else '127.0.0.1'}:{port}"

    lines = [
        f"The status page (world map, health, events, where a client goes): {url(controller_listen)}/status",
        "The members, as kubectl get clusters showed them (also edges, routes, records, events, certificates;"
        " -o wide|json|yaml; -w to follow):",
        f"  ingressfed get clusters --controller {url(controller_listen)}",
    ]
    if proxy_admin_listen:
        lines.append(
            f"The proxy's own view (its health checks, its traffic): {url(proxy_admin_listen)}/status"
        )
    return lines


async def _control_app(
    backends: dict[str, Backend], edges: dict[str, LocalEdge], running: Any, host: str, port: int
) -> web.AppRunner:
    async def change(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        action = request.match_info["action"]
        backend = backends.get(name)
        if backend is None:
            return web.json_response(
                {"error": f"unknown cluster {name!r}; known: {sorted(backends)}"}, status=404
            )
        if action == "down":
            # The data plane's health is not set here: the proxy's checks find the stopped backend
            # and report it through the edge health path, as they would in a real federation.
            await backend.stop()
            running.store.set_cluster_status(name, ClusterStatus.OFFLINE)
        else:
            await backend.start()
            running.store.set_cluster_status(name, ClusterStatus.READY)
        return web.json_response({"cluster": name, "state": action})

    async def change_edge(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        edge = edges.get(name)
        if edge is None:
            return web.json_response({"error": f"unknown edge {name!r}; known: {sorted(edges)}"}, status=404)
        if request.match_info["action"] == "down":
            await edge.stop()
        else:
            await edge.start()
        return web.json_response({"edge": name, "state": request.match_info["action"]})

    async def status(_: web.Request) -> web.Response:
        snap = running.store.snapshot()
        return web.json_response(
            {
                "clusters": [
                    {
                        "name": c.name,
                        "status": c.status.value,
                        "dataPlaneHealthy": c.data_plane_healthy,
                        "backendRunning": backends[c.name].running,
                    }
                    for c in snap.clusters
                ],
                "reconciles": running.controller.reconciles,
            }
        )

    app = web.Application()
    app.router.add_post("/clusters/{name}/{action:down|up}", change)
    app.router.add_post("/edges/{name}/{action:down|up}", change_edge)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_demo(args: argparse.Namespace) -> int:
    from geo.demo_db import demo_database_path
    from ingressfed.app import start

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ingressfed-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    backends = {c.name: Backend(c) for c in DEMO_CLUSTERS}
    db = demo_database_path()
    geoip = str(db) if db is not None else None
    if geoip is None:
        print(
            "note: no GeoIP City database found (pip install 'ingressfed[demo]'); "
            "every client gets the default order",
            file=sys.stderr,
        )
    cfg_path = write_demo_files(
        workdir,
        backends,
        dns_listen=args.dns_listen,
        proxy_listen=args.proxy_listen,
        proxy_admin_listen=args.proxy_admin_listen,
        controller_listen=args.controller_listen,
        geoip=geoip,
        https_listen=args.https_listen or None,
    )
    config = load_config(cfg_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for b in backends.values():
        await b.start()
    try:
        async with start(config) as running:
            edges = _demo_edges(config, args, workdir, running.http_port)
            for e in edges.values():
                await e.start()
            c_host, c_port = split_host_port(args.control)
            control = await _control_app(backends, edges, running, c_host, c_port)
            try:
                for _ in range(100):
                    if running.controller.reconciles:
                        break
                    await asyncio.sleep(0.05)
                print(f"config written to {cfg_path}")
                text = _instructions(
                    args.dns_listen,
                    args.proxy_listen,
                    args.control,
                    args.controller_listen,
                    edges,
                    proxy_admin_listen=args.proxy_admin_listen,
                )
                https = "\n".join(_https_lines(args.https_listen, workdir))
                print(
                    text.replace("\n\nTake a cluster down", f"{https}\n\nTake a cluster down", 1), flush=True
                )
                await stop.wait()
            finally:
                await control.cleanup()
                for e in edges.values():
                    await e.stop()
    finally:
        for b in backends.values():
            await b.stop()
    return 0


def _demo_edges(
    config: Any, args: argparse.Namespace, workdir: Path, controller_port: int
) -> dict[str, LocalEdge]:
    """The three edges, each a proxy of its own following the controller's feed over HTTP."""
    from ingressfed.proxy.settings import ProxySettings

    settings = ProxySettings.from_config(
        config.proxy.model_dump(by_alias=True), config.geo.model_dump(by_alias=True)
    )
    c_host, _ = split_host_port(args.controller_listen)
    controller = f"http://{c_host}:{controller_port}"
    return {
        name: LocalEdge(
            EdgeSpec(name, cluster, address, args.edge_port),
            controller=controller,
            token=read_token_file(workdir / "edge-token"),
            settings=settings,
            state_file=workdir / f"{name}.json",
        )
        for name, (cluster, address) in DEMO_EDGES.items()
    }


def _send(args: argparse.Namespace) -> int:
    kind, verb = (
        ("edges", args.action.removeprefix("edge-"))
        if args.action.startswith("edge-")
        else ("clusters", args.action)
    )
    url = f"http://{args.control}/{kind}/{args.cluster}/{verb}"
    req = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=5):  # noqa: S310
            print(verb, args.cluster)
            return 0
    except urllib.error.HTTPError as e:
        print(f"ingressfed demo: {json.loads(e.read()).get('error', e)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(
            f"ingressfed demo: no demo answers at {args.control} ({e}); is 'ingressfed demo' running?",
            file=sys.stderr,
        )
        return 1


async def _demo(args: argparse.Namespace) -> int:
    if args.action in ("down", "up", "edge-down", "edge-up"):
        if not args.cluster:
            example = "edge-europe-west1" if args.action.startswith("edge-") else "cluster-europe-west1-b"
            what = "an edge" if args.action.startswith("edge-") else "a cluster"
            print(f"ingressfed demo {args.action}: name {what}, e.g. {example}", file=sys.stderr)
            return 2
        return await asyncio.to_thread(_send, args)
    with contextlib.suppress(KeyboardInterrupt):
        return await run_demo(args)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="play the kubefed walkthrough on this machine (no cloud, no cluster)")
    p.add_argument(
        "action",
        nargs="?",
        choices=["down", "up", "edge-down", "edge-up"],
        help="take a cluster or an edge away",
    )
    p.add_argument("cluster", nargs="?", help="cluster name for down/up, edge name for edge-down/edge-up")
    p.add_argument("--dns-listen", default="127.0.0.1:5353", help="embedded DNS server address")
    p.add_argument("--proxy-listen", default="127.0.0.1:8080", help="proxy (global address) listen address")
    p.add_argument(
        "--https-listen", default="127.0.0.1:8443", help="proxy HTTPS listen address ('' for none)"
    )
    p.add_argument("--proxy-admin-listen", default="127.0.0.1:8081", help="proxy /metrics, /routes")
    p.add_argument("--controller-listen", default="127.0.0.1:9090", help="metrics, health and feed")
    p.add_argument("--edge-port", type=int, default=8080, help="port of the edges on 127.0.0.21-23")
    p.add_argument("--control", default="127.0.0.1:8090", help="the demo's control endpoint")
    p.add_argument("--workdir", help="where to write config, objects and zone files (default: a temp dir)")
    p.set_defaults(func=_demo)
