"""Instructions per request of the plain HTTP proxy process, counted by callgrind: the
deterministic companion of bench/proxy/run.py's CPU times.

    .venv/bin/python -m bench.proxy.callgrind [--requests N] [--source] [--floor] [--cache-sim] [--out FILE]

Runs bench/proxy/serve.py (the compiled build, as run.py does; ``--source`` for the checkout) in
front of the nginx backend, with run.py's routing: three clusters, GeoIP on, ``X-Forwarded-For``
from a trusted peer on every request. Four keep-alive connections send one request at a time
each; 500 requests warm up, then exactly ``--requests`` are counted. ``--floor`` counts
bench/proxy/floor.py instead (the least a Python proxy on uvloop and httptools does).
The profile is kept with ``--out`` for ``callgrind_annotate --inclusive=yes [--tree=calling]``.
``--cache-sim`` also simulates valgrind's model of the caches and branch predictors and prints their
misses per request: where two builds run about the same instructions and different CPU times,
that is where the difference goes (``callgrind_annotate --sort=D1mr`` then names the functions).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import compiled  # noqa: E402
from bench.callgrind import EVENTS, dump_total, events, instrumented, read_answer, require, under_callgrind  # noqa: E402
from bench.peers import BACKEND, free_ports, nginx, served  # noqa: E402

_BODY = b"hello from the backend\n"
_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 81.2.69.10\r\n"
    b"User-Agent: callgrind\r\nAccept: */*\r\n\r\n"
)


def drive(port: int, requests: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    for _ in range(requests // len(socks)):
        for sock in socks:
            sock.sendall(_REQUEST)
        for sock in socks:
            read_answer(sock, _BODY)
    for sock in socks:
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="counted requests")
    parser.add_argument(
        "--source", action="store_true", help="the checkout's pure Python, not the compiled build"
    )
    parser.add_argument("--floor", action="store_true", help="count bench/proxy/floor.py instead")
    parser.add_argument("--out", type=Path, help="keep the callgrind profile here")
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate caches and branch prediction, and print their misses per request",
    )
    args = parser.parse_args()
    require("valgrind", "callgrind_control", "nginx")
    from tests.fakes.geoip_db import build_city_db

    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-callgrind-") as tmpdir:
        tmp = Path(tmpdir)
        backend, port = free_ports(2)
        out = tmp / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        if args.floor:
            print("python-floor: bench/proxy/floor.py", flush=True)
            cmd = [sys.executable, str(Path(__file__).with_name("floor.py")), "--port", str(port)]
            cmd += ["--backend", str(backend)]
        else:
            tree = compiled.source() if args.source else compiled.tree()
            print(f"ingressfed: {compiled.describe(tree)}", flush=True)
            env.update(compiled.env(tree))
            cmd = [sys.executable, str(Path(__file__).with_name("serve.py")), "--port", str(port)]
            cmd += ["--backend", str(backend), "--database", str(build_city_db(tmp))]
        with (
            nginx(tmp, "backend", BACKEND.format(port=backend), backend),
            served(
                under_callgrind(out, cmd, cache_sim=args.cache_sim), port, env=env, start_timeout=120
            ) as proc,
        ):
            drive(port, 500)
            with instrumented(proc.pid):
                drive(port, args.requests)
            kept = args.out or tmp / "counted.out"
            total = dump_total(proc.pid, out, keep=kept)
        print(f"{total / args.requests:,.0f} instructions per request ({args.requests} requests)")
        if args.cache_sim:
            found = events(kept)
            for name, meaning in EVENTS.items():
                if name in found:
                    print(f"  {found[name] / args.requests:10,.0f}  {meaning} ({name}) per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
