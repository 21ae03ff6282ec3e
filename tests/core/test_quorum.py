"""The quorum rule over the edges' health reports (pure, table-driven)."""

from __future__ import annotations

import pytest

from ingressfed.core.quorum import EdgeView, QuorumRule, decide, edge_live, needed_down

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
