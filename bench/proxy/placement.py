"""Cost of choosing clusters for one request, cached (what the proxy does) vs computed every time.

.venv/bin/python bench/proxy/placement.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import CLUSTERS

from geo.clientip import TrustedProxies, client_address
from geo.lookup import GeoLookup
from geo.regions import cluster_location
from ingressfed.model import Backend, Route
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.metrics import ProxyMetrics
from ingressfed.proxy.settings import GeoSettings, ProxySettings
from ingressfed.proxy.table import build_table, order_targets
from tests.fakes.geoip_db import build_city_db

N = 20000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lookup = GeoLookup(build_city_db(Path(tmp)))
        settings = ProxySettings(geo=GeoSettings(trusted_proxies=("127.0.0.0/8",)))
        engine = Engine(settings, locator=lookup, metrics=ProxyMetrics(), now=0.0, precise=time.monotonic)
        router = engine.router
        routes = [
            Route(host="app.example.com", backends=tuple(Backend(c.name, "127.0.0.1", 80) for c in CLUSTERS))
        ]
        router.swap(build_table(routes, CLUSTERS, version=1, locate=cluster_location))
        entry = router.table.entries[0]
        trusted = TrustedProxies(["127.0.0.0/8"])
        xff = b"81.2.69.10"

        def uncached() -> object:
            ip = client_address("127.0.0.1", chain=xff.decode(), header="X-Forwarded-For", trusted=trusted)
            found = lookup.locate(ip)
            where = found.location if found else None
            return order_targets(entry, where, healthy=lambda t: True, default_order=())

        def cached() -> object:
            return router.targets(entry, router.locate_forwarded("127.0.0.1", xff))

        for name, fn in (("computed per request", uncached), ("cached (proxy)", cached)):
            seconds = min(timeit.repeat(fn, number=N, repeat=3)) / N
            print(f"{name:22s} {seconds * 1e6:7.2f} us per request")
        lookup.close()


if __name__ == "__main__":
    asyncio.run(main())
