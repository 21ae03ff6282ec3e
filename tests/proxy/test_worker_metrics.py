"""The primary's /metrics adds its workers' counts (``proxy/worker_metrics``), checked through
prometheus_client's own exposition and parser."""

from __future__ import annotations

import pickle

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingressfed.proxy.worker_metrics import MergedCollector, merge, snapshot


def _registry() -> tuple[CollectorRegistry, Counter, Histogram, Gauge, Gauge]:
    registry = CollectorRegistry()
    requests = Counter("ingressfed_proxy_requests", "r", ["cluster", "code"], registry=registry)
    latency = Histogram("lat_seconds", "l", ["cluster"], buckets=(0.01, 0.1), registry=registry)
    connections = Gauge("ingressfed_proxy_active_connections", "c", registry=registry)
    up = Gauge("ingressfed_proxy_backend_up", "u", ["backend"], registry=registry)
    return registry, requests, latency, connections, up


def _values(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_counters_histograms_and_connection_gauges_add_up_other_gauges_are_the_primarys() -> None:
    primary, p_requests, p_latency, p_conns, p_up = _registry()
    worker, w_requests, w_latency, w_conns, w_up = _registry()
    p_requests.labels("us", "200").inc(3)
    w_requests.labels("us", "200").inc(4)
    w_requests.labels("eu", "502").inc(1)  # a series only the worker has
    p_latency.labels("us").observe(0.005)
    w_latency.labels("us").observe(0.05)
    w_latency.labels("us").observe(1.0)
    p_conns.set(2)
    w_conns.set(5)
    p_up.labels("a").set(1)
    w_up.labels("a").set(0)  # the worker's mirror of state the primary owns
    sent = pickle.loads(pickle.dumps(snapshot(worker)))  # as it crosses the pipe
    values = _values(generate_latest(MergedCollector(primary, {0: sent})))  # type: ignore[arg-type]

    assert values[("ingressfed_proxy_requests_total", (("cluster", "us"), ("code", "200")))] == 7
    assert values[("ingressfed_proxy_requests_total", (("cluster", "eu"), ("code", "502")))] == 1
    bucket = "lat_seconds_bucket"
    assert values[(bucket, (("cluster", "us"), ("le", "0.01")))] == 1
    assert values[(bucket, (("cluster", "us"), ("le", "0.1")))] == 2
    assert values[(bucket, (("cluster", "us"), ("le", "+Inf")))] == 3
    assert values[("lat_seconds_count", (("cluster", "us"),))] == 3
    assert abs(values[("lat_seconds_sum", (("cluster", "us"),))] - 1.055) < 1e-9
    assert values[("ingressfed_proxy_active_connections", ())] == 7
    assert values[("ingressfed_proxy_backend_up", (("backend", "a"),))] == 1


def test_created_is_the_earliest_and_no_series_is_repeated() -> None:
    primary, p_requests, *_ = _registry()
    worker, w_requests, *_ = _registry()
    p_requests.labels("us", "200").inc()
    w_requests.labels("us", "200").inc()
    families = merge(primary.collect(), [snapshot(worker), snapshot(worker)])
    samples = [(s.name, tuple(sorted(s.labels.items()))) for f in families for s in f.samples]
    assert len(samples) == len(set(samples))
    (created,) = [
        s.value for f in families for s in f.samples if s.name == "ingressfed_proxy_requests_created"
    ]
    own = {s.name: s.value for f in primary.collect() for s in f.samples}
    theirs = {s.name: s.value for f in worker.collect() for s in f.samples}
    name = "ingressfed_proxy_requests_created"
    assert created == min(own[name], theirs[name])
    (total,) = [s.value for f in families for s in f.samples if s.name == "ingressfed_proxy_requests_total"]
    assert total == 3


def test_without_workers_the_primary_is_exposed_unchanged() -> None:
    primary, p_requests, *_ = _registry()
    p_requests.labels("us", "200").inc(2)
    assert _values(generate_latest(MergedCollector(primary, {}))) == _values(generate_latest(primary))  # type: ignore[arg-type]
