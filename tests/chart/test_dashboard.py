"""The chart's Grafana dashboard: every query names metrics a running controller and proxy expose."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.tls.catalog import TlsMetrics
from tests.chart.test_chart import CHART, _render
from tests.fakes.ports import free_port, free_ports

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = CHART / "dashboards" / "ingressfed.json"
METRIC = re.compile(r"\bingressfed_[a-z0-9_]+")
# Suffixes a family's series carry in the exposition format, by type.
SERIES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "unknown": ("",),
}


def exposed(text: str) -> dict[str, set[str] | None]:
    """Series name -> label names seen on its samples (None: the family has no sample yet)."""
    out: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(text):
        labels: set[str] | None = None
        for sample in family.samples:
            labels = (labels or set()) | set(sample.labels)
        for suffix in SERIES[family.type]:
            out[family.name + suffix] = labels
    return out


@pytest.fixture
async def scraped(tmp_path: Path) -> AsyncIterator[dict[str, set[str] | None]]:
    """Run the controller with its in-process proxy, send one request, scrape both /metrics."""

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hi")

    backend = web.Application()
    backend.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(backend, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    (tmp_path / "objects.yaml").write_text(
        yaml.safe_dump(
            {
                "services": [
                    {
                        "cluster": "eu",
                        "namespace": "d",
                        "name": "web",
                        "readyEndpoints": 1,
                        "addresses": ["127.0.0.1"],
                    }
                ],
                "ingresses": [
                    {
                        "cluster": "eu",
                        "namespace": "d",
                        "name": "web",
                        "rules": [{"host": "web.example.com"}],
                        "addresses": ["127.0.0.1"],
                        "port": port,
                    }
                ],
            }
        )
    )
    ctl, proxy, admin = free_ports(3)
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "federation": {"name": "federation", "zone": "example.com", "globalAddresses": ["127.0.0.1"]},
                "dns": {"provider": "inmemory"},
                "clusters": [{"name": "eu", "region": "europe-west1", "zone": "europe-west1-b"}],
                "source": {"kind": "static", "file": str(tmp_path / "objects.yaml")},
                "proxy": {"listen": f"127.0.0.1:{proxy}", "adminListen": f"127.0.0.1:{admin}"},
                "dnsServer": {"enabled": False},
                "controller": {"listen": f"127.0.0.1:{ctl}", "debounce": 0.01},
            }
        )
    )
    try:
        async with start(load_config(tmp_path / "config.yaml")) as running, aiohttp.ClientSession() as s:
            async with asyncio.timeout(20):
                while True:
                    async with s.get(f"http://127.0.0.1:{proxy}/", headers={"Host": "web.example.com"}) as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.05)
            assert running.controller.reconciles > 0
            found: dict[str, set[str] | None] = {}
            for url in (f"http://127.0.0.1:{ctl}/metrics", f"http://127.0.0.1:{admin}/metrics"):
                async with s.get(url) as r:
                    found.update(exposed(await r.text()))
            # The TLS listener's metrics (only registered when proxy.tls is on), from the class it uses.
            found.update(exposed(generate_latest(TlsMetrics().registry).decode()))
            yield found
    finally:
        await runner.cleanup()


def queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    out = [(p["title"], t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]
    out += [
        (f"variable {v['name']}", v["definition"]) for v in doc["templating"]["list"] if "definition" in v
    ]
    return out


def test_the_dashboard_is_what_its_generator_writes() -> None:
    written = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "grafana_dashboard.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert written == DASHBOARD.read_text(), "run: python scripts/grafana_dashboard.py > " + str(DASHBOARD)
    doc = json.loads(written)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    assert all(t["datasource"]["uid"] == "${datasource}" for p in doc["panels"] for t in p.get("targets", []))


async def test_every_query_names_metrics_and_labels_that_exist(scraped: dict[str, set[str] | None]) -> None:
    assert "ingressfed_proxy_requests_total" in scraped and "ingressfed_reconciles_total" in scraped
    checked = 0
    for title, expr in queries():
        names = METRIC.findall(expr)
        assert names, f"{title}: {expr} names no ingressfed metric"
        for name in names:
            assert name in scraped, f"{title}: {name} is not exposed by the controller or the proxy"
        # Labels in selectors and in by (...) must be ones the metric carries (where it has samples).
        for name, selector in re.findall(r"(ingressfed_[a-z0-9_]+)\{([^}]*)\}", expr):
            labels = scraped[name]
            for label in re.findall(r"([a-z_]+)\s*=~?", selector):
                if labels is not None:
                    assert label in labels, (
                        f"{title}: {name} has no label {label!r} (it has {sorted(labels)})"
                    )
                    checked += 1
        for group in re.findall(r"by \(([^)]*)\)", expr):
            wanted = {g.strip() for g in group.split(",")} - {"le"}
            have = set().union(*(scraped[n] or set() for n in names))
            if all(scraped[n] is not None for n in names):
                assert wanted <= have, f"{title}: by ({group}) but {names} carry {sorted(have)}"
                checked += 1
    assert checked > 5  # the label checks ran against real samples


def test_chart_ships_it_as_a_sidecar_config_map() -> None:
    docs = _render("defaults", "--set", "grafanaDashboard.enabled=true")
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
    assert len(maps) == 1
    assert maps[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(maps[0]["data"]["ingressfed.json"]) == json.loads(DASHBOARD.read_text())
    assert not [d for d in _render("defaults") if d["metadata"]["name"].endswith("-dashboard")]


def test_chart_can_turn_on_the_read_api() -> None:
    def status(*extra: str) -> object:
        docs = _render("defaults", *extra)
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}))
        return yaml.safe_load(cm["data"]["config.yaml"])["status"]

    assert status() == {"enabled": False}
    assert status("--set", "controller.status.enabled=true") == {"enabled": True}
