"""One proxy's own view on its admin listener: the routes and clusters it serves, as it sees them.

The document has the controller's shape (``role: proxy``): the routing table
the proxy holds, each cluster's data-plane health as *this* proxy's checks and
passive failures see it, its own request rates and the events it noticed.
There are no records (a proxy holds none), so the "where" box shows the
proxy's choice only. Changes of a cluster's health wake the page's long-poll
at once; a new routing table within a second (the status sampler's tick).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ingressfed.feed.view import FeedView
from ingressfed.model import Cluster
from ingressfed.status.state import StatusState
from ingressfed.status.wiring import counts_from_registry

__all__ = ["attach_proxy_status"]

log = logging.getLogger(__name__)


class _ProxyView:
    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.state: StatusState | None = None
        self._seen: tuple[int, tuple[Cluster, ...]] | None = None

    def refresh(self) -> None:
        self()

    def __call__(self) -> FeedView | None:
        try:
            table = self.proxy.engine.router.table
        except RuntimeError:  # not started yet
            return None
        health = self.proxy.health()
        clusters = tuple(
            replace(c, data_plane_healthy=health.get(c.name, c.data_plane_healthy))
            for _, c in sorted(table.clusters.items())
        )
        key = (table.version, clusters)
        if key != self._seen and self.state is not None:
            first = self._seen is None
            self._seen = key
            self.state.observe_clusters(clusters, first_sight=not first)
            self.state.touch()
        return FeedView(
            version=table.version,
            records=(),
            routes=tuple(e.route for e in table.entries),
            clusters=clusters,
            zone="",
        )


def attach_proxy_status(proxy: Any, *, token: str | None) -> StatusState:
    """Serve ``/status`` and ``/v1/status`` on ``proxy``'s admin listener; call before starting it."""
    from ingressfed.status.api import add_status_routes

    view = _ProxyView(proxy)
    settings = proxy.settings

    def locate(ip: str) -> Any:
        locator = proxy.engine.locator
        return locator.locate(ip) if locator is not None else None

    state = StatusState(
        role="proxy",
        view=view,
        counts=counts_from_registry(proxy.collector),  # with its worker processes' counts
        locate=locate,
        default_order=settings.geo.default_order,
    )
    view.state = state
    state.tick = view.refresh  # noticed within a second: a new table, a cluster's health
    proxy.add_health_listener(lambda _cluster, _healthy: view.refresh())
    proxy.admin_routes.append(lambda app: add_status_routes(app, state, token=token))
    return state
