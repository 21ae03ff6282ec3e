"""Routing and health state of one proxy: the routing table, backend health, and the caches that
make a cluster choice cost a dict lookup.

The routing table is one immutable object replaced by ``swap``; a request holds the entry it was
routed with, so a swap never changes a request in flight. Decisions are the pure functions of
``proxy.health`` and ``proxy.table``; this object keeps their results and the clock is passed in.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Final, Protocol

from geo.clientip import ClientHeader, TrustedProxies, client_address
from geo.select import steer
from ingressfed.model import Backend, Location
from ingressfed.proxy.clock import Clock
from ingressfed.proxy.health import (
    BackendHealth,
    CheckThresholds,
    EjectionPolicy,
    eject,
    is_available,
    latency_outliers,
    observe_check,
    observe_request,
    smoothed,
)
from ingressfed.proxy.metrics import ProxyMetrics
from ingressfed.proxy.rates import RateMeter
from ingressfed.proxy.table import EMPTY_TABLE, ClusterTarget, RouteEntry, RoutingTable, order_targets

__all__ = ["HealthListener", "Locator", "Router"]

log = logging.getLogger(__name__)

_CACHE_LIMIT: Final = 65536
# No latitude or longitude is 1000 degrees: the key of the order for a client nobody could place.
# (Not NaN: it is equal to nothing, itself included, once compiled code boxes it anew.)
_NOWHERE: Final = 1000.0


class _Located(Protocol):
    @property
    def location(self) -> Location | None: ...


class Locator(Protocol):
    """What the router needs of a GeoIP lookup (geo.lookup.GeoLookup satisfies it)."""

    def locate(self, ip: str) -> _Located | None: ...


HealthListener = Callable[[str, bool], None]


class Smoothed:
    """A backend's smoothed time to first byte, updated in place (one dict lookup, or none)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


