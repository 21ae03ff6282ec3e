"""The quorum rule over the edges' health reports (pure, table-driven)."""

from __future__ import annotations

import pytest

from ingressfed.core.quorum import EdgeView, QuorumRule, decide, edge_live, needed_down, peers_decide

RULE = QuorumRule(stale_after=15.0)
NOW = 1000.0


def view(edge: str, age: float = 1.0, **clusters: bool) -> EdgeView:
    return EdgeView(edge=edge, received_at=NOW - age, clusters=clusters)


@pytest.mark.parametrize(
    ("case", "views", "expected"),
    [
        ("all agree up", [view("e1", us=True), view("e2", us=True), view("e3", us=True)], {"us": True}),
        ("all agree down", [view("e1", us=False), view("e2", us=False), view("e3", us=False)], {"us": False}),
        ("one dissenter", [view("e1", us=False), view("e2", us=True), view("e3", us=True)], {"us": True}),
        (
            "two of three down",
            [view("e1", us=False), view("e2", us=False), view("e3", us=True)],
            {"us": False},
        ),
        # One edge cut off from the world sees everything down; the other two outvote it.
        (
            "partitioned edge",
            [
                view("asia", us=False, eu=False, asia=True),
                view("us", us=True, eu=True, asia=True),
                view("eu", us=True, eu=True, asia=True),
            ],
            {"us": True, "eu": True, "asia": True},
        ),
        # Two of four is not a strict majority.
        (
            "tie is not a quorum",
            [view("e1", us=False), view("e2", us=False), view("e3", us=True), view("e4", us=True)],
            {"us": True},
        ),
        # Stale reports stop counting: the fresh one decides alone.
        (
            "stale reports expire",
            [view("e1", age=30, us=True), view("e2", age=20, us=True), view("e3", us=False)],
            {"us": False},
        ),
        ("a single edge decides", [view("only", us=False, eu=True)], {"us": False, "eu": True}),
        ("no reports at all", [], {}),
        ("only stale reports", [view("e1", age=16, us=False)], {}),
        # An edge that does not route a cluster has no opinion on it.
        ("voters per cluster", [view("e1", us=False), view("e2", eu=True)], {"us": False, "eu": True}),
    ],
)
def test_quorum_table(case: str, views: list[EdgeView], expected: dict[str, bool]) -> None:
    assert dict(decide(views, now=NOW, rule=RULE).clusters) == expected, case


def test_live_edges_are_the_fresh_reporters() -> None:
    d = decide([view("e1", us=True), view("e2", age=15.5, us=True)], now=NOW, rule=RULE)
    assert d.live_edges == frozenset({"e1"})
    assert d.votes["us"].voters == 1


def test_configured_down_votes() -> None:
    rule = QuorumRule(stale_after=15.0, down_votes=1)
    views = [view("e1", us=False), view("e2", us=True), view("e3", us=True)]
    assert decide(views, now=NOW, rule=rule).clusters == {"us": False}
    rule3 = QuorumRule(stale_after=15.0, down_votes=3)
    two_down = [view("e1", us=False), view("e2", us=False), view("e3", us=True)]
    assert decide(two_down, now=NOW, rule=rule3).clusters == {"us": True}


@pytest.mark.parametrize(
    ("voters", "down_votes", "needed"),
    [
        (1, None, 1),
        (2, None, 2),
        (3, None, 2),
        (4, None, 3),
        (5, None, 3),
        (1, 2, 1),
        (5, 2, 2),
        (0, None, 1),
    ],
)
def test_needed_down(voters: int, down_votes: int | None, needed: int) -> None:
    assert needed_down(voters, QuorumRule(down_votes=down_votes)) == needed


def test_edge_liveness_has_a_grace_window_from_start() -> None:
    # Never heard from: alive for one window after the controller started, then dead.
    assert edge_live(None, started_at=NOW - 10, now=NOW, rule=RULE)
    assert not edge_live(None, started_at=NOW - 16, now=NOW, rule=RULE)
    assert edge_live(NOW - 14, started_at=0, now=NOW, rule=RULE)
    assert not edge_live(NOW - 16, started_at=0, now=NOW, rule=RULE)


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="stale_after"):
        QuorumRule(stale_after=0)
    with pytest.raises(ValueError, match="down_votes"):
        QuorumRule(down_votes=0)


def peers(edge: str, age: float = 1.0, **reachable: bool) -> EdgeView:
    return EdgeView(edge=edge, received_at=NOW - age, peers=reachable)


ABC = ("a", "b", "c")


@pytest.mark.parametrize(
    ("case", "views", "live", "rule", "expected"),
    [
        ("all see it unreachable", [peers("a", c=False), peers("b", c=False), peers("c")], ABC, RULE, {"c"}),
        ("all see each other", [peers("a", b=True, c=True), peers("b", a=True, c=True)], ABC, RULE, set()),
        # One of two voters is not a strict majority: c stays.
        ("one dissenter", [peers("a", c=False), peers("b", c=True)], ABC, RULE, set()),
        # A partitioned edge sees every other edge down: outvoted; the others see it down: it goes.
        (
            "partitioned reporter",
            [peers("a", b=False, c=False), peers("b", a=False, c=True), peers("c", a=False, b=True)],
            ABC,
            RULE,
            {"a"},
        ),
        # A stale peer view stops counting: b's old word alone is not a vote.
        ("stale peer views expire", [peers("a", c=False), peers("b", age=20, c=False)], ABC, RULE, {"c"}),
        ("stale only", [peers("b", age=20, c=False)], ABC, RULE, set()),
        # An edge cannot vouch for itself: c's claim that it is reachable is not a vote.
        (
            "no self vouching",
            [peers("a", c=False), peers("b", c=False), peers("c", c=True)],
            ABC,
            RULE,
            {"c"},
        ),
        # A dead reporter's view does not count (b is not live).
        ("dead reporter", [peers("a", c=True), peers("b", c=False)], ("a", "c"), RULE, set()),
        # Two edges: the one peer decides; when both see the other down, that is their partition.
        ("two edges, one down", [peers("a", b=False), peers("b", a=True)], ("a", "b"), RULE, {"b"}),
        ("two edges, mutual", [peers("a", b=False), peers("b", a=False)], ("a", "b"), RULE, set()),
        # b checks its peers but has not got to c yet: that is no down vote, so a alone is 1 of 2.
        ("a peer yet to check it", [peers("a", c=False), peers("b", a=True)], ABC, RULE, set()),
        ("no peer data", [EdgeView("a", NOW), EdgeView("b", NOW), EdgeView("c", NOW)], ABC, RULE, set()),
        # b checks its peers but has no results yet (an empty section): still a reachable vote.
        ("empty section votes", [peers("a", c=False), peers("b")], ABC, RULE, set()),
        # An edge that does not check its peers (no section) is no voter: a alone decides.
        ("no section no vote", [peers("a", c=False), EdgeView("b", NOW)], ABC, RULE, {"c"}),
        ("quorum of one", [peers("a", c=False), peers("b", c=True)], ABC, QuorumRule(down_votes=1), {"c"}),
    ],
)
def test_peer_quorum_table(
    case: str, views: list[EdgeView], live: tuple[str, ...], rule: QuorumRule, expected: set[str]
) -> None:
    assert set(peers_decide(views, live=live, now=NOW, rule=rule).unreachable) == expected, case


def test_peer_verdicts_that_empty_dns_are_overruled() -> None:
    d = peers_decide([peers("a", b=False), peers("b", a=False)], live=("a", "b"), now=NOW, rule=RULE)
    assert d.overruled and not d.unreachable and d.votes["a"].is_down
