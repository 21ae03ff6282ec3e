"""The demo as a newcomer meets it: the printed status page URL and ``get`` command work."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.test_demo import ctl, demo, wait_for

__all__ = ["demo"]  # the module-scoped demo fixture, started once for this module


def printed(demo: dict[str, int]) -> str:
    return (Path(str(demo["workdir"])) / "demo.log").read_text()


def run_printed_get(demo: dict[str, int], *extra: str) -> subprocess.CompletedProcess[str]:
    line = next(line for line in printed(demo).splitlines() if "ingressfed get clusters --controller" in line)
    argv = line.split()[1:]  # drop "ingressfed"
    return subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", *argv, *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_demo_prints_the_status_page_and_the_get_command(demo: dict[str, int]) -> None:
    text = printed(demo)
    page = [line for line in text.splitlines() if "status page" in line]
    assert page and re.search(rf"http://127\.0\.0\.1:{demo['controller']}/status\b", page[0])
    got = run_printed_get(demo)
    assert got.returncode == 0, got.stderr
    rows = [line.split() for line in got.stdout.splitlines()[1:]]
    assert sorted(r[0] for r in rows) == [
        "cluster-asia-east1-a",
        "cluster-europe-west1-b",
        "cluster-us-east1-b",
    ]
    assert {r[1] for r in rows} == {"Ready"}


def test_get_follows_a_cluster_taken_down(demo: dict[str, int]) -> None:
    assert ctl(demo, "down", "cluster-asia-east1-a").returncode == 0
    try:

        def asia_offline() -> bool:
            url = f"http://127.0.0.1:{demo['controller']}/v1/status/clusters"
            with urllib.request.urlopen(url, timeout=5) as resp:
                items = json.loads(resp.read())["items"]
            return any(c["name"] == "cluster-asia-east1-a" and c["status"] == "Offline" for c in items)

        assert wait_for(asia_offline)
        got = run_printed_get(demo, "-o", "wide")
        row = next(line.split() for line in got.stdout.splitlines() if line.startswith("cluster-asia"))
        assert row[1:4] == ["Offline", "Failing", "unhealthy"]
    finally:
        assert ctl(demo, "up", "cluster-asia-east1-a").returncode == 0
