"""Status page and read API at scale (not a test): 200 clusters, 50 edges, 1,000 routes, 20k records.

Printed, each against a peer measured in the same run:
1. the nearest-cluster grid (648 cells) with the prefilter, against ranking every cluster per cell
   (the same answers, checked);
2. building and encoding the page's document (``/v1/status``), against encoding the feed view of
   the same federation (what every data plane downloads per version);
3. with Chromium (apt chromium, pip playwright): the page's first render of 200 markers and 50 edges,
   and a live update (one cluster going Offline until its marker turns), against the page's load
   event (no data yet).

    .venv/bin/python -m bench.status.run [--clusters 200] [--edges 50] [--routes 1000] [--records 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import replace

from aiohttp import web

from geo.select import Candidate, rank
from ingressfed.feed.view import FeedView, encode_view
from ingressfed.model import Backend, Cluster, ClusterStatus, Edge, Location, RecordSet, RecordType, Route
from ingressfed.status.api import add_status_routes
from ingressfed.status.document import overview
from ingressfed.status.regions import nearest_grid
from ingressfed.status.state import StatusState


def spread(n: int, salt: int) -> list[Location]:
    return [Location(-50 + ((i * 37 + salt) % 110), -180 + ((i * 73 + salt * 11) % 360)) for i in range(n)]


def federation(args: argparse.Namespace) -> tuple[list[Cluster], list[Edge], FeedView]:
    clusters = [
        Cluster(f"cluster-{i:03d}", f"r{i % 20}", f"z{i}", loc)
        for i, loc in enumerate(spread(args.clusters, 3))
    ]
    edges = [
        Edge(f"edge-{i:02d}", clusters[i % len(clusters)].name, "r", loc, (f"198.51.100.{i % 250}",))
        for i, loc in enumerate(spread(args.edges, 5))
    ]
    routes = [
        Route(
            f"app{i}.example.com", backends=tuple(Backend(c.name, "10.0.0.1") for c in clusters[i % 7 :: 40])
        )
        for i in range(args.routes)
    ]
    records = [
        RecordSet(
            f"svc{i}.default.federation.svc.example.com",
            RecordType.A,
            30,
            (f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",),
        )
        for i in range(args.records)
    ]
    view = FeedView(
        version=1, records=tuple(records), routes=tuple(routes), clusters=tuple(clusters), zone="example.com"
    )
    return clusters, edges, view


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def grid_vs_rank(clusters: list[Cluster]) -> None:
    candidates = [Candidate(c.name, c.location, True, c.weight) for c in clusters]

    def naive() -> list[str]:
        return [
            rank(Location(90 - (r + 0.5) * 10, -180 + (k + 0.5) * 10), candidates)[0]
            for r in range(18)
            for k in range(36)
        ]

    assert list(nearest_grid(clusters).cells) == naive()
    ours = best(lambda: nearest_grid(clusters), 3)
    peer = best(naive, 3)
    print(
        f"grid, {len(clusters)} clusters: {ours * 1000:.0f} ms; rank every cluster: {peer * 1000:.0f} ms;"
        f" ratio {peer / ours:.1f}x faster"
    )


def document_vs_feed(clusters: list[Cluster], edges: list[Edge], view: FeedView) -> None:
    state = StatusState(role="controller", view=lambda: view)
    state.observe_clusters(clusters)
    state.observe_edges(edges)

    def document() -> bytes:
        return json.dumps(overview(state.inputs()), separators=(",", ":")).encode()

    size = len(document())
    ours = best(document, 5)
    peer = best(lambda: encode_view(view), 5)
    print(
        f"page document: {ours * 1000:.1f} ms, {size / 1024:.0f} KiB; feed view encode: {peer * 1000:.1f} ms,"
        f" {len(encode_view(view)) / 1024:.0f} KiB; ratio {ours / peer:.2f} (document / feed)"
    )


async def browser(clusters: list[Cluster], edges: list[Edge], view: FeedView) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        print("browser: skipped (pip install playwright)")
        return
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        print("browser: skipped (apt-get install chromium)")
        return
    current = [view]
    state = StatusState(role="controller", view=lambda: current[0])
    state.observe_clusters(clusters)
    state.observe_edges(edges)
    app = web.Application()
    add_status_routes(app, state, token=None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    try:
        async with async_playwright() as pw:
            b = await pw.chromium.launch(executable_path=chromium, args=flags)
            tab = await b.new_page(viewport={"width": 1280, "height": 900})
            t0 = time.perf_counter()
            await tab.goto(f"http://127.0.0.1:{port}/status", wait_until="load")
            loaded = time.perf_counter() - t0
            while await tab.evaluate("document.querySelectorAll('#clusters g.cluster').length") < len(
                clusters
            ):
                await asyncio.sleep(0.01)
            rendered = time.perf_counter() - t0
            name = clusters[0].name
            down = tuple(replace(c, status=ClusterStatus.OFFLINE) if c.name == name else c for c in clusters)
            arrived: list[float] = []
            tab.on("response", lambda r: arrived.append(time.perf_counter()) if "after=" in r.url else None)
            t1 = time.perf_counter()
            current[0] = replace(view, clusters=down)
            state.observe_clusters(down)
            state.touch()
            selector = f'#clusters g.cluster[data-name="{name}"][data-health="unhealthy"]'
            while not await tab.query_selector(selector):
                await asyncio.sleep(0.01)
            updated = time.perf_counter() - t1
            answered = (arrived[0] - t1) if arrived else float("nan")
            await b.close()
    finally:
        await runner.cleanup()
    print(
        f"browser, {len(clusters)} clusters + {len(edges)} edges: load event {loaded * 1000:.0f} ms,"
        f" first render {rendered * 1000:.0f} ms ({rendered / loaded:.1f}x load),"
        f" live update {updated * 1000:.0f} ms"
        f" (answer after {answered * 1000:.0f} ms)"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clusters", type=int, default=200)
    p.add_argument("--edges", type=int, default=50)
    p.add_argument("--routes", type=int, default=1000)
    p.add_argument("--records", type=int, default=20000)
    args = p.parse_args()
    clusters, edges, view = federation(args)
    print(f"machine: {os.cpu_count()} cores, shared (numbers vary with load)")
    grid_vs_rank(clusters)
    document_vs_feed(clusters, edges, view)
    asyncio.run(browser(clusters, edges, view))


if __name__ == "__main__":
    main()
