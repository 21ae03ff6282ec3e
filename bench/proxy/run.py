"""Benchmark: wrk through the ingressfed proxy and through nginx, to the same small backend.

    .venv/bin/python bench/proxy/run.py [--duration 5] [--rounds 3] [--connections 16]
                                        [--no-uvloop | --with-asyncio] [--with-floor]
                                        [--source | --with-source] [--profile cprofile|py-spy|perf]

The ingressfed proxy measured is the build the image ships: the checkout's wheel with the request
path compiled by mypyc (bench/compiled.py builds it once per source state; ADR 0016).
Both proxies get one worker process. The backend is an nginx ``return 200`` server (its own
process), shared by both. Every request carries ``X-Forwarded-For`` from a trusted peer, so the
ingressfed proxy does its full geo routing (client address, GeoIP lookup, ranking) per request.
Rounds alternate between the two proxies to spread the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import compiled  # noqa: E402
from bench.peers import BACKEND, free_port, free_ports, nginx, served  # noqa: E402
from bench.procstat import cpu_seconds, process_tree  # noqa: E402

HOST = "app.example.com"
CLIENT_IP = "81.2.69.10"  # London in the test City database; a European address in real ones


PROXY = """
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        server_name {host};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            add_header X-Served-By-Cluster cluster-europe-west1-b;
        }}
    }}
