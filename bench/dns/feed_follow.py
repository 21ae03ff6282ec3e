"""One record-set change at N record sets through the feed to a ``dns-serve --feed`` follower.

    .venv/bin/python -m bench.dns.feed_follow [--sets 140000] [--changes 20] [--state-file both|yes|no]

The bench process plays the controller: a real :class:`FeedPublisher` behind the real feed
routes (aiohttp on loopback) with a view of N record sets (the shape of ``bench/dns/run.py``).
A real ``ingressfed dns-serve --feed URL`` process follows it, once without and once with
``--state-file``. For each one-record-set change the bench publishes the new view and queries
the follower over UDP (every 2 ms) until the answer carries the change, and prints:

- publish -> answer: from the call to ``publish`` to the new answer on the wire;
- follower -> answer: from ``publish`` returning (the controller's own O(zone) reconcile and
  view comparison are the controller's cost, shown apart) to the new answer;
- the follower process's CPU time per change (user+sys from /proc/PID/stat: it survives
  contention on the shared machine, wall times do not);
- the peer measured in the same run: the same follower's first full load of the view (what a
  change cost when every change re-built everything), and the ratio to it;
- what a ``--state-file`` compaction costs at this size and how often one comes.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import dns.asyncquery  # noqa: E402
import dns.exception  # noqa: E402
import dns.message  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.dns.run import ZONE, records  # noqa: E402
from ingressfed.feed.delta import decode_feed  # noqa: E402
from ingressfed.feed.publisher import FeedPublisher, add_feed_routes  # noqa: E402
from ingressfed.feed.state import FeedStateFile, journal_line  # noqa: E402
from ingressfed.feed.view import FeedView  # noqa: E402
from ingressfed.model import RecordSet, RecordType  # noqa: E402
from tests.fakes.http_app import serve_app  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
_POLL = 0.002  # seconds between queries while waiting for a change to show


def cpu_seconds(pid: int) -> float:
    """user+sys CPU time of process ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def answer_of(port: int, name: str) -> set[str]:
    q = dns.message.make_query(name, "A")
    try:
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
    except dns.exception.Timeout:
        return set()
    return {rd.to_text() for rrset in r.answer for rd in rrset}


async def wait_for(port: int, name: str, value: str, *, limit: float) -> float:
    """Seconds until ``name`` answers with ``value`` (querying every 2 ms)."""
    t0 = time.perf_counter()
    while value not in await answer_of(port, name):
        if time.perf_counter() - t0 > limit:
            raise TimeoutError(f"{name} did not answer {value} within {limit:.0f} s")
        await asyncio.sleep(_POLL)
    return time.perf_counter() - t0


@dataclass
class Result:
    label: str
    first_load: float
    first_cpu: float
    publish: list[float]
    total: list[float]
    follower: list[float]
    cpu: list[float]
    state_bytes: int


async def follow_case(
    publisher: FeedPublisher, sets: list[RecordSet], url: str, services: int, changes: int, state: Path | None
) -> Result:
    cmd = [sys.executable, "-m", "ingressfed.dnsserver", "--listen", "127.0.0.1:0", "--log-level", "WARNING"]
    cmd += ["--zone", ZONE, "--feed", url, "--answers", "all"]
    if state is not None:
        cmd += ["--state-file", str(state)]
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        port = int(line.rsplit("port", 1)[1])
        probe = f"svc{services - 1}.default.federation.svc.{ZONE}"
        wanted = next(r for r in sets if r.name == probe and r.type is RecordType.A).values[0]
        await wait_for(port, probe, wanted, limit=300)
        first = time.perf_counter() - t0
        first_cpu = cpu_seconds(proc.pid)
        await asyncio.sleep(1.0)  # let the first load's persistence and folding settle
        at = {r.key: i for i, r in enumerate(sets)}
        publish_s: list[float] = []
        total_s: list[float] = []
        follower_s: list[float] = []
        cpu_s: list[float] = []
        for i in range(changes):
            name = f"svc{(i * 7919 + 13) % services}.default.federation.svc.{ZONE}"
            key = (name, RecordType.A, None)
            value = f"198.18.{(state is not None) * 100 + i // 250}.{i % 250 + 1}"
            sets[at[key]] = RecordSet(name, RecordType.A, 30, (value, "10.9.9.9"))
            view = FeedView(version=0, records=tuple(sets), routes=(), clusters=(), zone=ZONE)
            c0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            publisher.publish(view)
            t1 = time.perf_counter()
            after = await wait_for(port, name, value, limit=60)
            t2 = time.perf_counter()
            cpu_s.append(cpu_seconds(proc.pid) - c0)
            publish_s.append(t1 - t0)
            total_s.append(t2 - t0)
            follower_s.append(after)
            await asyncio.sleep(0.2)
        size = 0
        if state is not None:
            size = sum(p.stat().st_size for p in state.parent.iterdir() if p.name.startswith(state.name))
        return Result(
            "with --state-file" if state is not None else "without --state-file",
            first,
            first_cpu,
            publish_s,
            total_s,
            follower_s,
            cpu_s,
            size,
        )
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


