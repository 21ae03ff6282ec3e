"""The page in a real browser against a status server fed by hand: hostile names, and a big federation."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from ingressfed.feed.view import FeedView
from ingressfed.model import Backend, Cluster, ClusterStatus, Edge, Location, Route
from ingressfed.status.api import add_status_routes
from ingressfed.status.state import StatusState
from tests.status.browser import page, until

HOSTILE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_HOST = "<script>window.__pwned=2</script>.example.com"


@contextlib.asynccontextmanager
async def serve(
    clusters: Sequence[Cluster], routes: Sequence[Route], edges: Sequence[Edge] = ()
) -> AsyncIterator[tuple[str, StatusState]]:
    view = FeedView(version=1, records=(), routes=tuple(routes), clusters=tuple(clusters), zone="example.com")
    state = StatusState(role="controller", view=lambda: view)
    state.observe_clusters(clusters)
    state.observe_edges(edges)
    app = web.Application()
    add_status_routes(app, state, token=None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/status", state
    finally:
        await runner.cleanup()


async def test_names_from_objects_are_shown_as_text() -> None:
    clusters = [
        Cluster(HOSTILE, "europe-west1", "europe-west1-b", Location(50.4, 3.8), status=ClusterStatus.OFFLINE),
        Cluster("cluster-us", "us-east1", "us-east1-b", Location(33.2, -80.0)),
    ]
    routes = [Route(HOSTILE_HOST, backends=(Backend(HOSTILE, "10.0.0.1"), Backend("cluster-us", "10.0.0.2")))]
    edges = [Edge("<b>edge</b>", "cluster-us", "us-east1", Location(40.0, -75.0))]
    async with serve(clusters, routes, edges) as (url, _), page() as tab:
        await tab.goto(url)
        await tab.wait_for_selector("#cluster-table tbody tr")
        names = await tab.eval_on_selector_all(
            "#cluster-table tbody td.name", "tds => tds.map(t => t.textContent)"
        )
        assert HOSTILE in names
        # Shown as text: no element was made from it, and nothing ran.
        assert (
            await tab.evaluate(
                "document.querySelectorAll('main img, #cluster-table img, #events img').length"
            )
            == 0
        )
        assert await tab.evaluate("window.__pwned === undefined")
        assert HOSTILE in (await tab.text_content("#events") or "")
        assert await tab.get_attribute("#clusters g.cluster[data-health=unhealthy]", "data-name") == HOSTILE
        assert await tab.text_content("#edge-table td.name") == "<b>edge</b>"
        assert await tab.evaluate("document.querySelectorAll('#edge-table b').length") == 0
        options = await tab.eval_on_selector_all("#where-host option", "os => os.map(o => o.textContent)")
        assert options == [HOSTILE_HOST.lower()] or options == [HOSTILE_HOST]
        await tab.fill("#where-ip", "not an address")
        await tab.click("#where-form button")
        error = await tab.wait_for_selector("#where-result [data-field=error]")
        assert "is not an IPv4 or IPv6 address" in (await error.text_content() or "")
        assert await tab.evaluate("window.__pwned === undefined")


def spread(n: int, salt: int) -> list[Location]:
    # Deterministic points over the inhabited latitudes.
    return [Location(-50 + ((i * 37 + salt) % 110), -180 + ((i * 73 + salt * 11) % 360)) for i in range(n)]


async def test_two_hundred_clusters_and_fifty_edges_stay_usable(capsys) -> None:
    clusters = [
        Cluster(
            f"cluster-{i:03d}",
            f"region-{i % 20}",
            f"zone-{i}",
            loc,
            status=ClusterStatus.READY if i % 9 else ClusterStatus.OFFLINE,
        )
        for i, loc in enumerate(spread(200, 3))
    ]
    edges = [
        Edge(f"edge-{i:02d}", f"cluster-{i * 4:03d}", "r", loc, live=i % 7 != 0)
        for i, loc in enumerate(spread(50, 5))
    ]
    routes = [
        Route(f"app{i}.example.com", backends=tuple(Backend(c.name, "10.0.0.1") for c in clusters[:20]))
        for i in range(50)
    ]
    async with serve(clusters, routes, edges) as (url, _), page() as tab:
        started = time.perf_counter()
        await tab.goto(url)
        await until(tab, "document.querySelectorAll('#clusters g.cluster').length === 200")
        first = time.perf_counter() - started
        assert await tab.evaluate("document.querySelectorAll('#edges g.edge').length") == 50
        assert await tab.evaluate("document.querySelectorAll('#cluster-table tbody tr').length") == 200
        unhealthy = await tab.evaluate(
            "document.querySelectorAll('#clusters g.cluster[data-health=unhealthy]').length"
        )
        assert unhealthy == sum(1 for c in clusters if c.status is ClusterStatus.OFFLINE)
        # Above a few dozen markers the names show on hover only, so the map stays readable.
        assert await tab.evaluate("document.querySelectorAll('#clusters text').length") == 0
        await tab.fill("#filter", "cluster-19")
        await until(tab, "document.querySelectorAll('#cluster-table tbody tr').length === 10")
        await tab.hover('#clusters g.cluster[data-name="cluster-000"] circle', force=True)
        assert "cluster cluster-000" in (await tab.text_content("#tooltip") or "")
    with capsys.disabled():
        print(f"\n200 clusters + 50 edges: first render {first:.2f}s (loaded 2-core machine)")
