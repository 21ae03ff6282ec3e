"""`ingressfed run` and `ingressfed check-config` as a user runs them."""

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.fakes.ports import free_port, free_ports
from tests.test_demo import answers

G = "web.default.federation.svc.example.com"


def write(tmp: Path, *, dns: int, ctl: int) -> Path:
    (tmp / "objects.yaml").write_text(
        yaml.safe_dump(
            {
                "services": [
                    {
                        "cluster": "us",
                        "namespace": "default",
                        "name": "web",
                        "readyEndpoints": 1,
                        "addresses": ["192.0.2.10"],
                    },
                ]
            }
        )
    )
    cfg = {
        "federation": {"name": "federation", "zone": "example.com"},
        "dns": {"provider": "embedded", "options": {"zoneFile": str(tmp / "zone.json")}},
        "clusters": [{"name": "us", "region": "us-east1", "zone": "us-east1-b"}],
        "source": {"kind": "static", "file": "objects.yaml"},
        "proxy": {"enabled": False},
        "dnsServer": {"listen": f"127.0.0.1:{dns}", "answers": "all", "zoneFile": str(tmp / "zone.json")},
        "controller": {"listen": f"127.0.0.1:{ctl}", "debounce": 0.05},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingressfed.cli", *args], stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def wait_ready(ctl: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ctl}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("not ready: " + log.read_text())


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_run_publishes_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    dns, ctl = free_ports(2)
    cfg = write(tmp_path, dns=dns, ctl=ctl)
    log = tmp_path / "run.log"
    proc = start(["run", "--config", str(cfg)], log)
    try:
        wait_ready(ctl, proc, log)
        assert answers(dns, G) == {"A": {"192.0.2.10"}}
        with urllib.request.urlopen(f"http://127.0.0.1:{ctl}/v1/feed?timeout=0", timeout=5) as r:
            view = json.loads(r.read())
        assert any(rec["name"] == G for rec in view["records"])
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()
    # The zone was persisted: a restarted server would answer at once.
    assert G in (tmp_path / "zone.json").read_text()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    dns, ctl = free_ports(2)
    cfg = write(tmp_path, dns=dns, ctl=ctl)
    log = tmp_path / "run.log"
    proc = start(["run", "--config", str(cfg), "--dry-run"], log)
    try:
        wait_ready(ctl, proc, log)
        assert answers(dns, G) == {}
    finally:
        assert stop(proc) == 0
    out = log.read_text()
    assert G in out and "CREATE" in out


def test_check_config_names_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "federation": {"name": "Bad_Name", "zone": "example.com", "ttl": 0},
                "clusters": [{"name": "a", "location": {"lat": 95, "lon": 0}}],
            }
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 1
    for field in ("federation.name", "federation.ttl", "clusters[0].location.lat"):
        assert field in r.stderr, r.stderr
    good = write(tmp_path, dns=free_port(), ctl=free_port())
    ok = subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", "check-config", str(good)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr


def test_run_with_bad_config_exits_nonzero_with_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("federation: {name: federation}\n")
    r = subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 1
    assert "federation.zone" in r.stdout + r.stderr
