"""Benchmark: HTTPS through the ingressfed proxy and through nginx (ssl + http2), same certificate,
same nginx backend, one worker each.

    .venv/bin/python -m bench.tls.run [--duration 5] [--rounds 3] [--connections 16]
                                      [--source] [--with-floor] [--profile perf|cprofile]

The ingressfed proxy measured is the build the image ships: the checkout's wheel with the request
path compiled by mypyc (bench/compiled.py builds it once per source state; ADR 0016); ``--source``
measures the checkout's pure Python instead.

Measured per round, alternating the two to spread the noise of a shared machine:
- HTTPS keep-alive req/s and p50/p99 (wrk, HTTP/1.1);
- full TLS handshakes/s (wrk with ``Connection: close``: a new connection, and a full handshake
  since wrk keeps no sessions, per request);
- HTTP/2 req/s (h2load, ``-m 16`` streams per connection).
Each also as CPU time (user+sys, /proc) of the server's process tree per request, which a shared
machine's contention moves much less than req/s.
``--profile perf`` ends with one more run of each workload against ingressfed under ``perf record``
and prints where its CPU went, per request: by shared object (the kernel, CPython's interpreter,
i.e. every module still run as Python; the compiled ingressfed modules; ngh2's libnghttp2;
OpenSSL; uvloop; httptools) and the top symbols. ``--profile cprofile`` (with ``--source``) prints
cProfile's view of the whole run.
``--with-floor`` also measures HTTPS keep-alive CPU per request of the floors (bench/proxy/floor.py
over plain HTTP and bench/tls/floor.py, the same proxy behind uvloop's TLS) and of ingressfed's own
plain listener, and prints what TLS costs the floor (the transport's price, not ours) next to what
it costs ingressfed.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import compiled  # noqa: E402
from bench.peers import BACKEND, free_ports, nginx, served  # noqa: E402
from bench.procstat import cpu_seconds, process_tree  # noqa: E402
from bench.proxy.run import LATENCY, UNITS  # noqa: E402
from ingressfed.tls.authority import LocalAuthority  # noqa: E402

NGINX_TLS = """
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
    ssl_session_cache shared:SSL:10m;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        http2_max_concurrent_streams 128;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Served-By-Cluster cluster-europe-west1-b;
        }}
    }}
