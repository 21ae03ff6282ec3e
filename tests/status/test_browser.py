"""The status page in a real browser (Debian's Chromium, headless) against the running demo.

Also the demo's printed ``ingressfed get`` command, so one demo serves the whole module.
``UPDATE_SCREENSHOT=1`` writes the README's screenshot (docs/images/status-page.png) from the run.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.status.browser import page, until
from tests.test_demo import demo, wait_for

__all__ = ["demo"]  # the module-scoped demo fixture: one demo process for this module

EU = "cluster-europe-west1-b"
CLUSTERS = ["cluster-asia-east1-a", EU, "cluster-us-east1-b"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "status-page.png"
# The demo's health window: the proxy checks every second and a taken-down cluster goes Offline at once;
# the page's long-poll answers a change immediately. Generous for a loaded 2-core machine.
HEALTH_WINDOW_MS = 20_000


def printed(demo: dict[str, int]) -> str:
    return (Path(str(demo["workdir"])) / "demo.log").read_text()


def status_url(demo: dict[str, int]) -> str:
    line = next(line for line in printed(demo).splitlines() if "status page" in line)
    found = re.search(r"http://\S+/status\b", line)
    assert found, line
    return found.group(0)


def api(demo: dict[str, int], path: str) -> object:
    with urllib.request.urlopen(f"http://127.0.0.1:{demo['controller']}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def control(demo: dict[str, int], action: str, cluster: str) -> None:
    """What ``ingressfed demo down|up`` sends (tests/test_demo.py runs that command itself)."""
    url = f"http://127.0.0.1:{demo['control']}/clusters/{cluster}/{action}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=10) as resp:
        assert json.loads(resp.read())["state"] == action


def run_printed_get(demo: dict[str, int], *extra: str) -> subprocess.CompletedProcess[str]:
    line = next(line for line in printed(demo).splitlines() if "ingressfed get clusters --controller" in line)
    return subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", *line.split()[1:], *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


async def test_map_cluster_down_and_the_where_box(demo: dict[str, int], tmp_path: Path) -> None:
    url = status_url(demo)
    assert url == f"http://127.0.0.1:{demo['controller']}/status"
    async with page(width=1200, height=760) as tab:
        await tab.goto(url)
        # Three clusters on the map, at their regions' locations, all healthy.
        await until(tab, "document.querySelectorAll('#clusters g.cluster').length === 3")
        markers = await tab.eval_on_selector_all(
            "#clusters g.cluster",
            "gs => gs.map(g => [g.dataset.name, g.dataset.health, +g.querySelector('circle')"
            ".getAttribute('cx')])",
        )
        assert sorted(m[0] for m in markers) == CLUSTERS
        assert {m[1] for m in markers} == {"healthy"}
        lon = {name: cx - 180 for name, _, cx in markers}
        assert (
            -10 < lon[EU] < 15 and -90 < lon["cluster-us-east1-b"] < -70 and lon["cluster-asia-east1-a"] > 100
        )
        # And their edges, one in each cluster, live once they have reported.
        await until(tab, "document.querySelectorAll('#edges g.edge[data-health=healthy]').length === 3")
        edges = await tab.eval_on_selector_all("#edges g.edge", "gs => gs.map(g => g.dataset.name)")
        assert sorted(edges) == ["edge-asia-east1", "edge-europe-west1", "edge-us-east1"]
        # The shading shows each cluster's share of the world.
        shaded = await tab.eval_on_selector_all(
            "#cells rect", "rs => [...new Set(rs.map(r => r.dataset.cluster))]"
        )
        assert sorted(shaded) == CLUSTERS

        # The "where would a client go" box: a London address goes to the European cluster.
        await tab.fill("#where-ip", "81.2.69.160")
        await tab.click("#where-form button")
        await tab.wait_for_selector("#where-result dd[data-field=proxy]")
        assert (await tab.text_content("#where-result dd[data-field=proxy]")) == EU
        assert "GB" in (await tab.text_content("#where-result dd[data-field=location]") or "")
        # DNS answers with the European edge's address (geo answers of the embedded server).
        assert "A 127.0.0.22" in (await tab.text_content("#where-result dd[data-field=dns]") or "")

        png = await tab.screenshot(path=str(tmp_path / "status-page.png"))
        width, height = png_size(png)
        assert (width, height) == (1200, 760) and len(png) > 20_000
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes(png)

        # Take the European cluster down: its marker turns unhealthy without a reload.
        await tab.evaluate("window.__sameDocument = true")
        control(demo, "down", EU)
        try:
            await tab.wait_for_selector(
                f'#clusters g.cluster[data-name="{EU}"][data-health="unhealthy"]', timeout=HEALTH_WINDOW_MS
            )
            assert await tab.evaluate("window.__sameDocument === true"), "the page was reloaded"
            assert (
                await tab.get_attribute(f'#cluster-table tr[data-name="{EU}"]', "data-health")
            ) == "unhealthy"
            await tab.wait_for_selector('#events li[data-kind="Failover"]', timeout=HEALTH_WINDOW_MS)
            # No cell goes to the dead cluster any more; the same client now goes to the US.
            shaded = await tab.eval_on_selector_all(
                "#cells rect", "rs => [...new Set(rs.map(r => r.dataset.cluster))]"
            )
            assert EU not in shaded
            await tab.click("#where-form button")
            await until(
                tab,
                "document.querySelector('#where-result dd[data-field=proxy]')?.textContent"
                " === 'cluster-us-east1-b'",
            )
        finally:
            control(demo, "up", EU)
        await tab.wait_for_selector(
            f'#clusters g.cluster[data-name="{EU}"][data-health="healthy"]', timeout=HEALTH_WINDOW_MS
        )


def test_demo_prints_the_get_command_and_it_works(demo: dict[str, int]) -> None:
    got = run_printed_get(demo)
    assert got.returncode == 0, got.stderr
    rows = [line.split() for line in got.stdout.splitlines()]
    assert rows[0][:2] == ["NAME", "STATUS"]
    assert sorted(r[0] for r in rows[1:]) == CLUSTERS
    assert all(api(demo, "/v1/status/clusters"))


def test_get_follows_a_cluster_taken_down(demo: dict[str, int]) -> None:
    asia = "cluster-asia-east1-a"
    control(demo, "down", asia)
    try:

        def asia_offline() -> bool:
            # The API server goes Offline at once; the data plane is down only once the edges' checks
            # (interval x threshold) have reported the stopped backend: until then the edges' last
            # reports still vouch for it (degraded). Wait for both, as a user would.
            items = api(demo, "/v1/status/clusters")["items"]  # type: ignore[index]
            return any(
                c["name"] == asia and c["status"] == "Offline" and c["dataPlaneHealthy"] is False
                for c in items
            )

        assert wait_for(asia_offline, timeout=HEALTH_WINDOW_MS / 1000 + 10)
        got = run_printed_get(demo, "-o", "wide")
        row = next(line.split() for line in got.stdout.splitlines() if line.startswith(asia))
        assert row[1:4] == ["Offline", "Failing", "unhealthy"]
    finally:
        control(demo, "up", asia)
