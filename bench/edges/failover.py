"""Edge failover clocks (not a test), on loopback with the real pieces.

1. Backend killed -> the edge stops sending to it. An edge (``LocalEdge``: proxy, feed follower,
   reporter) whose own cluster is ``eu``; ``us`` is the next nearest. With traffic (4 clients
   sending GETs back to back) the eu backend is killed: printed are the seconds until every
   response comes from us and the failed requests (goal: 0 failed, < 1 s). Without traffic: the
   seconds until the edge's own view marks eu down, against the active-check window
   interval x unhealthyThreshold (the peer; goal: below it).
2. Edge killed -> the embedded DNS server stops answering it. Two edges, a controller with the
   embedded DNS server in geo mode; the European edge is stopped and a European client subnet
   is queried (ECS) until the answer names the other edge. Printed: seconds, against
   edgeHealth.staleAfter + TTL (the peer; goal: below it).

    .venv/bin/python -m bench.edges.failover [--interval 1] [--threshold 2] [--stale-after 5] [--ttl 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.edns
import dns.message
import dns.rdatatype
import yaml
from aiohttp import web

from bench.peers import free_port
from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.edge.local import EdgeSpec, LocalEdge
from ingressfed.proxy.settings import HealthCheckSettings, ProxySettings
from tests.fakes.geoip_db import build_city_db

HOST = "web.example.com"
TOKEN = "bench-edge-token"
CLUSTERS = {
    "us": ("us-east1", "127.0.0.41", "127.0.0.51"),
    "eu": ("europe-west1", "127.0.0.42", "127.0.0.52"),
}


async def backend(cluster: str, address: str, port: int) -> web.AppRunner:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text=cluster)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port, reuse_address=True).start()
    return runner


def write_config(tmp: Path, args: argparse.Namespace, ports: dict[str, int], bports: dict[str, int]) -> Path:
    (tmp / "token").write_text(TOKEN)
    objects = {
        "ingresses": [
            {"cluster": c, "namespace": "default", "name": "web", "rules": [{"host": HOST}],
             "addresses": [addr], "port": bports[c]}
            for c, (_, addr, _) in CLUSTERS.items()
        ]
    }  # fmt: skip
    (tmp / "objects.yaml").write_text(yaml.safe_dump(objects))
    doc = {
        "federation": {"name": "federation", "zone": "example.com", "ttl": args.ttl, "ownerId": "bench"},
        "dns": {"provider": "embedded", "options": {"zoneFile": str(tmp / "zone.json")}},
        "clusters": [{"name": c, "region": r, "zone": f"{r}-b"} for c, (r, _, _) in CLUSTERS.items()],
        "edges": [
            {"name": f"edge-{c}", "cluster": c, "addresses": [e], "tokenFile": str(tmp / "token")}
            for c, (_, _, e) in CLUSTERS.items()
        ],
        "edgeHealth": {"staleAfter": args.stale_after},
        "source": {"kind": "static", "file": str(tmp / "objects.yaml")},
        "geo": {"database": str(build_city_db(tmp)), "trustedProxies": ["127.0.0.0/8"]},
        "proxy": {"enabled": False},
        "dnsServer": {
            "listen": f"127.0.0.1:{ports['dns']}",
            "answers": "geo",
            "zoneFile": str(tmp / "zone.json"),
        },
        "controller": {"listen": f"127.0.0.1:{ports['controller']}", "debounce": 0.05},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def geo_a(port: int, subnet: str) -> set[str]:
    q = dns.message.make_query(HOST, "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)])
    r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


async def until(pred: object, *, seconds: float = 60.0, step: float = 0.01) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if await pred():  # type: ignore[operator]
            return time.perf_counter() - t0
        await asyncio.sleep(step)
    raise SystemExit(f"not within {seconds}s")


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-edges-"))
    ports = {"dns": free_port(), "controller": free_port()}
    bports = {c: free_port() for c in CLUSTERS}
    runners = {c: await backend(c, addr, bports[c]) for c, (_, addr, _) in CLUSTERS.items()}
    config = load_config(write_config(tmp, args, ports, bports))
    checks = HealthCheckSettings(
        interval=args.interval, timeout=min(0.5, args.interval / 2), unhealthy_threshold=args.threshold
    )
    settings = ProxySettings(health_check=checks)
    async with start(config):
        controller = f"http://127.0.0.1:{ports['controller']}"
        edges = {
            c: LocalEdge(EdgeSpec(f"edge-{c}", c, e, free_port()), controller=controller, token=TOKEN,
                         settings=settings, report_interval=1.0)
            for c, (_, _, e) in CLUSTERS.items()
        }  # fmt: skip
        for e in edges.values():
            await e.start()
        eu = edges["eu"]
        async with aiohttp.ClientSession() as session:

            async def served() -> str:
                async with session.get(eu.url + "/", headers={"Host": HOST}) as r:
                    return (await r.text()) if r.status == 200 else f"HTTP {r.status}"

            await until(lambda: _is(served, "eu"))
            await until(lambda: _dns_is(ports["dns"], "81.2.69.0", CLUSTERS["eu"][2]))

            # 1a. With traffic.
            failed = 0
            moved_at: list[float] = []
            killed = asyncio.Event()
            t_kill = [0.0]
            stop = asyncio.Event()

            async def client() -> None:
                nonlocal failed
                while not stop.is_set():
                    try:
                        got = await served()
                    except aiohttp.ClientError:
                        got = "error"
                    if killed.is_set():
                        if got not in ("eu", "us"):
                            failed += 1
                        elif got == "us" and not moved_at:
                            moved_at.append(time.perf_counter() - t_kill[0])

            tasks = [asyncio.create_task(client()) for _ in range(4)]
            await asyncio.sleep(1.0)
            t_kill[0] = time.perf_counter()
            await runners["eu"].cleanup()
            killed.set()
            await until(lambda: _is(served, "us"))
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*tasks)
            window = args.interval * args.threshold
            print(
                "backend killed, with traffic: first request served elsewhere after "
                f"{moved_at[0] if moved_at else float('nan'):.3f}s; failed requests: {failed} "
                "(goal: 0, < 1 s)"
            )

            # 1b. Without traffic: revive eu, wait until the edge uses it again, kill it, watch the view.
            runners["eu"] = await backend("eu", CLUSTERS["eu"][1], bports["eu"])
            await until(lambda: _is(served, "eu"), seconds=30)
            assert eu.proxy is not None
            proxy = eu.proxy

            async def eu_down() -> bool:
                return not any(up for b, up in proxy.backend_view() if b.cluster == "eu")

            await asyncio.sleep(args.interval)
            await runners["eu"].cleanup()
            took = await until(eu_down, seconds=30)
            print(
                f"backend killed, no traffic: edge's own view down after {took:.3f}s; active-check window "
                f"interval x threshold = {window:g}s; ratio {took / window:.2f} (goal < 1)"
            )

        # 2. Edge killed -> DNS.
        await eu.stop()
        took = await until(lambda: _dns_is(ports["dns"], "81.2.69.0", CLUSTERS["us"][2]), step=0.02)
        goal = args.stale_after + args.ttl
        print(
            f"edge killed: embedded DNS answers the next edge after {took:.3f}s; "
            f"staleAfter + TTL = {goal:g}s; ratio {took / goal:.2f} "
            "(goal <= 1; resolvers caching the old answer add up to the TTL)"
        )
        await edges["us"].stop()
    for r in runners.values():
        await r.cleanup()
    print(
        f"(machine: {os.cpu_count()} cores shared with the rest of the team; load {os.getloadavg()[0]:.1f})"
    )


async def _is(served: object, want: str) -> bool:
    try:
        return await served() == want  # type: ignore[operator,no-any-return]
    except aiohttp.ClientError:
        return False


async def _dns_is(port: int, subnet: str, want: str) -> bool:
    try:
        return await geo_a(port, subnet) == {want}
    except dns.exception.DNSException:
        return False


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--interval", type=float, default=1.0, help="edge active-check interval (s)")
    p.add_argument("--threshold", type=int, default=2, help="edge unhealthyThreshold")
    p.add_argument("--stale-after", type=float, default=5.0, help="controller edgeHealth.staleAfter (s)")
    p.add_argument("--ttl", type=int, default=5, help="federation TTL (s)")
    asyncio.run(run(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
