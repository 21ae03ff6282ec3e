"""Benchmark: HTTPRoute matching against plain Ingress paths, in the table and through the proxy.

    .venv/bin/python -m bench.gateway.run [--duration 5] [--rounds 3] [--connections 16]

Two route sets on one host: 1,000 HTTPRoutes x 10 rules (each a PathPrefix and a header match,
10,000 matches) and 1,000 plain Ingress paths. Printed: the time to build each routing table
(decision + compile for HTTPRoutes), the cost of one match in each table, and wrk req/s of two
proxy processes (one per route set, uvloop) in front of one nginx backend, rounds alternating.
The matching share of a request's proxy time is (one match) x (req/s of the HTTPRoute proxy).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.gateway.routes import CLUSTERS, HOST, gateway_inputs, ingress_routes  # noqa: E402
from bench.peers import BACKEND, free_ports, nginx, served  # noqa: E402
from geo.regions import cluster_location  # noqa: E402
from ingressfed.gateway.state import gateway_state  # noqa: E402
from ingressfed.gateway.table import build_gateway_table  # noqa: E402
from ingressfed.proxy.gateway import attach_gateway  # noqa: E402
from ingressfed.proxy.request import RequestHead  # noqa: E402
from ingressfed.proxy.table import build_table  # noqa: E402

GATEWAY_PATH = "/svc500/r7/item"
INGRESS_PATH = "/svc500/item"
VARIANT = "v7"


def best_of(fn: Callable[[], object], *, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_call(fn: Callable[[], object], *, n: int) -> float:
    """Seconds per call, median of 5 batches of ``n``."""
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        batches.append((time.perf_counter() - start) / n)
    return statistics.median(batches)


@contextlib.contextmanager
def proxy(port: int, backend: int, mode: str) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "bench.gateway.serve", "--port", str(port), "--backend", str(backend)]
    with served([*cmd, "--mode", mode], port, cwd=ROOT, start_timeout=60) as proc:
        yield proc


def wrk(port: int, path: str, *, duration: int, connections: int) -> float:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "-H",
        f"Host: {HOST}",
        "-H",
        f"X-Variant: {VARIANT}",
    ]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{path}"], check=True, capture_output=True, text=True
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(
            "  wrk reported errors:",
            [line for line in out.splitlines() if "Non-2xx" in line or "Socket" in line],
        )
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit(f"cannot read wrk output:\n{out}")


def tables(backend: int) -> dict[str, float]:
    inputs = gateway_inputs(backend)
    state = gateway_state(inputs)
    served = state.served
    ingress = ingress_routes(backend)
    assert len(served) == 10_000, len(served)
    out = {
        "ingress build (1,000 paths)": best_of(
            lambda: build_table(ingress, CLUSTERS, version=1, locate=cluster_location), repeat=5
        ),
        "HTTPRoute decision + status (1,000 x 10)": best_of(lambda: gateway_state(inputs), repeat=3),
        "HTTPRoute matcher compile": best_of(lambda: build_gateway_table(served), repeat=3),
        "HTTPRoute proxy table (attach)": best_of(
            lambda: attach_gateway(
                build_table([], CLUSTERS, version=1, locate=cluster_location),
                served,
                CLUSTERS,
                locate=cluster_location,
            ),
            repeat=3,
        ),
    }
    ing_table = build_table(ingress, CLUSTERS, version=1, locate=cluster_location)
    gw_table = attach_gateway(
        build_table([], CLUSTERS, version=1, locate=cluster_location),
        served,
        CLUSTERS,
        locate=cluster_location,
    )
    gw_head = RequestHead(
        method=b"GET",
        target=GATEWAY_PATH.encode(),
        headers=[(b"Host", HOST.encode()), (b"User-Agent", b"wrk"), (b"X-Variant", VARIANT.encode())],
    )
    ing_head = RequestHead(method=b"GET", target=INGRESS_PATH.encode(), headers=[(b"Host", HOST.encode())])
    assert gw_table.match(HOST, GATEWAY_PATH, gw_head) is not None
    assert ing_table.match(HOST, INGRESS_PATH, ing_head) is not None
    out["match: Ingress table"] = per_call(lambda: ing_table.match(HOST, INGRESS_PATH, ing_head), n=20_000)
    out["match: HTTPRoute table"] = per_call(lambda: gw_table.match(HOST, GATEWAY_PATH, gw_head), n=20_000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (Debian packages: wrk, nginx-light)")
    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-gw-") as tmpdir:
        tmp = Path(tmpdir)
        backend, ing_port, gw_port = free_ports(3)
        with contextlib.ExitStack() as stack:
            stack.enter_context(nginx(tmp, "backend", BACKEND.format(port=backend), backend))
            t = tables(backend)
            for name, seconds in t.items():
                unit = (seconds * 1e6, "us") if name.startswith("match") else (seconds * 1e3, "ms")
                print(f"{name:42s} {unit[0]:10.2f} {unit[1]}")
            build = t["HTTPRoute proxy table (attach)"] / t["ingress build (1,000 paths)"]
            print(f"build ratio HTTPRoute proxy table / Ingress table = {build:.1f}")
            match = t["match: HTTPRoute table"] / t["match: Ingress table"]
            print(f"match ratio HTTPRoute / Ingress = {match:.2f}")
            stack.enter_context(proxy(ing_port, backend, "ingress"))
            stack.enter_context(proxy(gw_port, backend, "gateway"))
            contestants = [("ingress", ing_port, INGRESS_PATH), ("httproute", gw_port, GATEWAY_PATH)]
            for _, port, path in contestants:
                wrk(port, path, duration=1, connections=args.connections)
            rps: dict[str, list[float]] = {name: [] for name, _, _ in contestants}
            for i in range(args.rounds):
                order = contestants if i % 2 == 0 else contestants[::-1]
                for name, port, path in order:
                    r = wrk(port, path, duration=args.duration, connections=args.connections)
                    rps[name].append(r)
                    print(f"round {i + 1} {name:10s} {r:9.0f} req/s")
            med = {name: statistics.median(v) for name, v in rps.items()}
            print(f"median req/s: ingress {med['ingress']:.0f}, httproute {med['httproute']:.0f}")
            print(f"req/s ratio httproute/ingress = {med['httproute'] / med['ingress']:.2f}")
            share = t["match: HTTPRoute table"] * med["httproute"]
            print(f"HTTPRoute matching share of a request's proxy time = {share * 100:.2f}% (target < 10%)")
            print("note: 2 shared cores; wrk, nginx and the proxy compete with each other and other work")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
