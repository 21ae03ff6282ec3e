"""The read API on the controller listener: documents, long-poll, authentication, the page's headers."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import aiohttp
import pytest
import yaml

from ingressfed.app import Running
from ingressfed.config import load_config
from ingressfed.errors import ConfigError
from ingressfed.model import ClusterStatus
from tests.status.conftest import started, write_config

TOKEN = "s3cret-token"


def url(running: Running, path: str) -> str:
    return f"http://127.0.0.1:{running.http_port}{path}"


async def get(running: Running, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.get(url(running, path), headers=headers) as r:
        return r.status, dict(r.headers), await r.read()


async def test_resources_come_from_the_feed_view(controller: Running) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(controller, "/v1/status/clusters")) as r:
            assert r.status == 200
            doc = await r.json()
        assert [c["name"] for c in doc["items"]] == ["cluster-europe-west1-b", "cluster-us-east1-b"]
        assert {c["health"] for c in doc["items"]} == {"healthy"}
        async with s.get(url(controller, "/v1/status/routes")) as r:
            routes = (await r.json())["items"]
        assert routes[0]["host"] == "web.example.com"
        assert {b["cluster"] for b in routes[0]["backends"]} == {
            "cluster-us-east1-b",
            "cluster-europe-west1-b",
        }
        async with s.get(url(controller, "/v1/status/records")) as r:
            records = (await r.json())["items"]
        view = controller.publisher.current()
        assert view is not None
        assert sorted(r["name"] for r in records) == sorted(r.name for r in view.records)
        async with s.get(url(controller, "/v1/status/nothing")) as r:
            assert r.status == 404
            assert (
                "known: certificates, clusters, edges, events, records, routes" in (await r.json())["detail"]
            )
        async with s.get(url(controller, "/v1/status")) as r:
            overview = await r.json()
        assert overview["feed"]["version"] == view.version
        counts = overview["counts"]
        assert (counts["routes"], counts["records"], counts["edges"]) == (1, len(view.records), 0)
        assert overview["hosts"] == ["web.example.com"]
        assert overview["grid"]["rows"] * overview["grid"]["cols"] == len(overview["grid"]["cells"])


async def test_long_poll_wakes_on_a_cluster_going_offline(controller: Running) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(controller, "/v1/status")) as r:
            first = await r.json()
        poll = asyncio.ensure_future(
            s.get(url(controller, f"/v1/status?after={first['version']}&timeout=30"))
        )
        await asyncio.sleep(0.1)
        assert not poll.done()
        controller.store.set_cluster_status("cluster-europe-west1-b", ClusterStatus.OFFLINE)
        async with asyncio.timeout(10):
            r = await poll
        doc = await r.json()
        r.release()
    assert doc["version"] > first["version"]
    eu = next(c for c in doc["clusters"] if c["name"] == "cluster-europe-west1-b")
    assert (eu["status"], eu["health"]) == ("Offline", "unhealthy")
    assert eu["lastTransition"] >= first["generatedAt"]
    failover = next(e for e in doc["events"] if e["kind"] == "Failover")
    assert failover["object"] == "cluster-europe-west1-b"
    assert "its clients now go to cluster-us-east1-b" in failover["message"]
    # The DNS change that followed is on the timeline too, newest first.
    assert doc["events"][0]["kind"] == "DnsChangeApplied"


async def test_bad_parameters_name_the_field(controller: Running) -> None:
    for path, field in [
        ("/v1/status?after=x", "after:"),
        ("/v1/status?after=1&timeout=999", "timeout:"),
        ("/v1/status/where", "ip:"),
        ("/v1/status/where?ip=not-an-ip", "ip:"),
    ]:
        status, _, body = await get(controller, path)
        assert status == 400 and field.encode() in body, (path, body)


async def test_token_guards_every_path(guarded: Running) -> None:
    for path in (
        "/status",
        "/status/assets/status.js",
        "/v1/status",
        "/v1/status/clusters",
        "/v1/status/where?ip=1.2.3.4",
    ):
        status, headers, _ = await get(guarded, path)
        assert status == 401, path
        assert "Basic" in headers["WWW-Authenticate"]
        status, _, _ = await get(guarded, path, Authorization="Bearer wrong")
        assert status == 401, path
    status, _, _ = await get(guarded, "/v1/status/clusters", Authorization=f"Bearer {TOKEN}")
    assert status == 200
    basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
    status, _, page = await get(guarded, "/status", Authorization=f"Basic {basic}")
    assert status == 200 and b"<html" in page
    # The feed keeps its own rules: no status token opens it, nothing here changed it.
    status, _, _ = await get(guarded, "/v1/feed?timeout=0")
    assert status == 200


async def test_page_holds_no_secret_and_forbids_foreign_scripts(guarded: Running) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for asset in (
        "/status",
        "/status/assets/status.js",
        "/status/assets/status.css",
        "/status/assets/world.svg",
    ):
        status, headers, body = await get(guarded, asset, **auth)
        assert status == 200, asset
        assert TOKEN.encode() not in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    # Self-contained: nothing is loaded from another origin (no CDN).
    _, _, page = await get(guarded, "/status", **auth)
    assert b'src="http' not in page and b'href="http' not in page
    status, _, _ = await get(guarded, "/status/assets/..%2Fapi.py", **auth)
    assert status == 404


async def test_feed_token_guards_the_status_when_it_has_none(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    (tmp_path / "feed-token").write_text("feed-only\n")
    text = path.read_text().replace(
        "debounce: 0.01", f"debounce: 0.01\n  feedTokenFile: {tmp_path / 'feed-token'}"
    )
    path.write_text(text)
    async for running in started(path):
        assert (await get(running, "/v1/status/clusters"))[0] == 401
        assert (await get(running, "/v1/status/clusters", Authorization="Bearer feed-only"))[0] == 200


async def test_off_by_default(tmp_path: Path) -> None:
    async for running in started(write_config(tmp_path, status=False)):
        assert running.status is None
        assert (await get(running, "/v1/status/clusters"))[0] == 404
        assert (await get(running, "/status"))[0] == 404


async def test_edges_appear_with_their_cluster_location_and_go_stale(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    (tmp_path / "feed-token").write_text("feed\n")
    cfg["controller"]["feedTokenFile"] = str(tmp_path / "feed-token")
    cfg["status"]["tokenFile"] = str(tmp_path / "feed-token")
    cfg["edges"] = [{"name": "edge-eu", "cluster": "cluster-europe-west1-b", "addresses": ["198.51.100.7"]}]
    cfg["edgeHealth"] = {"staleAfter": 1.0}
    path.write_text(yaml.safe_dump(cfg))
    auth = {"Authorization": "Bearer feed"}
    async for running in started(path):

        async def edge() -> dict[str, object]:
            status, _, body = await get(running, "/v1/status/edges", **auth)
            assert status == 200
            items = json.loads(body)["items"]
            assert [e["name"] for e in items] == ["edge-eu"]
            return items[0]

        first = await edge()
        # Never heard from: in its start-up grace it is Pending, drawn at its cluster's location.
        assert (first["status"], first["health"], first["live"]) == ("Pending", "degraded", True)
        assert first["location"] == {"lat": 50.45, "lon": 3.82}
        assert first["addresses"] == ["198.51.100.7"]
        async with asyncio.timeout(10):
            while (current := await edge())["live"]:
                await asyncio.sleep(0.1)
        assert (current["status"], current["health"]) == ("Stale", "unhealthy")
        assert current["lastTransition"] is not None
        _, _, body = await get(running, "/v1/status", **auth)
        doc = json.loads(body)
        assert [e["name"] for e in doc["edges"]] == ["edge-eu"] and doc["counts"]["edges"] == 1
        assert any(e["kind"] == "EdgeStale" and e["object"] == "edge-eu" for e in doc["events"])


async def test_anonymous_serves_without_the_feed_token_and_excludes_a_token_file(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    (tmp_path / "feed-token").write_text("feed\n")
    cfg["controller"]["feedTokenFile"] = str(tmp_path / "feed-token")
    cfg["status"]["anonymous"] = True
    path.write_text(yaml.safe_dump(cfg))
    async for running in started(path):
        assert (await get(running, "/v1/status/clusters"))[0] == 200
        assert (await get(running, "/v1/feed?timeout=0"))[0] == 401  # the feed keeps its token
    cfg["status"]["tokenFile"] = str(tmp_path / "feed-token")
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"status\.anonymous: true serves without a token"):
        load_config(path)
