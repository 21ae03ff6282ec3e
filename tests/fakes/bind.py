"""Real authoritative servers for RFC 2136 tests: BIND9 ``named`` and Knot ``knotd``.

Not fakes: each is the real daemon, started in the foreground on a free loopback
port (UDP and TCP) with a temporary working directory, one dynamic zone that
accepts updates and transfers signed with a TSIG key, and stopped (and waited
for) when the context exits. Under ``CI=true`` a missing binary fails the test;
locally it skips.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.fakes.ports import free_port

KEY_NAME = "ingressfed-key"
ZONE_FILE = """$ORIGIN {zone}.
$TTL 300
@ IN SOA ns1.example.net. hostmaster.{zone}. 1 3600 600 86400 60
@ IN NS ns1.example.net.
"""


@dataclass(frozen=True)
class DnsServer:
    kind: str  # "bind" or "knot"
    host: str
    port: int
    zone: str
    key_name: str
    secret: str  # base64
    algorithm: str
    workdir: Path

    def options(self, **extra: object) -> dict[str, object]:
        """Provider options that reach this server with its key."""
        return {
            "server": self.host,
            "port": self.port,
            "tsigKeyName": self.key_name,
            "tsigSecret": self.secret,
            "tsigAlgorithm": self.algorithm,
            "timeout": 3.0,
            **extra,
        }


def require(binary: str) -> str:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        package = "bind9" if binary == "named" else "knot"
        msg = f"{binary} is not installed (Debian: apt-get install -y {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _wait_ready(proc: subprocess.Popen[bytes], server: DnsServer, log: Path) -> None:
    query = dns.message.make_query(server.zone + ".", "SOA")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.kind} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            r = dns.query.udp(query, server.host, port=server.port, timeout=0.2)
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                return
        except (dns.exception.DNSException, OSError):
            # Not up yet. BadResponse is one of these: until the server binds the port, the
            # kernel may give our query socket that same (just freed) port, and the query comes
            # back to us unanswered.
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"{server.kind} did not answer for {server.zone} within 15 s:\n{log.read_text()[-4000:]}"
    )


@contextlib.contextmanager
def _run(argv: list[str], server: DnsServer) -> Iterator[DnsServer]:
    log = server.workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=server.workdir)
    try:
        _wait_ready(proc, server, log)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@contextlib.contextmanager
def named(
    workdir: Path,
    *,
    zone: str = "example.com",
    algorithm: str = "hmac-sha256",
    deny: tuple[str, ...] = (),
    like: DnsServer | None = None,
) -> Iterator[DnsServer]:
    """BIND9 with ``zone`` dynamic (updates and AXFR allowed for the TSIG key only);
    updates of the names in ``deny`` are refused by the server's update-policy.

    ``like``: restart a stopped server's zone on its port with its key (a fresh empty zone).
    """
    binary = require("named")
    workdir.mkdir(parents=True, exist_ok=True)
    if like is not None:
        server = DnsServer(
            "bind", like.host, like.port, like.zone, like.key_name, like.secret, like.algorithm, workdir
        )
        zone, algorithm = like.zone, like.algorithm
    else:
        server = DnsServer("bind", "127.0.0.1", free_port(), zone, KEY_NAME, _secret(), algorithm, workdir)
    (workdir / f"{zone}.db").write_text(ZONE_FILE.format(zone=zone))
    (workdir / f"{zone}.db.jnl").unlink(missing_ok=True)
    rules = [f'deny "{KEY_NAME}" name {name}. ANY;' for name in deny]
    policy = " ".join([*rules, f'grant "{KEY_NAME}" zonesub ANY;'])
    (workdir / "named.conf").write_text(
        f"""
