"""The status side's pure decisions: health colour, events, rates, nearest-cluster grid, where, tables."""

from __future__ import annotations

from dataclasses import replace

import pytest

from geo.regions import region_location
from geo.select import Candidate, rank
from ingressfed.model import (
    Backend,
    Change,
    ChangeAction,
    Changes,
    Cluster,
    ClusterStatus,
    Location,
    RecordSet,
    RecordType,
    Route,
    Routing,
)
from ingressfed.status.events import EventKind, cluster_events, dns_events
from ingressfed.status.health import Health, cluster_health, cluster_reasons
from ingressfed.status.rates import Sample, request_rates
from ingressfed.status.regions import nearest_grid
from ingressfed.status.tables import TABLES, short_age, table_rows
from ingressfed.status.where import answer_from_records, proxy_choice

US = Cluster("us", "us-east1", "us-east1-b", region_location("us-east1"))
EU = Cluster("eu", "europe-west1", "europe-west1-b", region_location("europe-west1"))
ASIA = Cluster("asia", "asia-east1", "asia-east1-a", region_location("asia-east1"))
LONDON = Location(51.5, -0.1)


def test_health_follows_what_dns_and_the_proxy_do() -> None:
    assert cluster_health(US) is Health.HEALTHY and cluster_reasons(US) == []
    offline = replace(US, status=ClusterStatus.OFFLINE)
    assert cluster_health(offline) is Health.UNHEALTHY
    assert [r.split(":")[0] for r in cluster_reasons(offline)] == ["Offline", "Removed"]
    # An unreachable API server alone does not remove a cluster whose data plane answers.
    still = replace(offline, data_plane_healthy=True)
    assert cluster_health(still) is Health.DEGRADED
    assert "StillServing" in cluster_reasons(still)[1]
    failing = replace(US, data_plane_healthy=False)
    assert cluster_health(failing) is Health.UNHEALTHY
    assert cluster_reasons(failing)[0].startswith("DataPlaneFailing")


def test_events_name_the_failover_target() -> None:
    before = {c.name: c for c in (US, EU, ASIA)}
    down = replace(EU, status=ClusterStatus.OFFLINE, data_plane_healthy=False)
    events = cluster_events(before, [US, down, ASIA], now=100.0)
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.STATUS, EventKind.DATA_PLANE_DOWN, EventKind.FAILOVER]
    assert all(e.object == "eu" and e.time == 100.0 and e.warning for e in events)
    # Europe's clients go to the next nearest healthy cluster: the US one.
    assert "its clients now go to us" in events[-1].message
    back = cluster_events({c.name: c for c in (US, down, ASIA)}, [US, EU, ASIA], now=101.0)
    assert [e.kind for e in back] == [EventKind.STATUS, EventKind.DATA_PLANE_UP, EventKind.RECOVERED]
    # Nothing changed: no event (idempotent).
    assert cluster_events(before, [US, EU, ASIA], now=102.0) == []
    joined = cluster_events({}, [US], now=1.0)
    assert [e.kind for e in joined] == [EventKind.JOINED]
    assert [e.kind for e in cluster_events({"us": US}, [], now=1.0)] == [EventKind.REMOVED]


def test_dns_events_split_applied_from_refused() -> None:
    a = RecordSet("a.example.com", RecordType.A, 30, ("192.0.2.1",))
    b = RecordSet("b.example.com", RecordType.A, 30, ("192.0.2.2",))
    changes = Changes((Change(ChangeAction.CREATE, new=a), Change(ChangeAction.DELETE, old=b)))
    events = dns_events(changes, {"b.example.com": "InvalidChangeBatch"}, now=5.0)
    assert [e.kind for e in events] == [EventKind.DNS_APPLIED, EventKind.DNS_FAILED]
    assert "1 create" in events[0].message and "a.example.com" in events[0].message
    assert "InvalidChangeBatch" in events[1].message and events[1].warning
    assert dns_events(Changes(), {}, now=5.0) == []


def test_rates_from_two_samples_and_counter_reset() -> None:
    older = Sample(10.0, {("eu", "200"): 100, ("eu", "503"): 0, ("us", "200"): 50})
    newer = Sample(20.0, {("eu", "200"): 190, ("eu", "503"): 10, ("us", "200"): 5})
    rates = request_rates(older, newer)
    assert rates["eu"].requests_per_second == pytest.approx(10.0)
    assert rates["eu"].error_rate == pytest.approx(0.1)
    # The us counter went down (a restart): it counts from zero.
    assert rates["us"].requests_per_second == pytest.approx(0.5)
    assert request_rates(newer, newer) == {}


