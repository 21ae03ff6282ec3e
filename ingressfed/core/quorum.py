"""Data-plane health agreed by the edges: a purely computational function.

Every edge reports what its own active checks and passive failures see of each
cluster's backends. One edge's view is one vantage point: an edge whose uplink
to Europe is broken sees every European cluster down while the rest of the
world reaches them fine. So a cluster's data plane is *down* only when a quorum
of the edges that reported on it recently see it down (default: a strict
majority). Otherwise it is *up*. With no recent report at all the answer is
*unknown* (``None``) and the member's API-server status alone decides, as it did
before edges existed.

An edge is *live* while its last report (or, before its first one, the moment
the controller started listening) is younger than ``stale_after``: a controller
restart does not take every edge out of DNS while they reconnect, and an edge
that stops reporting leaves DNS within one window.

Edges judge each other the same way (:func:`peers_decide`): every edge checks the
other edges' public addresses, and an edge is *unreachable* when a quorum of the
other live edges that report on their peers see it so. An edge's word on
itself never counts, and one edge cut off from the rest cannot remove another
for everyone. A verdict that would leave no edge at all is dropped: that is a
partition between the edges, not evidence about the clients (fail open).

Time is an argument; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "EdgeView",
    "PeerDecision",
    "QuorumDecision",
    "QuorumRule",
    "Votes",
    "decide",
    "edge_live",
    "needed_down",
    "peers_decide",
]


@dataclass(frozen=True, slots=True)
class QuorumRule:
    """``down_votes``: None for a strict majority of the voters, else that many (capped at the
    number of voters, so the last edge standing still decides alone).
    ``stale_after``: seconds after which an edge's report no longer counts (and the edge is dead)."""

    stale_after: float = 15.0
    down_votes: int | None = None
    probe_failures: int = 3  # consecutive failed controller probes of its public address: dead

    def __post_init__(self) -> None:
        if self.stale_after <= 0:
            raise ValueError("stale_after must be > 0")
        if self.down_votes is not None and self.down_votes < 1:
            raise ValueError("down_votes must be >= 1 (or None for a majority)")


@dataclass(frozen=True, slots=True)
class EdgeView:
    """The latest report of one edge: per cluster, whether any of its backends is usable from there."""

    edge: str
    received_at: float
    clusters: Mapping[str, bool] = field(default_factory=dict)
    peers: Mapping[str, bool] | None = None  # other edges: reachable from here; None: it does not check


@dataclass(frozen=True, slots=True)
class Votes:
    down: int
    voters: int
    needed: int

    @property
    def is_down(self) -> bool:
        return self.voters > 0 and self.down >= self.needed


@dataclass(frozen=True, slots=True)
class QuorumDecision:
    """``clusters``: True up, False down by quorum; a cluster no live edge reported on is absent."""

    clusters: Mapping[str, bool]
    votes: Mapping[str, Votes]
    live_edges: frozenset[str]


def needed_down(voters: int, rule: QuorumRule) -> int:
    """Down votes that take a cluster out when ``voters`` edges have an opinion on it."""
    if voters <= 0:
        return 1
    if rule.down_votes is None:
        return voters // 2 + 1
    return min(rule.down_votes, voters)


def edge_live(
    last_seen: float | None, *, started_at: float, now: float, rule: QuorumRule, probe_failures: int = 0
) -> bool:
    """Whether an edge last heard from at ``last_seen`` (None: never since ``started_at``) is alive.

    ``probe_failures``: consecutive failed probes of its public address by the controller. An edge
    that reports but cannot be reached where clients reach it (its load balancer gone) is dead too.
    """
    if probe_failures >= rule.probe_failures:
        return False
    seen = started_at if last_seen is None else max(last_seen, started_at)
    return now - seen <= rule.stale_after


def decide(views: Iterable[EdgeView], *, now: float, rule: QuorumRule) -> QuorumDecision:
    """Each cluster's data-plane health from the edges' latest views (see the module doc)."""
    down: dict[str, int] = {}
    voters: dict[str, int] = {}
    live: set[str] = set()
    for view in views:
        if now - view.received_at > rule.stale_after:
            continue  # stale: that vantage point no longer counts
        live.add(view.edge)
        for cluster, up in view.clusters.items():
            voters[cluster] = voters.get(cluster, 0) + 1
            if not up:
                down[cluster] = down.get(cluster, 0) + 1
    votes = {c: Votes(down=down.get(c, 0), voters=n, needed=needed_down(n, rule)) for c, n in voters.items()}
    return QuorumDecision(
        clusters={c: not v.is_down for c, v in votes.items()},
        votes=votes,
        live_edges=frozenset(live),
    )


@dataclass(frozen=True, slots=True)
class PeerDecision:
    """``unreachable``: the edges out of DNS by their peers' votes; ``votes``: per edge that some
    live peer reported on; ``overruled``: the verdicts took every edge out, so none was applied."""

    unreachable: frozenset[str]
    votes: Mapping[str, Votes]
    overruled: bool = False


def peers_decide(
    views: Iterable[EdgeView], *, live: Iterable[str], now: float, rule: QuorumRule
) -> PeerDecision:
    """The other edges' verdict on each edge in ``live`` (the edges alive by their own reports):
    is its public address reachable?

    Voters on an edge are the other live edges whose fresh report has a peer section (they check
    their peers; an empty section too: no results yet); one whose section does not name that edge
    (it has not checked it yet) votes *reachable*: while the others catch up, the first edge to
    notice cannot decide alone. Edges that send no peer section (checks off, or an older edge) do
    not vote, so with none the answer is today's: report freshness alone. An edge never votes on itself.
    """
    alive = frozenset(live)
    down: dict[str, int] = {}
    voters: dict[str, int] = {}
    for view in views:
        if view.edge not in alive or view.peers is None or now - view.received_at > rule.stale_after:
            continue  # a dead or silent edge's view of its peers no longer counts
        for peer in alive:
            if peer == view.edge:
                continue  # no edge vouches for itself
            voters[peer] = voters.get(peer, 0) + 1
            if view.peers.get(peer) is False:
                down[peer] = down.get(peer, 0) + 1
    votes = {e: Votes(down=down.get(e, 0), voters=n, needed=needed_down(n, rule)) for e, n in voters.items()}
    out = frozenset(e for e, v in votes.items() if v.is_down)
    if alive and out >= alive:
        return PeerDecision(unreachable=frozenset(), votes=votes, overruled=True)
    return PeerDecision(unreachable=out, votes=votes)