options {{
    directory "{workdir}";
    pid-file "{workdir}/named.pid";
    session-keyfile "{workdir}/session.key";
    managed-keys-directory "{workdir}";
    listen-on port {server.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm {algorithm}; secret "{server.secret}"; }};
zone "{zone}" {{
    type primary;
    file "{workdir}/{zone}.db";
    update-policy {{ {policy} }};
    allow-transfer {{ key "{KEY_NAME}"; }};
}};
"""
    )
    argv = [binary, "-g", "-n", "1", "-c", str(workdir / "named.conf")]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    with _run(argv, server) as s:
        yield s


@contextlib.contextmanager
def knotd(
    workdir: Path,
    *,
    zone: str = "example.com",
    algorithm: str = "hmac-sha256",
    zone_text: str | None = None,
) -> Iterator[DnsServer]:
    """Knot DNS with ``zone`` accepting updates and AXFR signed with the TSIG key.

    ``zone_text``: the zone file to serve instead of the empty dynamic zone.
    """
    binary = require("knotd")
    workdir.mkdir(parents=True, exist_ok=True)
    server = DnsServer("knot", "127.0.0.1", free_port(), zone, KEY_NAME, _secret(), algorithm, workdir)
    (workdir / "db").mkdir(exist_ok=True)
    (workdir / f"{zone}.zone").write_text(zone_text or ZONE_FILE.format(zone=zone))
    (workdir / "knot.conf").write_text(
        f"""
server:
    rundir: "{workdir}"
    listen: 127.0.0.1@{server.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{workdir}/db"
key:
  - id: {KEY_NAME}
    algorithm: {algorithm}
    secret: {server.secret}
acl:
  - id: ingressfed
    key: {KEY_NAME}
    action: [update, transfer]
zone:
  - domain: {zone}
    storage: "{workdir}"
    file: "{zone}.zone"
    acl: ingressfed
    semantic-checks: on
"""
    )
    with _run([binary, "-c", str(workdir / "knot.conf")], server) as s:
        yield s


@dataclass(frozen=True)
class Secondary:
    kind: str  # "bind" or "knot"
    host: str
    port: int
    zone: str
    workdir: Path


def _wait_serial(proc: subprocess.Popen[bytes], s: Secondary, log: Path, timeout: float = 20.0) -> None:
    query = dns.message.make_query(s.zone + ".", "SOA")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{s.kind} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            r = dns.query.udp(query, s.host, port=s.port, timeout=0.2)
            if r.rcode() == dns.rcode.NOERROR and r.answer:
                return
        except (dns.exception.DNSException, OSError):  # not loaded yet (see _wait_ready)
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{s.kind} secondary never loaded {s.zone}:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def _run_secondary(argv: list[str], s: Secondary) -> Iterator[Secondary]:
    log = s.workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=s.workdir)
    try:
        _wait_serial(proc, s, log)
        yield s
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def named_secondary(
    workdir: Path, *, zone: str, primary_port: int, key_name: str, secret: str, port: int | None = None
) -> Iterator[Secondary]:
    """BIND9 as a secondary of ``zone`` from a primary on 127.0.0.1:``primary_port``, every
    query to the primary and the NOTIFYs it accepts signed with the TSIG key."""
    binary = require("named")
    workdir.mkdir(parents=True, exist_ok=True)
    s = Secondary("bind", "127.0.0.1", port or free_port(), zone, workdir)
    (workdir / "named.conf").write_text(
        f"""
options {{
    directory "{workdir}";
    pid-file "{workdir}/named.pid";
    session-keyfile "{workdir}/session.key";
    managed-keys-directory "{workdir}";
    listen-on port {s.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
    notify no;
}};
controls {{ }};
key "{key_name}" {{ algorithm hmac-sha256; secret "{secret}"; }};
server 127.0.0.1 {{ keys {{ "{key_name}"; }}; request-ixfr yes; }};
zone "{zone}" {{
    type secondary;
    primaries {{ 127.0.0.1 port {primary_port} key "{key_name}"; }};
    file "{workdir}/{zone}.sec";
    allow-notify {{ key "{key_name}"; 127.0.0.1; }};
}};
"""
    )
    argv = [binary, "-g", "-n", "1", "-c", str(workdir / "named.conf")]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    with _run_secondary(argv, s) as sec:
        yield sec


@contextlib.contextmanager
def knotd_secondary(
    workdir: Path, *, zone: str, primary_port: int, key_name: str, secret: str, port: int | None = None
) -> Iterator[Secondary]:
    """Knot DNS as a secondary of ``zone`` (AXFR first, then IXFR on NOTIFY), signed with the key."""
    binary = require("knotd")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir(exist_ok=True)
    s = Secondary("knot", "127.0.0.1", port or free_port(), zone, workdir)
    (workdir / "knot.conf").write_text(
        f"""
server:
    rundir: "{workdir}"
    listen: 127.0.0.1@{s.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{workdir}/db"
key:
  - id: {key_name}
    algorithm: hmac-sha256
    secret: {secret}
remote:
  - id: primary
    address: 127.0.0.1@{primary_port}
    key: {key_name}
acl:
  - id: from-primary
    address: 127.0.0.1
    key: {key_name}
    action: notify
zone:
  - domain: {zone}
    storage: "{workdir}"
    file: "{zone}.sec"
    master: primary
    acl: from-primary
"""
    )
    with _run_secondary([binary, "-c", str(workdir / "knot.conf")], s) as sec:
        yield sec
