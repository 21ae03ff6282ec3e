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
from ingressfed.core.quorum import (
    EdgeView,
    PeerDecision,
    QuorumDecision,
    QuorumRule,
    decide,
    edge_live,
    peers_decide,
)
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
    status: str  # Live | Pending (not heard from yet, in its grace window) | Stale | Unreachable
    first_seen: float | None
    last_seen: float | None
    reports: int
    backends_up: int
    backends: int
    published: bool
    reason: str = ""  # why it is not Live, when a vote decided it


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
        self.last_peers = PeerDecision(unreachable=frozenset(), votes={})

    def identity(self, name: str) -> EdgeIdentity | None:
        state = self._states.get(name)
        return state.identity if state is not None else None

    def identities(self) -> list[EdgeIdentity]:
        return [s.identity for s in self._states.values()]

    def last_seen(self, name: str) -> float | None:
        state = self._states.get(name)
        return state.last_seen if state is not None else None

    def _reporting(self, s: _State, now: float) -> bool:
        """Alive by its own reports (and the controller's probe): what makes it a voter."""
        return edge_live(
            s.last_seen, started_at=self.started_at, now=now, rule=self.rule, probe_failures=s.probe_failures
        )

    def _peer_decision(self, now: float) -> PeerDecision:
        views = [s.view for s in self._states.values() if s.view is not None]
        # Only published edges are judged: the in-process proxy has no public address of its own.
        live = [n for n, s in self._states.items() if s.identity.published and self._reporting(s, now)]
        return peers_decide(views, live=live, now=now, rule=self.rule)

    def _live(self, s: _State, now: float, peers: PeerDecision) -> bool:
        return self._reporting(s, now) and s.identity.name not in peers.unreachable

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
        peers = None if report.peers is None else {p: ok for p, ok in report.peers if p in self._states}
        state.view = EdgeView(edge=report.edge, received_at=now, clusters=clusters, peers=peers)
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
        peers = self._peer_decision(now)
        for name in peers.unreachable ^ self.last_peers.unreachable:
            pv = peers.votes.get(name)
            log.log(
                logging.WARNING if name in peers.unreachable else logging.INFO,
                "edge %s %s: %d of %d live peers see its public address unreachable (%d needed)",
                name,
                "unreachable: out of DNS" if name in peers.unreachable else "reachable again",
                pv.down if pv else 0,
                pv.voters if pv else 0,
                pv.needed if pv else 0,
                extra={"edge": name},
            )
        if peers.overruled and not self.last_peers.overruled:
            log.warning("every edge sees every other edge unreachable: peer votes ignored (fail open)")
        self.last_peers = peers
        self.store.set_edges(self._edges(now, peers))
        return decision

    def _edges(self, now: float, peers: PeerDecision) -> list[Edge]:
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
                    live=self._live(s, now, peers),
                )
            )
        return out

    def rows(self, *, now: float) -> list[EdgeRow]:
        out = []
        peers = self._peer_decision(now)
        for s in sorted(self._states.values(), key=lambda s: s.identity.name):
            ident = s.identity
            reporting = self._reporting(s, now)
            status = (
                "Live" if reporting and s.last_seen is not None else ("Pending" if reporting else "Stale")
            )
            reason = ""
            if reporting and ident.name in peers.unreachable:
                v = peers.votes[ident.name]
                status = "Unreachable"
                reason = f"{v.down} of {v.voters} peers cannot reach its public address ({v.needed} needed)"
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
                    reason=reason,
                )
            )
        return out


def _location_of(cluster: Cluster | None) -> Location | None:
    if cluster is None:
        return None
    return cluster.location if cluster.location is not None else cluster_location(cluster)