"""


@contextlib.contextmanager
def ingressfed_proxy(
    port: int,
    backend: int,
    db: Path,
    *,
    uvloop: bool,
    profile: str | None,
    tmp: Path,
    tree: Path,
    workers: int = 1,
) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, str(Path(__file__).with_name("serve.py")), "--port", str(port)]
    cmd += ["--backend", str(backend), "--database", str(db), "--workers", str(workers)]
    if not uvloop:
        cmd.append("--no-uvloop")
    if profile == "cprofile":
        cmd += ["--cprofile", str(tmp / "proxy.prof")]
    with served(cmd, port, env=compiled.env(tree)) as proc:
        yield proc


@contextlib.contextmanager
def floor(port: int, backend: int) -> Iterator[subprocess.Popen[bytes]]:
    script = str(Path(__file__).with_name("floor.py"))
    with served([sys.executable, script, "--port", str(port), "--backend", str(backend)], port) as proc:
        yield proc


LATENCY = re.compile(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    port: int, *, duration: int, connections: int, threads: int, server: int | None = None
) -> dict[str, float]:
    """One wrk run; with ``server`` (a pid), also the CPU time that process tree spent per request."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    cmd += ["-H", f"Host: {HOST}", "-H", f"X-Forwarded-For: {CLIENT_IP}", f"http://127.0.0.1:{port}/"]
    pids = process_tree(server) if server is not None else []
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    cpu = cpu_seconds(pids) - cpu0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    lat = {p: float(v) * UNITS[u] for p, v, u in LATENCY.findall(out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        print(
            "  wrk reported errors:",
            errors.group(0) if errors else "",
            socket_errors.group(0) if socket_errors else "",
        )
    total = re.search(r"(\d+) requests in", out)
    requests = int(total.group(1)) if total else 0
    return {
        "rps": float(rps.group(1)),
        "p50": lat.get("50", float("nan")),
        "p99": lat.get("99", float("nan")),
        "cpu_us": cpu / requests * 1e6 if requests and pids else float("nan"),
    }


def check_routing(port: int) -> str:
    """One request through the ingressfed proxy: proves the geo route and returns the serving cluster."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            f"GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: {CLIENT_IP}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    match = re.search(rb"X-Served-By-Cluster: (\S+)", data)
    if not data.startswith(b"HTTP/1.1 200") or match is None:
        raise SystemExit(f"the proxy does not route: {data[:200]!r}")
    return match.group(1).decode()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--no-uvloop", action="store_true", help="run the ingressfed proxy on asyncio's loop")
    parser.add_argument(
        "--with-asyncio", action="store_true", help="also run a second ingressfed proxy on asyncio's loop"
    )
    parser.add_argument(
        "--with-floor",
        action="store_true",
        help="also run bench/proxy/floor.py: the least a Python proxy on uvloop+httptools does per request",
    )
    parser.add_argument(
        "--source",
        action="store_true",
        help="measure the checkout's pure Python instead of the compiled build the image ships (ADR 0016)",
    )
    parser.add_argument(
        "--with-source", action="store_true", help="also run the checkout's pure Python (ingressfed-source)"
    )
    parser.add_argument(
        "--profile",
        choices=["cprofile", "py-spy", "perf"],
        help="profile the ingressfed proxy (compiled code is seen by perf only; the others need --source)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes per proxy: nginx worker_processes, proxy.workers"
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (Debian packages: wrk, nginx-light)")

    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-") as tmpdir:
        tmp = Path(tmpdir)
        from tests.fakes.geoip_db import build_city_db

        db = build_city_db(tmp)
        tree = compiled.source() if args.source else compiled.tree()
        print(f"ingressfed: {compiled.describe(tree)}")
        backend, nginx_port, ours, ours_asyncio, ours_source = free_ports(5)
        with contextlib.ExitStack() as stack:
            stack.enter_context(nginx(tmp, "backend", BACKEND.format(port=backend), backend))
            nginx_proc = stack.enter_context(
                nginx(
                    tmp,
                    "proxy",
                    PROXY.format(port=nginx_port, backend=backend, host=HOST),
                    nginx_port,
                    workers=args.workers,
                )
            )
            main_name = "ingressfed" + ("-source" if args.source else "")
            main_name += "-asyncio" if args.no_uvloop else ""
            proc = stack.enter_context(
                ingressfed_proxy(
                    ours,
                    backend,
                    db,
                    uvloop=not args.no_uvloop,
                    profile=args.profile,
                    tmp=tmp,
                    tree=tree,
                    workers=args.workers,
                )
            )
            contestants = [("nginx", nginx_port), (main_name, ours)]
            pids = {"nginx": nginx_proc.pid, main_name: proc.pid}
            if args.with_asyncio and not args.no_uvloop:
                pids["ingressfed-asyncio"] = stack.enter_context(
                    ingressfed_proxy(
                        ours_asyncio, backend, db, uvloop=False, profile=None, tmp=tmp, tree=tree
                    )
                ).pid
                contestants.append(("ingressfed-asyncio", ours_asyncio))
            if args.with_source and not args.source:
                pids["ingressfed-source"] = stack.enter_context(
                    ingressfed_proxy(
                        ours_source,
                        backend,
                        db,
                        uvloop=not args.no_uvloop,
                        profile=None,
                        tmp=tmp,
                        tree=compiled.source(),
                        workers=args.workers,
                    )
                ).pid
                contestants.append(("ingressfed-source", ours_source))
            if args.with_floor:
                floor_port = free_port()
                pids["python-floor"] = stack.enter_context(floor(floor_port, backend)).pid
                contestants.append(("python-floor", floor_port))
            for name, port in contestants[1:]:
                if name != "python-floor":
                    print(f"{name} serves {check_routing(port)} for {CLIENT_IP}")
            print(
                f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, X-Forwarded-For: {CLIENT_IP}"
            )
            spy: subprocess.Popen[bytes] | None = None
            recording = args.duration * args.rounds * len(contestants) + 2
            if args.profile == "perf":
                spy = subprocess.Popen(
                    [
                        *("perf", "record", "-q", "-F", "999", "-g", "-p", str(proc.pid)),
                        *("-o", str(tmp / "perf.data"), "--", "sleep", str(recording)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            if args.profile == "py-spy":
                spy = subprocess.Popen(
                    [
                        shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--rate",
                        "250",
                        "--pid",
                        str(proc.pid),
                        "--format",
                        "raw",
                        "--output",
                        str(tmp / "spy.txt"),
                        "--duration",
                        str(recording),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in contestants}
            for _, port in contestants:  # warm up connections and caches
                wrk(port, duration=1, connections=args.connections, threads=args.threads)
            for i in range(args.rounds):
                order = contestants if i % 2 == 0 else contestants[::-1]
                for name, port in order:
                    r = wrk(
                        port,
                        duration=args.duration,
                        connections=args.connections,
                        threads=args.threads,
                        server=pids[name],
                    )
                    results[name].append(r)
                    print(
                        f"round {i + 1} {name:18s} {r['rps']:9.0f} req/s  "
                        f"p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  CPU {r['cpu_us']:6.1f} us/req"
                    )
                for name, _ in contestants[1:]:
                    ratio = results[name][-1]["rps"] / results["nginx"][-1]["rps"]
                    print(f"round {i + 1} ratio {name}/nginx = {ratio:.2f}")
            for name, _ in contestants[1:]:
                ratios = sorted(
                    a["rps"] / b["rps"] for a, b in zip(results[name], results["nginx"], strict=True)
                )
                # Requests per CPU-second, ours over nginx's: what the throughput ratio would be if
                # each proxy had a core to itself (it moves less with the machine's other load).
                per_cpu = sorted(
                    b["cpu_us"] / a["cpu_us"] for a, b in zip(results[name], results["nginx"], strict=True)
                )
                # statistics.median: with an even number of rounds, the mean of the middle two
                print(
                    f"{name}/nginx ratio: best {ratios[-1]:.2f}, median {statistics.median(ratios):.2f}; "
                    f"requests per CPU-second ratio: median {statistics.median(per_cpu):.2f}"
                )
            for name, rs in results.items():
                print(
                    f"{name:18s} best {max(r['rps'] for r in rs):9.0f} req/s; median p99 "
                    f"{statistics.median(r['p99'] for r in rs):.2f} ms; median CPU "
                    f"{statistics.median(r['cpu_us'] for r in rs):.1f} us/req"
                )
            if spy is not None:
                spy.wait()
        if args.profile == "cprofile":
            import pstats

            pstats.Stats(str(tmp / "proxy.prof")).sort_stats("tottime").print_stats(25)
        if args.profile == "py-spy" and (tmp / "spy.txt").exists():
            print_spy(tmp / "spy.txt")
        if args.profile == "perf" and (tmp / "perf.data").exists():
            print_perf(tmp / "perf.data")
    return 0


def _perf_report(path: Path, sort: str) -> list[list[str]]:
    """``perf report`` rows (self time, ``sort`` columns), each split into words ("-" dropped)."""
    out = subprocess.run(
        ["perf", "report", "-i", str(path), "--no-children", "--sort", sort, "-g", "none", "--stdio"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rows = (line for line in out.splitlines() if line.strip() and not line.startswith("#"))
    return [[word for word in row.split() if word != "-"] for row in rows]


def print_perf(path: Path) -> None:
    """Self time by shared object, then by object and symbol (kernel, CPython, uvloop, httptools, the
    compiled modules), top 30: where a compiled proxy's time goes, which Python profilers cannot see."""
    print("perf: self time by object:")
    for share, dso, *_ in _perf_report(path, "dso"):
        print(f"  {share:>7s}  {Path(dso).name}")
    print("perf: self time by object and symbol:")
    for share, dso, _kind, *symbol in _perf_report(path, "dso,symbol")[:30]:
        print(f"  {share:>7s}  {Path(dso).name[:40]:40s}  {' '.join(symbol)[:70]}")


def print_spy(path: Path) -> None:
    """Summarise py-spy's raw (collapsed stack) output: self time per function, top 25."""
    self_time: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        leaf = frames[-1]
        self_time[leaf] = self_time.get(leaf, 0) + n
    print(f"py-spy: {total} samples; self time by function:")
    for name, n in sorted(self_time.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
