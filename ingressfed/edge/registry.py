"""The controller's record of its edges: who they are, what they last reported, who is live.

Identities come from the config (``edges:``; docs/adr/0006-edges-and-health-quorum.md says
why); addresses are the declared ones, else the ones the edge announces in its
reports. Every accepted report and every ``refresh`` recomputes the quorum
decision (``core/quorum``) and writes its outcome to the Store: each cluster's
data-plane health and the edges with their liveness. Writes that change
nothing are silent there, so refreshing often costs no reconcile. Used from the
event loop only; ``now`` is the loop's monotonic clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from geo.regions import cluster_location
from ingressfed.config import Config, read_token_file
from ingressfed.core.quorum import EdgeView, QuorumDecision, QuorumRule, decide, edge_live
from ingressfed.edge.report import HealthReport
from ingressfed.model import Cluster, Edge, Location
from ingressfed.store import Store

__all__ = ["EdgeIdentity", "EdgeRegistry", "EdgeRow", "identities_from_config", "rule_from_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EdgeIdentity:
    name: str
    cluster: str
    region: str = ""  # empty: its cluster's region
    location: Location | None = None  # None: its cluster's location
    addresses: tuple[str, ...] = ()  # declared; empty: the announced ones
    token: str | None = None  # the bearer token it must present; None: it cannot report over HTTP
    published: bool = True  # False for the in-process proxy when it is not a declared edge


@dataclass(frozen=True, slots=True)
class EdgeRow:
    """One line of ``ingressfed get edges``."""

    name: str
    cluster: str
    region: str
    addresses: tuple[str, ...]
    status: str  # Live | Pending (not heard from yet, in its grace window) | Stale
    first_seen: float | None
    last_seen: float | None
    reports: int
    backends_up: int
    backends: int
    published: bool


@dataclass(slots=True)
class _State:
    identity: EdgeIdentity
    first_seen: float | None = None
    last_seen: float | None = None
    sequence: int = -1
    reports: int = 0
    announced: tuple[str, ...] = ()
    view: EdgeView | None = None
    backends_up: int = 0
    backends: int = 0
    probe_failures: int = 0


def rule_from_config(config: Config) -> QuorumRule:
    q = config.edge_health.quorum
    return QuorumRule(
        stale_after=config.edge_health.stale_after,
        down_votes=None if q == "majority" else q,
        probe_failures=config.edge_health.probe.failure_threshold,
    )


def identities_from_config(config: Config) -> list[EdgeIdentity]:
    """The declared edges, plus the in-process proxy (when enabled) under ``edgeHealth.localEdge``."""
    shared = config.feed_token()
    out = []
    for e in config.edges:
        out.append(
            EdgeIdentity(
                name=e.name,
                cluster=e.cluster,
                region=e.region,
                location=Location(e.location.lat, e.location.lon) if e.location else None,
                addresses=e.addresses,
                token=read_token_file(e.token_file) if e.token_file else shared,
            )
        )
    local = config.edge_health.local_edge
    if config.proxy.enabled and local not in {e.name for e in config.edges}:
        out.append(EdgeIdentity(name=local, cluster="", published=False))
    return out


class EdgeRegistry:
    def __init__(
        self, identities: Iterable[EdgeIdentity], *, rule: QuorumRule, store: Store, started_at: float
    ) -> None:
        self.rule = rule
        self.store = store
        self.started_at = started_at
        self._states = {i.name: _State(i) for i in identities}
        self.last_decision: QuorumDecision | None = None

    def identity(self, name: str) -> EdgeIdentity | None:
        state = self._states.get(name)
        return state.identity if state is not None else None

    def identities(self) -> list[EdgeIdentity]:
        return [s.identity for s in self._states.values()]

    def last_seen(self, name: str) -> float | None:
        state = self._states.get(name)
        return state.last_seen if state is not None else None

    def _live(self, s: _State, now: float) -> bool:
        return edge_live(
            s.last_seen, started_at=self.started_at, now=now, rule=self.rule, probe_failures=s.probe_failures
        )

    def addresses(self, name: str) -> tuple[str, ...]:
        state = self._states.get(name)
        return () if state is None else (state.identity.addresses or state.announced)

    def observe_probe(self, name: str, *, ok: bool, now: float) -> None:
        """One probe by the controller of the edge's public address (see ``edge/probe``)."""
        state = self._states.get(name)
        if state is None:
            return
        failures = 0 if ok else state.probe_failures + 1
        if failures == self.rule.probe_failures:
            log.warning(
                "edge %s: public address unreachable %d times: out of DNS",
                name,
                failures,
                extra={"edge": name},
            )
        state.probe_failures = failures
        self.refresh(now=now)

    def accept(self, report: HealthReport, *, now: float) -> QuorumDecision:
        """Take ``report`` as the edge's current view (the caller authenticated it) and re-decide."""
        state = self._states.get(report.edge)
        if state is None:
            raise KeyError(f"unknown edge {report.edge!r}")
        if report.sequence < state.sequence:
            # Reordered delivery (a retried POST overtaken by the next one): keep the newer view.
            log.info(
                "edge %s: report %d older than %d, ignored",
                report.edge,
                report.sequence,
                state.sequence,
                extra={"edge": report.edge},
            )
            return self.refresh(now=now)
        known = set(self.store.cluster_names())
        clusters = {c: up for c, up in report.cluster_health().items() if c in known}
        if state.first_seen is None:
            state.first_seen = now
            log.info(
                "edge %s reporting (%d backends)",
                report.edge,
                report.backend_count,
                extra={"edge": report.edge},
            )
        state.last_seen = now
        state.sequence = report.sequence
        state.reports += 1
        state.announced = report.addresses
        state.view = EdgeView(edge=report.edge, received_at=now, clusters=clusters)
        state.backends = report.backend_count
        state.backends_up = report.backends_up
        return self.refresh(now=now)

    def refresh(self, *, now: float) -> QuorumDecision:
        """Recompute the decision (stale reports expire with time alone) and write it to the Store."""
        views = [s.view for s in self._states.values() if s.view is not None]
        decision = decide(views, now=now, rule=self.rule)
        previous = self.last_decision
        self.last_decision = decision
        for name in self.store.cluster_names():
            verdict = decision.clusters.get(name)
            if previous is not None and previous.clusters.get(name) != verdict and name in decision.votes:
                v = decision.votes[name]
                log.log(
                    logging.WARNING if verdict is False else logging.INFO,
                    "cluster %s data plane %s: %d of %d live edges see it down (%d needed)",
                    name,
                    "down" if verdict is False else "up",
                    v.down,
                    v.voters,
                    v.needed,
                    extra={"cluster": name},
                )
            self.store.set_data_plane_health(name, verdict)
        self.store.set_edges(self._edges(now))
        return decision

    def _edges(self, now: float) -> list[Edge]:
        out = []
        for s in self._states.values():
            ident = s.identity
            if not ident.published:
                continue
            cluster = self.store.cluster(ident.cluster)
            out.append(
                Edge(
                    name=ident.name,
                    cluster=ident.cluster,
                    region=ident.region or (cluster.region if cluster else ""),
                    location=ident.location or _location_of(cluster),
                    addresses=ident.addresses or s.announced,
                    live=self._live(s, now),
                )
            )
        return out

    def rows(self, *, now: float) -> list[EdgeRow]:
        out = []
        for s in sorted(self._states.values(), key=lambda s: s.identity.name):
            ident = s.identity
            live = self._live(s, now)
            status = "Live" if live and s.last_seen is not None else ("Pending" if live else "Stale")
            cluster = self.store.cluster(ident.cluster)
            out.append(
                EdgeRow(
                    name=ident.name,
                    cluster=ident.cluster,
                    region=ident.region or (cluster.region if cluster else ""),
                    addresses=ident.addresses or s.announced,
                    status=status,
                    first_seen=s.first_seen,
                    last_seen=s.last_seen,
                    reports=s.reports,
                    backends_up=s.backends_up,
                    backends=s.backends,
                    published=ident.published,
                )
            )
        return out


def _location_of(cluster: Cluster | None) -> Location | None:
    if cluster is None:
        return None
    return cluster.location if cluster.location is not None else cluster_location(cluster)
