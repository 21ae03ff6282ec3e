"""Incremental serving at scale: one record-set change in a zone of N record sets.

    .venv/bin/python bench/dns/incremental.py [--sets 140000] [--changes 20]

Builds the embedded server's index for N record sets (the same shape as
``bench/dns/run.py``: A, AAAA, CNAME and TXT per service), starts the server on
a free loopback port, then applies one-record-set changes the way the embedded
provider publishes them (``DnsServer.update_soon(data, changes)``) and measures
the time from the change to the first UDP answer carrying it, against the time
a full re-render of the same zone takes (what every change cost before). Also
prints the memory the index holds per record set (growth of the resident set).

Then the same through the embedded provider with a zone file, the way the
controller's process runs it: ``EmbeddedProvider.apply_batch`` of one change
(checked, appended to the journal, on disk) with the server following
``subscribe_changes`` in place, until the answer carries it; against what one
batch cost before the journal (writing the whole zone file). Also prints the
journal bytes per change and the CPU time per batch. The same change through the controller's
feed to a separate ``dns-serve --feed`` process is ``bench/dns/feed_follow.py``.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import dns.asyncquery  # noqa: E402
import dns.message  # noqa: E402

from bench.dns.run import ZONE, records  # noqa: E402
from ingressfed.dnsserver.index import build_index  # noqa: E402
from ingressfed.dnsserver.server import DnsServer  # noqa: E402
from ingressfed.dnsserver.zone import ZoneData, next_serial  # noqa: E402
from ingressfed.dnsserver.zonefile import journal_path, save_zone_file  # noqa: E402
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType  # noqa: E402
from providers.embedded import EmbeddedProvider  # noqa: E402


def _rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def zone_of(sets: list[RecordSet], serial: int) -> ZoneData:
    from ingressfed.dnsserver.zone import SoaSettings

    return ZoneData(zone=ZONE, serial=serial, soa=SoaSettings.default(ZONE), records=tuple(sets))


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sets", type=int, default=140000, help="record sets in the zone (about)")
    p.add_argument("--changes", type=int, default=20)
    args = p.parse_args()
    services = max(1, args.sets * 2 // 7)  # run.py makes 3.5 sets per service
    sets = records(services)
    print(f"zone {ZONE}: {len(sets)} record sets")

    data0 = zone_of(sets, 1)
    gc.collect()
    before = _rss()
    t0 = time.perf_counter()
    index = build_index(data0, answers="all")
    full = time.perf_counter() - t0
    gc.collect()
    held = _rss() - before
    print(f"full render: {full:.2f} s ({full / len(sets) * 1e6:.1f} us per record set)")
    print(f"index memory (RSS growth): {held / 2**20:.0f} MiB ({held / len(sets):.0f} bytes per record set)")

    times: list[float] = []
    async with DnsServer(index, host="127.0.0.1", port=0) as srv:
        data = index.data
        for i in range(args.changes):
            name = f"svc{i * 7 % services}.default.federation.svc.{ZONE}"
            old = next(r for r in sets if r.name == name and r.type is RecordType.A)
            new = RecordSet(name, RecordType.A, 30, (f"198.18.{i // 250}.{i % 250 + 1}",))
            sets[sets.index(old)] = new
            data = ZoneData(zone=ZONE, serial=next_serial(data.serial), soa=data.soa, records=tuple(sets))
            q = dns.message.make_query(name, "A")
            t0 = time.perf_counter()
            srv.update_soon(data, [Change(ChangeAction.UPDATE, old=old, new=new)])
            while True:
                r = await dns.asyncquery.udp(q, "127.0.0.1", port=srv.port, timeout=5)
                if any(rd.to_text() == new.values[0] for rrset in r.answer for rd in rrset):
                    break
            times.append(time.perf_counter() - t0)
    p50 = statistics.median(times)
    print(
        f"one change, applied and answered over UDP: median {p50 * 1e3:.2f} ms, "
        f"max {max(times) * 1e3:.2f} ms over {len(times)} changes (goal: 50 ms)"
    )
    print(f"ratio full re-render / incremental: {full / p50:.0f}x")
    await through_the_provider(sets, services, args.changes)
    print(f"load average: {os.getloadavg()[0]:.1f} (the machine is shared: 2 cores, other work running)")


async def through_the_provider(sets: list[RecordSet], services: int, count: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-incr-") as d:
        path = Path(d) / "zone.json"
        provider = EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path)})
        t0 = time.perf_counter()
        await provider.apply_batch(Changes(tuple(Change(ChangeAction.CREATE, new=rs) for rs in sets)))
        seeded = time.perf_counter() - t0
        print(f"provider: {len(sets)} record sets in one batch (zone file written whole) in {seeded:.2f} s")
        t0 = time.perf_counter()
        save_zone_file(Path(d) / "whole.json", provider.zone_data)
        whole = time.perf_counter() - t0
        index = build_index(provider.zone_data, answers="all")
        batch_times: list[float] = []
        served_times: list[float] = []
        cpu_times: list[float] = []
        async with DnsServer(index, host="127.0.0.1", port=0) as srv:
            provider.subscribe_changes(srv.update_soon)
            current = {rs.key: rs for rs in sets}
            for i in range(count):
                name = f"svc{(i * 11 + 3) % services}.default.federation.svc.{ZONE}"
                old = current[(name, RecordType.A, None)]
                new = RecordSet(name, RecordType.A, 30, (f"198.19.{i // 250}.{i % 250 + 1}",))
                current[new.key] = new
                q = dns.message.make_query(name, "A")
                t0 = time.perf_counter()
                c0 = time.process_time()
                await provider.apply_batch(Changes((Change(ChangeAction.UPDATE, old=old, new=new),)))
                batch_times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
                while True:
                    r = await dns.asyncquery.udp(q, "127.0.0.1", port=srv.port, timeout=5)
                    if any(rd.to_text() == new.values[0] for rrset in r.answer for rd in rrset):
                        break
                served_times.append(time.perf_counter() - t0)
            assert srv.index is index, "the server rendered the zone whole"
        journal = journal_path(path).stat().st_size
    print(
        "provider: one change applied (checked, journal line on disk): "
        f"median {statistics.median(batch_times) * 1e3:.2f} ms, max {max(batch_times) * 1e3:.2f} ms; "
        f"CPU {statistics.median(cpu_times) * 1e3:.2f} ms per batch"
    )
    print(
        f"provider -> server in place -> UDP answer: median {statistics.median(served_times) * 1e3:.2f} ms, "
        f"max {max(served_times) * 1e3:.2f} ms (goal: 50 ms)"
    )
    print(
        f"journal: {journal / count:.0f} bytes per one-change batch; before the journal every batch "
        f"wrote the whole zone file: {whole:.2f} s here ({path.name}, {len(sets)} sets)"
    )


if __name__ == "__main__":
    asyncio.run(main())