"""


@contextlib.contextmanager
def ingressfed(
    port: int, plain: int, backend: int, certs: Path, profile: Path | None, tree: Path = compiled.ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """The proxy, from ``tree`` (a compiled build, or the checkout: ``compiled.source()``)."""
    cmd = [sys.executable, str(Path(__file__).with_name("serve.py")), "--port", str(port)]
    cmd += ["--plain-port", str(plain), "--backend", str(backend), "--certs", str(certs)]
    if profile is not None:
        cmd += ["--cprofile", str(profile)]
    with served(cmd, port, env=compiled.env(tree)) as proc:
        yield proc


def wrk(
    port: int,
    *,
    duration: int,
    connections: int,
    close: bool,
    server: int | None = None,
    scheme: str = "https",
) -> dict[str, float]:
    """One wrk run; with ``server`` (a pid) also the CPU time its process tree spent per request."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    pids = process_tree(server) if server is not None else []
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(
        [*cmd, f"{scheme}://localhost:{port}/"], check=True, capture_output=True, text=True
    ).stdout
    cpu = cpu_seconds(pids) - cpu0
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    lat = {p: float(v) * UNITS[u] for p, v, u in LATENCY.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        print("  wrk:", bad.group(0))
    requests = int(total.group(1)) if total else 0
    return {
        "rps": float(rps.group(1)),
        "p50": lat.get("50", float("nan")),
        "p99": lat.get("99", float("nan")),
        "cpu_us": cpu / requests * 1e6 if requests and pids else float("nan"),
    }


@contextlib.contextmanager
def floors(
    plain: int, tls: int, backend: int, certs: Path
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    here = Path(__file__).resolve()
    plain_cmd = [sys.executable, str(here.parents[1] / "proxy" / "floor.py"), "--port", str(plain)]
    tls_cmd = [sys.executable, str(here.with_name("floor.py")), "--port", str(tls)]
    tls_cmd += ["--cert", str(certs / "localhost" / "tls.crt"), "--key", str(certs / "localhost" / "tls.key")]
    with (
        served([*plain_cmd, "--backend", str(backend)], plain) as plain_proc,
        served([*tls_cmd, "--backend", str(backend)], tls) as tls_proc,
    ):
        yield plain_proc, tls_proc


def h2load(port: int, *, requests: int, connections: int, server: int | None = None) -> tuple[float, float]:
    """(req/s, CPU µs per request of the ``server`` process tree)."""
    cmd = ["h2load", "-n", str(requests), "-c", str(connections), "-m", "16", f"https://localhost:{port}/"]
    pids = process_tree(server) if server is not None else []
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    cpu = cpu_seconds(pids) - cpu0
    done = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if done is None or ok is None or int(ok.group(1)) != requests:
        raise SystemExit(f"h2load did not finish cleanly:\n{out}")
    return float(done.group(1)), (cpu / requests * 1e6 if pids else float("nan"))


def perf_profile(workload: str, port: int, pid: int, args: argparse.Namespace, data: Path) -> None:
    """One more run of ``workload`` under ``perf record``; prints CPU µs per request by shared object
    and the top symbols (the samples' count over the sampling rate and the requests served)."""
    rate = 999
    recorder = subprocess.Popen(
        ["perf", "record", "-q", "-F", str(rate), "-p", str(pid), "-o", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if workload == "h2":
            requests = args.h2_requests
            h2load(port, requests=requests, connections=args.connections)
        else:
            cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s"]
            cmd += ["-H", "Connection: close"] if workload == "handshakes" else []
            out = subprocess.run(
                [*cmd, f"https://localhost:{port}/"], check=True, capture_output=True, text=True
            ).stdout
            found = re.search(r"(\d+) requests in", out)
            requests = int(found.group(1)) if found else 0
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(30)
    report_cmd = ["perf", "report", "-i", str(data), "--no-children", "-g", "none", "--stdio"]
    report = subprocess.run(
        [*report_cmd, "--sort", "dso,symbol", "-F", "sample,dso,symbol"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    by_dso: dict[str, int] = {}
    by_symbol: dict[tuple[str, str], int] = {}
    for line in report.splitlines():
        fields = line.split(None, 2)
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        samples, dso, symbol = int(fields[0]), Path(fields[1]).name, fields[2].split("] ", 1)[-1].strip()
        by_dso[dso] = by_dso.get(dso, 0) + samples
        by_symbol[dso, symbol] = by_symbol.get((dso, symbol), 0) + samples
    if not requests or not by_dso:
        print(f"perf {workload}: no samples (is perf allowed here?)")
        return
    per = 1e6 / rate / requests  # µs of CPU per request for one sample
    total = sum(by_dso.values()) * per
    print(f"perf {workload}: ingressfed CPU {total:.0f} µs per request ({requests} requests), by object:")
    for dso, n in sorted(by_dso.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n * per:7.1f} µs  {_object_name(dso)}")
    print("  top symbols:")
    for (dso, symbol), n in sorted(by_symbol.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {n * per:7.1f} µs  {_object_name(dso)[:34]:34s} {symbol[:70]}")


def _object_name(dso: str) -> str:
    """A shared object as what it holds."""
    if dso.startswith("libpython"):
        return dso + " (interpreted Python: every module not compiled)"
    if dso.startswith(("_core.cpython", "events.cpython")):  # ngh2's two extension modules
        return "ngh2 (libnghttp2, the HTTP/2 engine)"
    if "__mypyc" in dso:
        return "ingressfed compiled (mypyc)"
    return dso


def median(values: list[float]) -> float:
    """The middle value; with an even count the mean of the two middle ones (not the upper one)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--h2-requests", type=int, default=40000)
    parser.add_argument(
        "--profile",
        choices=["perf", "cprofile"],
        help="where ingressfed's CPU goes per request (perf sees compiled code; cprofile needs --source)",
    )
    parser.add_argument(
        "--source",
        action="store_true",
        help="measure the checkout's pure Python instead of the compiled build the image ships (ADR 0016)",
    )
    parser.add_argument(
        "--with-floor", action="store_true", help="also the floors' and ingressfed's plain keep-alive CPU"
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "h2load"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (Debian packages: wrk, nginx-light, nghttp2-client)")
    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-tls-") as tmpdir:
        tmp = Path(tmpdir)
        issued = LocalAuthority().issue("localhost")
        certs = tmp / "certs"
        (certs / "localhost").mkdir(parents=True)
        (certs / "localhost" / "tls.crt").write_bytes(issued.cert_pem)
        (certs / "localhost" / "tls.key").write_bytes(issued.key_pem)
        backend, theirs, ours, plain, floor_plain, floor_tls = free_ports(6)
        conf = NGINX_TLS.format(
            backend=backend,
            port=theirs,
            cert=certs / "localhost" / "tls.crt",
            key=certs / "localhost" / "tls.key",
        )
        if args.profile == "cprofile" and not args.source:
            raise SystemExit("--profile cprofile sees no compiled code: add --source, or use --profile perf")
        tree = compiled.source() if args.source else compiled.tree()
        print(f"ingressfed: {compiled.describe(tree)}", flush=True)
        profile = tmp / "proxy.prof" if args.profile == "cprofile" else None
        with contextlib.ExitStack() as stack:
            stack.enter_context(nginx(tmp, "backend", BACKEND.format(port=backend), backend))
            nginx_proc = stack.enter_context(nginx(tmp, "tls", conf, theirs))
            ours_proc = stack.enter_context(ingressfed(ours, plain, backend, certs, profile, tree))
            contestants = [("nginx", theirs), ("ingressfed", ours)]
            pid = {"nginx": nginx_proc.pid, "ingressfed": ours_proc.pid}
            # keep-alive only, as (scheme, port, pid): what TLS costs a floor and ingressfed
            extra: dict[str, tuple[str, int, int]] = {}
            if args.with_floor:
                fp, ft = stack.enter_context(floors(floor_plain, floor_tls, backend, certs))
                extra = {
                    "floor plain": ("http", floor_plain, fp.pid),
                    "floor TLS": ("https", floor_tls, ft.pid),
                    "ingressfed plain": ("http", plain, ours_proc.pid),
                }
            floor_cpu: dict[str, list[float]] = {name: [] for name in extra}
            for _, port in contestants:  # warm up
                wrk(port, duration=1, connections=args.connections, close=False)
            results: dict[str, dict[str, list[float]]] = {
                n: {"ka": [], "hs": [], "h2": [], "p99": [], "ka_cpu": [], "hs_cpu": [], "h2_cpu": []}
                for n, _ in contestants
            }
            for i in range(args.rounds):
                for name, port in contestants if i % 2 == 0 else contestants[::-1]:
                    conns, server = args.connections, pid[name]
                    ka = wrk(port, duration=args.duration, connections=conns, close=False, server=server)
                    hs = wrk(port, duration=args.duration, connections=conns, close=True, server=server)
                    h2, h2_cpu = h2load(port, requests=args.h2_requests, connections=conns, server=server)
                    r = results[name]
                    r["ka"].append(ka["rps"])
                    r["p99"].append(ka["p99"])
                    r["hs"].append(hs["rps"])
                    r["h2"].append(h2)
                    r["ka_cpu"].append(ka["cpu_us"])
                    r["hs_cpu"].append(hs["cpu_us"])
                    r["h2_cpu"].append(h2_cpu)
                    print(
                        f"round {i + 1} {name:10s} keep-alive {ka['rps']:8.0f} req/s "
                        f"(p50 {ka['p50']:.2f} ms, p99 {ka['p99']:.2f} ms, {ka['cpu_us']:.0f} µs CPU/req)  "
                        f"handshakes {hs['rps']:7.0f}/s ({hs['cpu_us']:.0f} µs)  "
                        f"h2 {h2:8.0f} req/s ({h2_cpu:.0f} µs CPU/req)",
                        flush=True,
                    )
                for name, (scheme, port, server) in extra.items():
                    ka = wrk(
                        port,
                        duration=args.duration,
                        connections=args.connections,
                        close=False,
                        server=server,
                        scheme=scheme,
                    )
                    floor_cpu[name].append(ka["cpu_us"])
                    print(
                        f"round {i + 1} {name:16s} keep-alive {ka['rps']:8.0f} req/s "
                        f"({ka['cpu_us']:.0f} µs CPU/req)",
                        flush=True,
                    )
            ours_r, theirs_r = results["ingressfed"], results["nginx"]
            for key, label, goal in (
                ("ka", "HTTPS keep-alive", 0.6),
                ("hs", "full handshakes", 0.5),
                ("h2", "HTTP/2 (h2load -m 16)", 0.5),
            ):
                ratios = sorted(a / b for a, b in zip(ours_r[key], theirs_r[key], strict=True))
                cpu = {n: median(r[key + "_cpu"]) for n, r in results.items()}
                print(
                    f"{label:22s} ingressfed/nginx median {median(ratios):.2f} "
                    f"(best {ratios[-1]:.2f}; goal >= {goal}); CPU per request: ingressfed "
                    f"{cpu['ingressfed']:.0f} µs, nginx {cpu['nginx']:.0f} µs "
                    f"(nginx/ingressfed {cpu['nginx'] / cpu['ingressfed']:.2f})"
                )
            for name, r in results.items():
                p99 = median(r["p99"])
                print(f"{name:10s} median p99 at {args.connections} connections: {p99:.2f} ms")
            if extra:
                cpu = {name: median(values) for name, values in floor_cpu.items()}
                ours_ka = median(ours_r["ka_cpu"])
                print(
                    f"keep-alive CPU per request: TLS costs the floor "
                    f"{cpu['floor TLS'] - cpu['floor plain']:.0f} µs "
                    f"({cpu['floor plain']:.0f} -> {cpu['floor TLS']:.0f}), ingressfed "
                    f"{ours_ka - cpu['ingressfed plain']:.0f} µs "
                    f"({cpu['ingressfed plain']:.0f} -> {ours_ka:.0f}); nginx over TLS "
                    f"{median(theirs_r['ka_cpu']):.0f} µs"
                )
            if args.profile == "perf":
                for workload in ("keep-alive", "handshakes", "h2"):
                    perf_profile(workload, ours, ours_proc.pid, args, tmp / f"perf-{workload}.data")
        if profile is not None and profile.exists():
            import pstats

            pstats.Stats(str(profile)).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
