"""Everything one proxy's connections share, as separate objects wired once: the clock, the
routing/health state (``Router``), the upstream pool, the client connection registry and metrics.

None of them reaches into another; the exchange and the codec use each through its own methods.
"""

from __future__ import annotations

from collections.abc import Callable

from ingressfed.proxy.budget import RetryBudget
from ingressfed.proxy.clock import Clock
from ingressfed.proxy.health import CheckThresholds, EjectionPolicy
from ingressfed.proxy.metrics import ProxyMetrics
from ingressfed.proxy.registry import ConnectionRegistry
from ingressfed.proxy.request import RequestRules
from ingressfed.proxy.routing import Locator, Router
from ingressfed.proxy.settings import ProxySettings
from ingressfed.proxy.tallies import Tallies
from ingressfed.proxy.upstream import UpstreamPool

__all__ = ["Engine"]


class Engine:
    __slots__ = (
        "_cluster_lines",
        "budget",
        "clock",
        "metrics",
        "pool",
        "registry",
        "router",
        "rules",
        "settings",
        "tallies",
        "via",
        "via_line",
    )

    def __init__(
        self,
        settings: ProxySettings,
        *,
        locator: Locator | None,
        metrics: ProxyMetrics,
        now: float,
        precise: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tallies: Tallies = metrics.tallies  # per request: compiled, unlike metrics
        self.via = settings.via.encode()
        self.via_line = b"Via: %b\r\n" % self.via
        self._cluster_lines: dict[str, bytes] = {}
        self.rules = RequestRules(
            max_body_bytes=settings.limits.max_body_bytes,
            via=self.via,
            forwarded_header=settings.geo.client_address_header == "Forwarded",
        )
        self.clock = Clock(now, precise)
        self.router = Router(
            clock=self.clock,
            metrics=metrics,
            locator=locator,
            trusted_proxies=settings.geo.trusted_proxies,
            client_header=settings.geo.client_address_header,
            default_order=settings.geo.default_order,
            home_cluster=settings.home_cluster,
            thresholds=CheckThresholds(
                unhealthy=settings.health_check.unhealthy_threshold,
                healthy=settings.health_check.healthy_threshold,
            ),
            ejection=EjectionPolicy(
                consecutive_failures=settings.ejection.consecutive_failures,
                base_seconds=settings.ejection.base_seconds,
                max_seconds=settings.ejection.max_seconds,
                latency_factor=settings.ejection.latency_factor,
                latency_floor=settings.ejection.latency_floor,
            ),
        )
        self.budget = RetryBudget(
            ratio=settings.retries.budget_ratio, min_concurrent=settings.retries.min_concurrent
        )
        self.pool = UpstreamPool(connect_timeout=settings.timeouts.connect, clock=self.clock)
        self.registry = ConnectionRegistry(
            max_connections=settings.limits.max_connections,
            max_per_client=settings.limits.max_connections_per_client,
        )

    def cluster_line(self, cluster: str) -> bytes:
        """The response header line naming the serving cluster (b"" when the header is off)."""
        try:
            return self._cluster_lines[cluster]
        except KeyError:
            pass
        name = self.settings.cluster_header
        line = b"%b: %b\r\n" % (name.encode(), cluster.encode()) if name else b""
        if len(self._cluster_lines) > 4096:  # clusters come and go with tables; stay bounded
            self._cluster_lines.clear()
        self._cluster_lines[cluster] = line
        return line

    @property
    def draining(self) -> bool:
        return self.registry.draining

    def tick(self, now: float) -> None:
        self.clock.advance(now)
        self.router.tick(now)