def report(r: Result, sets: int) -> None:
    med = statistics.median
    cpu = sum(r.cpu) / len(r.cpu)
    print(f"dns-serve --feed, {r.label}:")
    print(
        f"  first full load of {sets} sets: {r.first_load:.2f} s wall (process start included), "
        f"{r.first_cpu:.2f} s CPU"
    )
    print(
        f"  publish -> answer: median {med(r.total) * 1e3:.1f} ms, max {max(r.total) * 1e3:.1f} ms "
        f"(goal: 50 ms); of which the controller's publish(): median {med(r.publish) * 1e3:.1f} ms"
    )
    print(
        f"  publish returned -> answer on the wire: median {med(r.follower) * 1e3:.1f} ms, "
        f"max {max(r.follower) * 1e3:.1f} ms"
    )
    print(
        f"  follower CPU per change: mean {cpu * 1e3:.1f} ms, max {max(r.cpu) * 1e3:.0f} ms "
        f"(user+sys in {1e3 / _TICK:.0f} ms ticks, the 2 ms polling queries included)"
    )
    print(f"  ratio first full load CPU / one change CPU: {r.first_cpu / max(cpu, 1e-4):.0f}x")
    print(f"  ratio first full load / one change (wall): {r.first_load / med(r.follower):.0f}x")
    if r.state_bytes:
        print(f"  state file and journal on disk after the changes: {r.state_bytes / 2**20:.1f} MiB")


def compaction(publisher: FeedPublisher) -> None:
    """What a ``--state-file`` compaction costs at this size (the follower runs it in a worker
    thread once the journal outgrows half the snapshot), and how often it comes."""
    view = publisher.current()
    body = publisher.delta_body(view.version - 1, publisher.epoch) if view is not None else None
    if view is None or body is None:
        return
    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-compact-") as d:
        state = FeedStateFile(Path(d) / "s.json")
        state.save(view)
        line = len(journal_line(decode_feed(body)))  # type: ignore[arg-type]
        c0, t0 = time.process_time(), time.perf_counter()
        state.compact(view, mark=0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    every = max(state.compact_min, state.snapshot_bytes // 2) // line
    print(
        f"--state-file compaction: {wall:.2f} s wall, {cpu:.2f} s CPU in a worker thread, once every "
        f"~{every} one-set changes ({line}-byte journal lines, {state.snapshot_bytes / 2**20:.1f} MiB "
        f"snapshot): {cpu / every * 1e3:.2f} ms CPU per change amortised"
    )


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sets", type=int, default=140000, help="record sets in the zone (about)")
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--state-file", choices=["both", "yes", "no"], default="both")
    args = p.parse_args()
    services = max(1, args.sets * 2 // 7)  # run.py makes 3.5 sets per service
    sets = records(services)
    print(f"zone {ZONE}: {len(sets)} record sets, {args.changes} one-set changes per case")
    publisher = FeedPublisher()
    t0 = time.perf_counter()
    publisher.publish(FeedView(version=0, records=tuple(sets), routes=(), clusters=(), zone=ZONE))
    print(f"controller: first publish {time.perf_counter() - t0:.2f} s")
    app = web.Application()
    add_feed_routes(app, publisher, None)
    runner, url = await serve_app(app)
    cases = {"both": [False, True], "yes": [True], "no": [False]}[args.state_file]
    try:
        with tempfile.TemporaryDirectory(prefix="ingressfed-bench-feed-") as d:
            for with_state in cases:
                state = Path(d) / "dns-feed.json" if with_state else None
                report(await follow_case(publisher, sets, url, services, args.changes, state), len(sets))
        compaction(publisher)
    finally:
        await runner.cleanup()
    print(f"load average: {os.getloadavg()[0]:.1f} (the machine is shared: 2 cores, other work running)")


if __name__ == "__main__":
    asyncio.run(main())
