"""One /metrics for a proxy with worker processes: each worker's counts added to the primary's.

With ``proxy.workers: N`` the kernel spreads connections over N processes, but only the primary
has the admin listener, so its registry alone would report about 1/N of the traffic. Every
worker sends a snapshot of its registry up its pipe each second (``snapshot``); the primary keeps
the newest per worker, also of a worker that has exited (what it counted happened), and adds them
into its own families at scrape time (``merge``).

Counters, histograms and summaries add up. Gauges are the primary's, except the ones that are a
per-process share of one quantity (open connections), which add up too; the others (backend up,
certificate expiry) describe state the primary owns and each worker only mirrors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client import Metric
from prometheus_client.registry import Collector

__all__ = ["SUMMED_GAUGES", "FamilySnapshot", "MergedCollector", "merge", "snapshot"]

# Gauges whose value is each process's share of one total.
SUMMED_GAUGES = frozenset({"ingressfed_proxy_active_connections"})
_ADDED_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram"})

# (family name, type, help, unit, ((sample name, sorted labels, value), ...)): plain tuples, so a
# snapshot pickles the same whatever prometheus_client keeps in its objects.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]
FamilySnapshot = tuple[str, str, str, str, tuple[tuple[str, tuple[tuple[str, str], ...], float], ...]]


def snapshot(collector: Collector) -> tuple[FamilySnapshot, ...]:
    """Every family of ``collector`` (a registry) as plain tuples."""
    return tuple(
        (
            family.name,
            family.type,
            family.documentation,
            family.unit,
            tuple((s.name, tuple(sorted(s.labels.items())), float(s.value)) for s in family.samples),
        )
        for family in collector.collect()
    )


def _adds(kind: str, name: str) -> bool:
    return kind in _ADDED_TYPES or (kind == "gauge" and name in SUMMED_GAUGES)


def merge(own: Iterable[Metric], workers: Sequence[Sequence[FamilySnapshot]]) -> list[Metric]:
    """The primary's families with the workers' samples added where they add up.

    ``_created`` samples (when a series started) take the earliest value instead of a sum. A
    family or series only a worker has (a cluster only it served so far) is included."""
    merged: list[Metric] = []
    seen: set[str] = set()
    extra: dict[str, tuple[str, str, str, dict[SampleKey, float]]] = {}
    for worker in workers:
        for name, kind, doc, unit, samples in worker:
            if name not in extra:
                extra[name] = (kind, doc, unit, {})
            values = extra[name][3]
            for sample_name, labels, value in samples:
                key = (sample_name, labels)
                if key not in values:
                    values[key] = value
                elif sample_name.endswith("_created"):
                    values[key] = min(values[key], value)
                elif _adds(kind, name):
                    values[key] += value
    for family in own:
        seen.add(family.name)
        theirs = extra.get(family.name)
        if theirs is None or theirs[0] != family.type or not _adds(family.type, family.name):
            merged.append(family)
            continue
        values = dict(theirs[3])
        out = Metric(family.name, family.documentation, family.type, family.unit)
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            other = values.pop(key, None)
            value = float(s.value)
            if other is not None:
                value = min(value, other) if s.name.endswith("_created") else value + other
            out.add_sample(s.name, dict(s.labels), value)
        for (sample_name, labels), value in values.items():  # the worker's order: buckets by le
            out.add_sample(sample_name, dict(labels), value)
        merged.append(out)
    for name, (kind, doc, unit, values) in extra.items():
        if name in seen:
            continue
        out = Metric(name, doc, kind, unit)
        for (sample_name, labels), value in values.items():
            out.add_sample(sample_name, dict(labels), value)
        merged.append(out)
    return merged


class MergedCollector(Collector):
    """What the primary's admin listener exposes: its registry plus the workers' latest snapshots."""

    def __init__(self, own: Collector, workers: Mapping[int, Sequence[FamilySnapshot]]) -> None:
        self.own = own
        self.workers = workers  # the pool's dict of newest snapshots, read at each scrape

    def collect(self) -> Iterator[Metric]:
        yield from merge(self.own.collect(), [self.workers[k] for k in sorted(self.workers)])
