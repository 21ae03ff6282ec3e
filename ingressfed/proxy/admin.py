"""The admin listener: liveness, readiness, Prometheus metrics and a JSON view of routes and health."""

from __future__ import annotations

from typing import TypedDict

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from ingressfed.proxy.engine import Engine
from ingressfed.proxy.health import is_available

__all__ = ["admin_app"]

ENGINE_KEY = web.AppKey("engine", Engine)
METRICS_KEY = web.AppKey("metrics", Collector)


class BackendView(TypedDict):
    cluster: str
    address: str
    available: bool
    checkedUp: bool
    ejectedFor: float


class RouteView(TypedDict):
    host: str
    path: str
    pathType: str
    backends: list[BackendView]


class RoutesView(TypedDict):
    version: int
    clusters: dict[str, bool]
    routes: list[RouteView]


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    if not engine.router.loaded:
        return web.Response(status=503, text="no routing table loaded yet\n")
    if engine.draining:
        return web.Response(status=503, text="draining\n")
    return web.Response(text="ready\n")


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes_view(engine: Engine) -> RoutesView:
    now = engine.clock.now
    router = engine.router
    routes: list[RouteView] = []
    for entry in router.table.entries:
        backends: list[BackendView] = []
        for backend in entry.route.backends:
            state = router.health.get(backend)
            backends.append(
                {
                    "cluster": backend.cluster,
                    "address": f"{backend.host}:{backend.port}",
                    "available": state is not None and is_available(state, now=now),
                    "checkedUp": state is not None and state.checked_up,
                    "ejectedFor": max(0.0, (state.ejected_until or now) - now) if state else 0.0,
                }
            )
        routes.append(
            {
                "host": entry.route.host,
                "path": entry.route.path,
                "pathType": entry.route.path_type,
                "backends": backends,
            }
        )
    return {"version": router.table.version, "clusters": dict(router.cluster_healthy), "routes": routes}


async def _routes(request: web.Request) -> web.Response:
    return web.json_response(routes_view(request.app[ENGINE_KEY]))


def admin_app(engine: Engine, metrics: Collector | None = None) -> web.Application:
    """``metrics``: what /metrics exposes (default: the engine's registry; a ``ProxyServer``
    passes its ``collector``, which adds its worker processes' counts)."""
    app = web.Application()
    app[ENGINE_KEY] = engine
    app[METRICS_KEY] = metrics if metrics is not None else engine.metrics.registry
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/routes", _routes)
    return app
