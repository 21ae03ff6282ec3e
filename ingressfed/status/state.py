"""The status side's live state: follows reconcile outcomes (or a proxy's view) on the event loop.

It holds what the pure builders need and nothing is computed twice: the
current feed view is read from where the data planes read it, events and
last transitions are derived once per change, the nearest-cluster grid once
per cluster change, and request rates from samples of the proxy's counters.
Readers long-poll :meth:`StatusState.wait_newer`. Used from the event loop only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ingressfed.feed.view import FeedView
from ingressfed.model import Changes, Cluster, Edge, Location
from ingressfed.status.document import EdgeDetail, StatusInputs
from ingressfed.status.events import Event, EventKind, cluster_events, dns_events, edge_events
from ingressfed.status.rates import Sample, request_rates
from ingressfed.status.regions import Grid, nearest_grid
from ingressfed.status.where import answer_from_records, proxy_choice

__all__ = ["Located", "StatusState", "WhereError"]

log = logging.getLogger(__name__)

MAX_EVENTS = 200
# Request rates are averaged over about this many seconds of proxy counter samples.
RATE_WINDOW = 10.0
_SAMPLE_EVERY = 1.0


class Located(Protocol):
    """What a GeoIP lookup says of one address (geo.lookup.ClientLocation satisfies it; its
    ``country`` and ``continent`` are shown when the lookup has them)."""

    @property
    def location(self) -> Location | None: ...


class WhereError(ValueError):
    """A "where would a client go" question that cannot be answered; the message names the field."""


Counts = Mapping[tuple[str, str], float]


class StatusState:
    def __init__(
        self,
        *,
        role: str,
        view: Callable[[], FeedView | None],
        counts: Callable[[], Counts] | None = None,
        locate: Callable[[str], Located | None] | None = None,
        resolve: Callable[[str, str], list[str] | None] | None = None,
        default_order: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.role = role
        self._view = view
        self.counts = counts
        self._locate = locate
        self.resolve = resolve
        self.default_order = tuple(default_order)
        self.clock = clock
        self.version = time.time_ns() // 1_000_000
        self.epoch = secrets.token_hex(8)
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self.transitions: dict[str, float] = {}
        self._clusters: dict[str, Cluster] = {}
        self._edges: dict[str, Edge] = {}
        # Set by the wiring when an edge registry runs in this process.
        self.edge_details: Callable[[], Mapping[str, EdgeDetail]] | None = None
        # Called every second by :meth:`run` (a proxy's view notices a new routing table so).
        self.tick: Callable[[], None] | None = None
        self._health: dict[str, tuple[object, ...]] = {}
        self._grid_key: tuple[Cluster, ...] | None = None
        self._grid: Grid | None = None
        self._samples: deque[Sample] = deque()
        self._extras: dict[str, Callable[[], Sequence[Mapping[str, Any]]]] = {}
        self._changed = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ following
    def observe_clusters(self, clusters: Sequence[Cluster], *, first_sight: bool = True) -> None:
        """Record a new picture of the clusters.

        ``first_sight=False`` for a picture that is not the clusters' start (a proxy's view, first
        read well after its table loaded): clusters it has not seen get no join event and no
        transition time (shown as unknown) rather than a made-up one.
        """
        now = self.clock()
        events = cluster_events(self._clusters, clusters, now=now, default_order=self.default_order)
        if not first_sight:
            events = [e for e in events if e.kind is not EventKind.JOINED]
        for c in clusters:
            key = (c.status, c.data_plane_healthy)
            if self._health.get(c.name) != key:
                if c.name in self._health or first_sight:
                    self.transitions[c.name] = now
                self._health[c.name] = key
        for gone in set(self._health) - {c.name for c in clusters}:
            # Edges keep their transitions under "edge/<name>"; only clusters are tracked here.
            del self._health[gone]
            self.transitions.pop(gone, None)
        self._clusters = {c.name: c for c in clusters}
        self._add(events)

    def observe_edges(self, edges: Sequence[Edge]) -> None:
        now = self.clock()
        events = edge_events(self._edges, edges, now=now)
        for e in edges:
            prev = self._edges.get(e.name)
            if prev is None or prev.live != e.live:
                self.transitions["edge/" + e.name] = now
        for gone in set(self._edges) - {e.name for e in edges}:
            self.transitions.pop("edge/" + gone, None)
        self._edges = {e.name: e for e in edges}
        self._add(events)

    def observe_dns(self, changes: Changes, failed: Mapping[str, str], error: str | None = None) -> None:
        self._add(dns_events(changes, failed, now=self.clock(), error=error))

    def observe_outcome(self, outcome: Any) -> None:
        """A controller sink: ``outcome`` is a ``controller.ReconcileOutcome``."""
        self.observe_clusters(outcome.snapshot.clusters)
        self.observe_edges(outcome.snapshot.edges)
        self.observe_dns(outcome.plan.changes, outcome.failed, outcome.error)
        self.touch()

    def add_resource(self, name: str, items: Callable[[], Sequence[Mapping[str, Any]]]) -> None:
        """Serve ``items()`` as ``/v1/status/<name>`` (``edges`` also on the map).

        Call :meth:`touch` when what ``items()`` returns changes.
        """
        self._extras[name] = items
        self.touch()

    def touch(self) -> None:
        """Something shown changed: wake the long-polls."""
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _add(self, events: Sequence[Event]) -> None:
        for e in events:
            log.info("status event %s: %s", e.kind.value, e.message, extra={"object": e.object})
            self.events.append(e)
        if events:
            self.touch()

    # ------------------------------------------------------------------ reading
    def sample(self) -> None:
        """Take a sample of the proxy's counters (at most one a second) and run :attr:`tick`."""
        if self.tick is not None:
            self.tick()
        if self.counts is None:
            return
        now = time.monotonic()
        samples = self._samples
        if not samples or now - samples[-1].time >= _SAMPLE_EVERY:
            samples.append(Sample(now, dict(self.counts())))
        while len(samples) > 2 and now - samples[1].time >= RATE_WINDOW:
            samples.popleft()

    async def run(self) -> None:
        """Sample every second while served (``api`` runs this for the app's lifetime)."""
        while not self._closed:
            self.sample()
            await asyncio.sleep(_SAMPLE_EVERY)

    def _rates(self) -> Any:
        if self.counts is None:
            return None
        self.sample()
        samples = self._samples
        if len(samples) < 2:
            return None  # no window yet: unknown, not zero
        return request_rates(samples[0], samples[-1])

    def _grid_for(self, clusters: tuple[Cluster, ...]) -> Grid:
        if self._grid is None or clusters != self._grid_key:
            self._grid_key = clusters
            self._grid = nearest_grid(clusters)
        return self._grid

    def inputs(self) -> StatusInputs:
        view = self._view()
        return StatusInputs(
            now=self.clock(),
            role=self.role,
            version=self.version,
            view=view,
            transitions=dict(self.transitions),
            rates=self._rates(),
            events=tuple(reversed(self.events)),
            grid=self._grid_for(view.clusters) if view is not None else None,
            edges=tuple(self._edges[k] for k in sorted(self._edges)),
            edge_details=self.edge_details() if self.edge_details is not None else {},
            extras={name: list(fn()) for name, fn in self._extras.items()},
        )

    async def wait_newer(self, after: int, timeout: float) -> None:  # noqa: ASYNC109 - long-poll deadline
        """Return once :attr:`version` is past ``after``, or after ``timeout`` seconds, or on close."""
        if self.version > after or self._closed:
            return
        changed = self._changed
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await changed.wait()
        except TimeoutError:
            return

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    # ------------------------------------------------------------------ where
    def where(self, ip: str, host: str | None) -> dict[str, Any]:
        """Location, DNS answer and proxy choice for a client at ``ip`` asking for ``host``."""
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            raise WhereError(f"ip: {ip!r} is not an IPv4 or IPv6 address") from None
        view = self._view()
        if view is None:
            raise WhereError("the controller has not published a view yet; try again in a moment")
        hosts = sorted({r.host for r in view.routes})
        name = (host or (hosts[0] if hosts else "")).strip().rstrip(".").lower()
        if not name:
            raise WhereError("host: no Ingress host is routed yet; name one with host=")
        found = self._locate(str(address)) if self._locate is not None else None
        loc = found.location if found is not None else None
        answer = self.resolve(name, str(address)) if self.resolve is not None else None
        source = "dns server"
        if answer is None:
            answer = answer_from_records(view.records, name, loc, default_order=self.default_order)
            source = "published records"
        choice = proxy_choice(name, loc, view.routes, view.clusters, default_order=self.default_order)
        return {
            "ip": str(address),
            "host": name,
            "location": None if loc is None else {"lat": loc.lat, "lon": loc.lon},
            "country": getattr(found, "country", None),
            "continent": getattr(found, "continent", None),
            "dns": {"answer": answer, "source": source},
            "proxy": None
            if choice is None
            else {"chosen": choice.chosen, "order": list(choice.order), "healthy": list(choice.healthy)},
        }
