import pytest

from ingressfed.core.health import (
    ClusterHealth,
    HealthThresholds,
    ProbeOutcome,
    cluster_serves,
    expire,
    observe,
)
from ingressfed.model import Cluster, ClusterStatus

T = HealthThresholds()
OK, NR, UN = ProbeOutcome.OK, ProbeOutcome.NOT_READY, ProbeOutcome.UNREACHABLE


def run(outcomes: list[ProbeOutcome], start: ClusterHealth | None = None) -> list[ClusterStatus]:
    state = start or ClusterHealth()
    seen = []
    for i, o in enumerate(outcomes):
        state = observe(state, o, now=float(i * 10), thresholds=T)
        seen.append(state.status)
    return seen


R, N, OFF = ClusterStatus.READY, ClusterStatus.NOT_READY, ClusterStatus.OFFLINE


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([OK], [R]),
        ([OK, UN, UN, UN], [R, R, R, OFF]),
        ([OK, UN, UN, OK, UN, UN], [R, R, R, R, R, R]),  # a success resets the count
        ([OK, NR, NR, NR], [R, R, R, N]),
        ([OK, UN, UN, UN, OK], [R, R, R, OFF, R]),  # success threshold 1
        ([UN], [OFF]),  # never answered: reported at once
        ([NR, OK], [N, R]),
    ],
)
def test_state_machine(outcomes: list[ProbeOutcome], expected: list[ClusterStatus]) -> None:
    assert run(outcomes) == expected


def test_success_threshold_two() -> None:
    th = HealthThresholds(success_threshold=2)
    s = ClusterHealth(status=OFF, last_probe_time=0.0)
    s = observe(s, OK, now=1, thresholds=th)
    assert s.status is OFF
    s = observe(s, OK, now=2, thresholds=th)
    assert s.status is R and s.last_transition_time == 2


def test_same_input_same_output() -> None:
    s = ClusterHealth()
    assert observe(s, OK, now=5, thresholds=T) == observe(s, OK, now=5, thresholds=T)


def test_expire_marks_stale_probes_offline() -> None:
    s = observe(ClusterHealth(), OK, now=0, thresholds=T)
    assert expire(s, now=30, thresholds=T).status is R
    stale = expire(s, now=34, thresholds=T)
    assert stale.status is OFF and stale.reason == "ProbeStale"


def test_invalid_thresholds() -> None:
    with pytest.raises(ValueError):
        HealthThresholds(failure_threshold=0)


@pytest.mark.parametrize(
    ("status", "data_plane", "serves"),
    [
        (R, None, True),
        (N, None, True),
        (OFF, None, False),
        (OFF, True, True),  # API server unreachable alone does not remove it
        (OFF, False, False),
        (R, False, False),  # dead data plane wins
    ],
)
def test_cluster_serves(status: ClusterStatus, data_plane: bool | None, serves: bool) -> None:
    c = Cluster(name="c", region="r", zone="z", status=status, data_plane_healthy=data_plane)
    assert cluster_serves(c) is serves