def test_grid_shades_each_cell_with_the_proxy_choice() -> None:
    grid = nearest_grid([US, EU, ASIA], step=10)
    assert (grid.rows, grid.cols, len(grid.cells)) == (18, 36, 648)

    def cell(lat: float, lon: float) -> str | None:
        return grid.cells[int((90 - lat) // 10) * grid.cols + int((lon + 180) // 10)]

    assert cell(48.8, 2.3) == "eu"  # Paris
    assert cell(40.7, -74.0) == "us"  # New York
    assert cell(35.7, 139.7) == "asia"  # Tokyo
    # Europe down: its cells go to the next nearest healthy cluster.
    failed = nearest_grid([US, replace(EU, data_plane_healthy=False), ASIA], step=10)
    assert failed.cells[int((90 - 48.8) // 10) * 36 + int((2.3 + 180) // 10)] == "us"
    assert set(nearest_grid([], step=10).cells) == {None}
    with pytest.raises(ValueError, match="step"):
        nearest_grid([US], step=7)


def test_proxy_choice_and_answers_from_records() -> None:
    route = Route("shop.example.com", backends=(Backend("eu", "10.0.0.2"), Backend("us", "10.0.0.1")))
    choice = proxy_choice("Shop.Example.com.", LONDON, [route], [US, EU, ASIA])
    assert choice is not None and choice.chosen == "eu" and choice.order == ("eu", "us")
    down = proxy_choice("shop.example.com", LONDON, [route], [US, replace(EU, data_plane_healthy=False)])
    assert down is not None and down.chosen == "us" and down.order[0] == "us"
    assert proxy_choice("nope.example.com", LONDON, [route], [US]) is None

    name = "web.default.federation.svc.example.com"
    records = [
        RecordSet(name, RecordType.A, 30, ("192.0.2.1",), "us", Routing("us", "us-east1", US.location)),
        RecordSet(name, RecordType.A, 30, ("192.0.2.2",), "eu", Routing("eu", "europe-west1", EU.location)),
        RecordSet("www.example.com", RecordType.CNAME, 30, (name,)),
    ]
    assert answer_from_records(records, "www.example.com", LONDON) == [f"CNAME {name}", "A 192.0.2.2"]
    assert answer_from_records(records, name, Location(40.7, -74.0)) == ["A 192.0.2.1"]
    assert answer_from_records(records, "missing.example.com", LONDON) == []


def test_tables_are_kubectl_like_and_single_line() -> None:
    items = [
        {
            "name": "b\nFORGED ROW",
            "status": "Offline",
            "dataPlaneHealthy": False,
            "health": "unhealthy",
            "lastTransition": 40.0,
            "reasons": ["Offline: x", "Removed: y"],
            "location": {"lat": 1.0, "lon": 2.0},
            "requestsPerSecond": 1.25,
            "errorRate": 0.5,
        },
        {
            "name": "a",
            "status": "Ready",
            "dataPlaneHealthy": None,
            "health": "healthy",
            "lastTransition": None,
        },
        {"name": "c\x1b[2J", "status": "Ready", "health": "healthy"},
    ]
    rows = table_rows(TABLES["clusters"], items, now=100.0, wide=False)
    assert rows[0] == ["NAME", "STATUS", "DATA PLANE", "HEALTH", "LAST TRANSITION"]
    assert rows[1] == ["a", "Ready", "Unchecked", "healthy", "<unknown>"]
    assert rows[2] == ["b FORGED ROW", "Offline", "Failing", "unhealthy", "1m"]
    assert rows[3][0] == "c?[2J"  # no escape sequence reaches the terminal
    wide = table_rows(TABLES["clusters"], items, now=100.0, wide=True)
    assert wide[2][-4:] == ["1.00,2.00", "1.2", "50.0%", "Offline; Removed"]
    assert [short_age(s) for s in (5, 150, 7200, 3 * 86400)] == ["5s", "2m", "2h", "3d"]


def test_grid_shortcut_agrees_with_ranking_every_cluster() -> None:
    # Many clusters, some within one 50 km bucket of each other and with different weights.
    clusters = [
        Cluster(
            f"c{i:03d}",
            "r",
            "z",
            Location(-60 + (i * 37) % 120, -180 + (i * 73) % 360),
            weight=50 + i % 3 * 50,
        )
        for i in range(120)
    ]
    clusters += [
        Cluster("near-a", "r", "z", Location(48.0, 2.0), weight=10),
        Cluster("near-b", "r", "z", Location(48.2, 2.1)),
    ]
    grid = nearest_grid(clusters, step=10)
    candidates = [Candidate(c.name, c.location, True, c.weight) for c in clusters]
    for i, chosen in enumerate(grid.cells):
        lat, lon = 90 - (i // grid.cols + 0.5) * 10, -180 + (i % grid.cols + 0.5) * 10
        assert chosen == rank(Location(lat, lon), candidates)[0], (lat, lon)


def test_a_view_first_read_late_makes_up_no_join_or_transition() -> None:
    from ingressfed.status.state import StatusState

    clock = [100.0]
    state = StatusState(role="proxy", view=lambda: None, clock=lambda: clock[0])
    state.observe_clusters([US, EU], first_sight=False)
    assert list(state.events) == [] and state.transitions == {}
    clock[0] = 105.0
    state.observe_clusters([US, replace(EU, data_plane_healthy=False)], first_sight=False)
    assert state.transitions == {"eu": 105.0}
    assert [e.kind for e in state.events] == [EventKind.DATA_PLANE_DOWN, EventKind.FAILOVER]
