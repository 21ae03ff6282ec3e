"""Instructions per request of the proxy process, counted by callgrind: the deterministic companion
of bench/tls/run.py's CPU times, which move twofold between runs on this shared machine.

    .venv/bin/python -m bench.tls.callgrind [--workload keep-alive|h2|handshakes] [--requests N]
                                            [--source] [--out FILE]

Runs bench/tls/serve.py (the compiled build, as run.py does; ``--source`` for the checkout) under
``valgrind --tool=callgrind --instr-atstart=no`` in front of the nginx backend, warms it up, counts
exactly ``--requests`` requests between ``callgrind_control -i on`` and ``-i off``, and prints the
instructions per request:
- keep-alive: HTTPS/1.1 over 4 TLS connections opened before counting, one request in flight each;
- h2: h2load -c 4 -m 16 (its 4 handshakes are counted too, under 3% of the total at 4000 requests);
- handshakes: a new TLS connection (full handshake) per request, ``Connection: close``.
The profile is kept (``--out``) for ``callgrind_annotate --inclusive=yes [--tree=calling]``, which
names the compiled functions (``CPyDef_http2___...``) and what they call, interpreted h2 included.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import compiled  # noqa: E402
from bench.callgrind import dump_total, instrumented, read_answer, require, under_callgrind  # noqa: E402
from bench.peers import BACKEND, free_ports, nginx, served  # noqa: E402
from ingressfed.tls.authority import LocalAuthority  # noqa: E402

_BODY = b"hello from the backend\n"


def _client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _answer(sock: ssl.SSLSocket) -> None:
    read_answer(sock, _BODY)


def _keep_alive(port: int, requests: int, counted: contextlib.AbstractContextManager[None]) -> None:
    ctx = _client_context()
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: callgrind\r\nAccept: */*\r\n\r\n"
    socks = [
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        for _ in range(4)
    ]

    def rounds(n: int) -> None:
        for _ in range(n // len(socks)):
            for sock in socks:
                sock.sendall(request)
            for sock in socks:
                _answer(sock)

    rounds(400)  # warm-up
    with counted:
        rounds(requests)
    for sock in socks:
        sock.close()


def _handshakes(port: int, requests: int, counted: contextlib.AbstractContextManager[None]) -> None:
    ctx = _client_context()
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

    def one() -> None:
        raw = socket.create_connection(("127.0.0.1", port))
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(request)
            _answer(sock)

    for _ in range(20):
        one()
    with counted:
        for _ in range(requests):
            one()


def _h2(port: int, requests: int, counted: contextlib.AbstractContextManager[None]) -> None:
    def h2load(n: int) -> None:
        cmd = ["h2load", "-n", str(n), "-c", "4", "-m", "16", f"https://localhost:{port}/"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        if not re.search(rf"requests: {n} total, {n} started, {n} done, {n} succeeded", out):
            raise SystemExit(f"h2load did not finish cleanly:\n{out}")

    h2load(2000)
    with counted:
        h2load(requests)


WORKLOADS = {"keep-alive": _keep_alive, "h2": _h2, "handshakes": _handshakes}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="h2")
    parser.add_argument("--requests", type=int, help="counted requests (default 4000, 300 for handshakes)")
    parser.add_argument(
        "--source", action="store_true", help="the checkout's pure Python, not the compiled build"
    )
    parser.add_argument("--out", type=Path, help="keep the callgrind profile here")
    args = parser.parse_args()
    require("valgrind", "callgrind_control", "h2load", "nginx")
    requests = args.requests or (300 if args.workload == "handshakes" else 4000)
    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-callgrind-") as tmpdir:
        tmp = Path(tmpdir)
        issued = LocalAuthority().issue("localhost")
        certs = tmp / "certs" / "localhost"
        certs.mkdir(parents=True)
        (certs / "tls.crt").write_bytes(issued.cert_pem)
        (certs / "tls.key").write_bytes(issued.key_pem)
        backend, port, plain = free_ports(3)
        tree = compiled.source() if args.source else compiled.tree()
        print(f"ingressfed: {compiled.describe(tree)}", flush=True)
        out = tmp / "callgrind.out"  # the counted dump moves to --out; the exit writes its own here
        cmd = [sys.executable, str(Path(__file__).with_name("serve.py"))]
        cmd += ["--port", str(port), "--plain-port", str(plain), "--backend", str(backend)]
        cmd += ["--certs", str(tmp / "certs")]
        with (
            nginx(tmp, "backend", BACKEND.format(port=backend), backend),
            served(
                under_callgrind(out, cmd),
                port,
                env={**compiled.env(tree), "PYTHONHASHSEED": "0"},
                start_timeout=120,
                stderr=subprocess.DEVNULL,
            ) as proc,
        ):
            WORKLOADS[args.workload](port, requests, instrumented(proc.pid))
            total = dump_total(proc.pid, out, keep=args.out)
        per = total / requests
        print(f"{args.workload}: {per:,.0f} instructions per request ({requests} requests)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
