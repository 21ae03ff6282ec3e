"""Processes the benchmarks start and stop: the server under test, nginx as a peer or a backend.

Every benchmark runs servers as their own processes on loopback ports, waits for the port to
accept, and stops them at the end, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.fakes.ports import free_port, free_ports  # the tests' and the benchmarks' one way to pick ports

__all__ = ["BACKEND", "NGINX_CONF", "free_port", "free_ports", "nginx", "served", "wait_port"]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout}s")


@contextlib.contextmanager
def served(
    cmd: Sequence[str],
    port: int,
    *,
    cwd: Path | None = None,
    start_timeout: float = 10.0,
    stop: signal.Signals = signal.SIGTERM,
    stop_timeout: float = 10.0,
    stderr: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until the block ends, once ``port`` accepts; ``stop`` it, then kill it if it lingers."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, stderr=stderr, env=env)
    try:
        wait_port(port, timeout=start_timeout)
        yield proc
    finally:
        proc.send_signal(stop)
        try:
            proc.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx-{name}.pid;
error_log {tmp}/error-{name}.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body-{name};
    proxy_temp_path {tmp}/proxy-{name};
    fastcgi_temp_path {tmp}/fcgi-{name};
    uwsgi_temp_path {tmp}/uwsgi-{name};
    scgi_temp_path {tmp}/scgi-{name};
    keepalive_requests 1000000;
    {body}
}}
"""

# The small backend every proxy benchmark sends its requests to.
BACKEND = """
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "hello from the backend\\n"; }}
    }}
"""


@contextlib.contextmanager
def nginx(
    tmp: Path, name: str, body: str, port: int, *, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with ``body`` inside its ``http`` block (SIGQUIT: a graceful stop)."""
    conf = tmp / f"nginx-{name}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, name=name, body=body, workers=workers))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    cmd = [binary, "-p", str(tmp), "-c", str(conf)]
    with served(cmd, port, stop=signal.SIGQUIT, stop_timeout=5, stderr=subprocess.PIPE) as proc:
        yield proc