class Router:
    def __init__(
        self,
        *,
        clock: Clock,
        metrics: ProxyMetrics,
        locator: Locator | None,
        trusted_proxies: Iterable[str],
        client_header: ClientHeader,
        default_order: tuple[str, ...],
        thresholds: CheckThresholds,
        ejection: EjectionPolicy,
        home_cluster: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """``draw`` returns a uniform number in [0, 1) for weighted splits (seeded in tests)."""
        self.clock = clock
        self.home_cluster = home_cluster  # an edge's own cluster: first while healthy
        self.metrics = metrics
        self.locator = locator
        trusted = tuple(trusted_proxies)
        self.trusted = TrustedProxies(trusted)
        self.has_trusted = bool(trusted)
        self.client_header: ClientHeader = client_header
        self.default_order = default_order
        self.thresholds = thresholds
        self.ejection = ejection
        self.table: RoutingTable = EMPTY_TABLE
        self.loaded = False
        self.health: dict[Backend, BackendHealth] = {}
        self.available: set[Backend] = set()
        self.failing: set[Backend] = set()  # backends with consecutive passive failures or ejections
        self.latency: dict[Backend, Smoothed] = {}  # smoothed time to first byte per backend
        self.slow_streak: dict[Backend, int] = {}  # consecutive answers slower than latency_floor
        self.in_flight: dict[str, int] = {}  # requests at a backend per cluster (capacity spill-over)
        self.meter = RateMeter(clock.now)  # requests/s sent per cluster (spill-over by rate)
        self.draw = draw
        self.cluster_healthy: dict[str, bool] = {}
        self.listeners: list[HealthListener] = []
        self._orders: dict[tuple[RouteEntry, float, float], tuple[ClusterTarget, ...]] = {}
        self._locations: dict[str, Location | None] = {}
        self._forwarded: dict[tuple[str, bytes], Location | None] = {}
        self._rr = 0
        # One-entry memos of the per-request lookups above, for the run of requests a keep-alive
        # connection (or a single busy client) sends: a Backend's dataclass __hash__ runs as
        # Python, and the cache keys are tuples hashed anew per request. _refresh and swap, which
        # change what the answers depend on, forget them.
        self._usable: Backend | None = None  # the last backend found usable
        self._order_of: tuple[RouteEntry | None, Location | None] = (None, None)
        self._order: tuple[ClusterTarget, ...] = ()
        self._chain_of: tuple[str, bytes] = ("", b"")
        self._chain_location: Location | None = None
        self._latency_of: Backend | None = None
        self._latency_cell: Smoothed | None = None

    # --- table -----------------------------------------------------------------------------
    def swap(self, table: RoutingTable) -> None:
        previous = self.health
        self.health = {b: previous.get(b, BackendHealth()) for b in table.backends}
        self.failing &= set(self.health)
        self.latency = {b: v for b, v in self.latency.items() if b in self.health}
        self._latency_of = self._latency_cell = None
        self.slow_streak = {b: n for b, n in self.slow_streak.items() if b in self.health}
        self.table = table
        self.loaded = True
        self._refresh(now=self.clock.now)

    # --- client placement ------------------------------------------------------------------
    def trusts(self, peer: str) -> bool:
        return self.has_trusted and self.trusted.trusts(peer)

    def client_ip(self, peer: str, chain: bytes | None) -> str:
        if not self.has_trusted or chain is None or not self.trusted.trusts(peer):
            return peer
        return client_address(
            peer, chain=chain.decode("latin-1"), header=self.client_header, trusted=self.trusted
        )

    def locate_forwarded(self, peer: str, chain: bytes) -> Location | None:
        """Location of the client behind a trusted peer; memoised on the raw header value, because
        parsing addresses costs more than the rest of the request's routing."""
        last_peer, last_chain = self._chain_of
        if chain == last_chain and peer == last_peer and last_chain:
            return self._chain_location
        key = (peer, chain)
        try:
            found = self._forwarded[key]
        except KeyError:
            found = self.locate(self.client_ip(peer, chain))
            if len(self._forwarded) >= _CACHE_LIMIT:
                self._forwarded.clear()
            self._forwarded[key] = found
        self._chain_of = key
        self._chain_location = found
        return found

    def locate(self, ip: str) -> Location | None:
        try:
            return self._locations[ip]
        except KeyError:
            pass
        found: Location | None = None
        if self.locator is not None:
            try:
                result = self.locator.locate(ip)
            except ValueError:
                result = None
            found = result.location if result is not None else None
        if len(self._locations) >= _CACHE_LIMIT:
            self._locations.clear()
        self._locations[ip] = found
        return found

    def targets(self, entry: RouteEntry, client: Location | None) -> tuple[ClusterTarget, ...]:
        # Keyed by the entry object (identity hash): a request parsed before a swap keeps its own
        # route. The coordinates, not the Location: its dataclass __hash__ runs as Python per request.
        last_entry, last_client = self._order_of
        if entry is last_entry and client is last_client:
            return self._order
        key = (entry, client.lat, client.lon) if client is not None else (entry, _NOWHERE, _NOWHERE)
        order = self._orders.get(key)
        if order is None:
            usable = self.usable
            order = order_targets(
                entry,
                client,
                healthy=lambda t: any(usable(b) for b in t.backends),
                default_order=self.default_order,
                prefer=self.home_cluster,
            )
            if len(self._orders) >= _CACHE_LIMIT:
                self._orders.clear()
            self._orders[key] = order
        self._order_of = (entry, client)
        self._order = order
        return order

    def steered(
        self, entry: RouteEntry, ranked: tuple[ClusterTarget, ...], affinity: str | None
    ) -> tuple[ClusterTarget, ...]:
        """The nearest healthy order ``ranked`` rearranged by the route's policy for one request."""
        names = [t.name for t in ranked]
        steering = entry.steering
        rates: dict[str, float] | None = None
        if steering.rates:
            now = self.clock.precise()
            rates = {name: self.meter.rate(name, now) for name, _ in steering.rates}
        order = steer(
            steering,
            names,
            healthy=names,
            draw=self.draw(),
            in_flight=self.in_flight,
            affinity=affinity,
            rates=rates,
        )
        by_name = entry.by_name
        return tuple(by_name[name] for name in order)

    def usable(self, backend: Backend) -> bool:
        """Available, or gone from the table (a request routed before a swap): presumed up, as a
        new backend is."""
        if backend is self._usable:
            return True
        if backend in self.available or backend not in self.health:
            self._usable = backend
            return True
        return False

    def pick(self, target: ClusterTarget) -> Backend | None:
        backends = target.backends
        if len(backends) == 1:
            only = backends[0]
            return only if self.usable(only) else None
        self._rr += 1
        for i in range(len(backends)):
            candidate = backends[(self._rr + i) % len(backends)]
            if self.usable(candidate):
                return candidate
        return None

    # --- health ----------------------------------------------------------------------------
    def record_request(self, backend: Backend, *, failed: bool) -> None:
        if not failed and not self.failing:
            return  # the common case: success while no backend has a passive record
        state = self.health.get(backend)
        if state is None:
            return  # backend left the table while the request ran
        now = self.clock.now
        new = observe_request(state, failed, now=now, policy=self.ejection)
        if new is state:
            return
        self.health[backend] = new
        if new.request_failures or new.ejections:
            self.failing.add(backend)
        else:
            self.failing.discard(backend)
        if new.ejected_until is not None and new.ejected_until != state.ejected_until:
            self.metrics.ejections.labels(backend.cluster).inc()
            log.warning(
                "backend %s:%s of %s ejected until +%.1fs",
                backend.host,
                backend.port,
                backend.cluster,
                new.ejected_until - now,
                extra={"cluster": backend.cluster},
            )
        self._refresh(now=now)

    def record_latency(self, backend: Backend, seconds: float) -> None:
        """A time to first byte (or a per-try timeout's elapsed time) seen for ``backend``."""
        cell = self._latency_cell if backend is self._latency_of else self.latency.get(backend)
        if cell is None:
            cell = self.latency[backend] = Smoothed(seconds)
        else:
            cell.value = smoothed(cell.value, seconds, alpha=self.ejection.latency_alpha)
        self._latency_of = backend
        self._latency_cell = cell
        if seconds > self.ejection.latency_floor:
            self.slow_streak[backend] = self.slow_streak.get(backend, 0) + 1
        elif self.slow_streak and backend in self.slow_streak:
            del self.slow_streak[backend]

    def eject_latency_outliers(self, now: float) -> None:
        """Eject backends whose time to first byte is far above the others' (pure rule in health)."""
        if len(self.latency) < 2:
            return
        samples = {b: cell.value for b, cell in self.latency.items() if b in self.available}
        outliers = latency_outliers(
            samples, factor=self.ejection.latency_factor, floor=self.ejection.latency_floor
        )
        # One slow answer (a long poll, a big report) is no outlier: only a run of slow ones is.
        streak = self.ejection.latency_streak
        outliers = frozenset(b for b in outliers if self.slow_streak.get(b, 0) >= streak)
        for backend in outliers:
            state = self.health[backend]
            self.health[backend] = eject(state, now=now, policy=self.ejection)
            del self.latency[backend]  # judged on fresh samples when it is back
            self._latency_of = self._latency_cell = None
            self.slow_streak.pop(backend, None)
            self.failing.add(backend)
            self.metrics.ejections.labels(backend.cluster).inc()
            log.warning(
                "backend %s:%s of %s ejected: time to first byte %.2fs, far above the others",
                backend.host,
                backend.port,
                backend.cluster,
                samples[backend],
                extra={"cluster": backend.cluster},
            )
        if outliers:
            self._refresh(now=now)

    def set_checked(self, verdicts: Mapping[Backend, bool], *, now: float) -> None:
        """Active-check verdicts decided elsewhere (a worker process gets the primary's)."""
        changed = False
        for backend, up in verdicts.items():
            state = self.health.get(backend)
            if state is not None and state.checked_up != up:
                self.health[backend] = replace(state, checked_up=up, check_failures=0, check_successes=0)
                changed = True
        if changed:
            self._refresh(now=now)

    def record_check(self, backend: Backend, *, ok: bool, now: float) -> None:
        state = self.health.get(backend)
        if state is None:
            return
        new = observe_check(state, ok, now=now, thresholds=self.thresholds)
        self.health[backend] = new
        if new.checked_up != state.checked_up:
            log.warning(
                "backend %s:%s of %s is %s by active check",
                backend.host,
                backend.port,
                backend.cluster,
                "up" if new.checked_up else "down",
                extra={"cluster": backend.cluster},
            )
            self._refresh(now=now)

    def tick(self, now: float) -> None:
        self.eject_latency_outliers(now)
        if any(s.ejected_until is not None and now >= s.ejected_until for s in self._ejected()):
            self._refresh(now=now)

    def _ejected(self) -> Iterable[BackendHealth]:
        return (s for b, s in self.health.items() if b not in self.available and s.checked_up)

    def _refresh(self, *, now: float) -> None:
        available = {b for b, s in self.health.items() if is_available(s, now=now)}
        self._orders = {}
        self._order_of = (None, None)
        self._usable = None
        self.available = available
        clusters: dict[str, bool] = {}
        for backend in self.health:
            clusters[backend.cluster] = clusters.get(backend.cluster, False) or backend in available
        for backend in self.health:
            self.metrics.backend_up.labels(backend.cluster, f"{backend.host}:{backend.port}").set(
                1 if backend in available else 0
            )
        # A cluster new to the table is presumed healthy and not reported until something is observed.
        previous = self.cluster_healthy
        changed = [(c, h) for c, h in clusters.items() if c in previous and previous[c] != h]
        self.cluster_healthy = clusters
        for cluster, healthy in changed:
            for listener in self.listeners:
                try:
                    listener(cluster, healthy)
                except Exception:
                    log.exception("health listener failed", extra={"cluster": cluster})
