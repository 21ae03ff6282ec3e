"""The controller listener over HTTPS: what an edge's DNS server in another cluster follows."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dns.exception
import pytest
import yaml

from ingressfed.tls.authority import LocalAuthority
from tests.fakes.ports import free_port, free_ports
from tests.test_demo import answers
from tests.test_run_cli import G, start, stop, write

TOKEN = "edge-feed-token"


def _tls_config(tmp: Path, *, ctl: int, dns: int, key_of: str = "own") -> tuple[Path, Path]:
    """A `write()` config whose controller listener serves HTTPS for `localhost`."""
    ca = LocalAuthority("controller test CA")
    leaf, other = ca.issue("localhost"), ca.issue("localhost")
    (tmp / "ca.pem").write_bytes(ca.ca_pem)
    (tmp / "tls.crt").write_bytes(leaf.cert_pem)
    (tmp / "tls.key").write_bytes(leaf.key_pem if key_of == "own" else other.key_pem)
    (tmp / "token").write_text(TOKEN + "\n")
    path = write(tmp, dns=dns, ctl=ctl)
    cfg = yaml.safe_load(path.read_text())
    cfg["controller"]["feedTokenFile"] = str(tmp / "token")
    cfg["controller"]["tls"] = {"certFile": str(tmp / "tls.crt"), "keyFile": str(tmp / "tls.key")}
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp / "ca.pem"


def _get(url: str, ctx: ssl.SSLContext | None, token: str | None = TOKEN) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        return int(r.status)


def _wait_https(ctl: int, ctx: ssl.SSLContext, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if _get(f"https://localhost:{ctl}/readyz", ctx, None) == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("controller not ready over HTTPS: " + log.read_text())


def test_feed_over_https_is_followed_by_a_remote_dns_server(tmp_path: Path) -> None:
    ctl, dns_port, edge_dns = free_ports(3)
    cfg, ca_file = _tls_config(tmp_path, ctl=ctl, dns=dns_port)
    trusted = ssl.create_default_context(cafile=str(ca_file))
    log = tmp_path / "run.log"
    proc = start(["run", "--config", str(cfg)], log)
    follower: subprocess.Popen[bytes] | None = None
    try:
        _wait_https(ctl, trusted, proc, log)
        assert _get(f"https://localhost:{ctl}/v1/feed?timeout=0", trusted) == 200
        with pytest.raises(urllib.error.HTTPError) as refused:  # TLS does not replace the token
            _get(f"https://localhost:{ctl}/v1/feed?timeout=0", trusted, token="wrong")
        assert refused.value.code == 401
        with pytest.raises(urllib.error.URLError) as untrusted:  # a client that does not trust our CA
            _get(f"https://localhost:{ctl}/readyz", ssl.create_default_context(), None)
        assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
            _get(f"http://127.0.0.1:{ctl}/readyz", None, None)
        follower_log = tmp_path / "dns.log"
        follower = subprocess.Popen(
            [
                sys.executable, "-m", "ingressfed.cli", "dns-serve",
                "--feed", f"https://localhost:{ctl}",
                "--token-file", str(tmp_path / "token"),
                "--ca-file", str(ca_file),
                "--zone", "example.com",
                "--listen", f"127.0.0.1:{edge_dns}",
                "--answers", "all",
            ],
            stdout=follower_log.open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        got: dict[str, set[str]] = {}
        while time.monotonic() < deadline and not got:
            assert follower.poll() is None, follower_log.read_text()
            try:
                got = answers(edge_dns, G)
            except dns.exception.Timeout:  # not listening yet
                got = {}
            time.sleep(0.2)
        assert got == {"A": {"192.0.2.10"}}, follower_log.read_text()
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait(timeout=20)
        assert stop(proc) == 0, log.read_text()


def test_a_key_that_does_not_match_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    cfg, _ = _tls_config(tmp_path, ctl=free_port(), dns=free_port(), key_of="other")
    r = subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if "controller.tls" in line]
    assert lines, r.stderr
    assert "KeyMismatch" in lines[0] or "match" in lines[0].lower(), r.stderr
    assert "Traceback" not in r.stderr and "PRIVATE KEY" not in r.stderr + r.stdout
