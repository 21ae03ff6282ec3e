"""DNS benchmark: ingressfed's embedded server against Knot, same records, same load, same run.

    .venv/bin/python bench/dns/run.py [--duration 10] [--rounds 3] [--clients 4] [--workers 1,2]

Starts ``knotd`` (Debian package ``knot``) and the embedded server
(``python -m ingressfed.dnsserver``) on free loopback ports from temporary
directories, then runs ``dnsperf`` (Debian package ``dnsperf``) against each in
alternating rounds with the same query file (existing A/AAAA/CNAME/TXT names,
NXDOMAIN and NODATA), duration and client count. For each count W of ``--workers``
Knot gets W UDP workers and the embedded server ``--workers W`` (W processes on
one port, SO_REUSEPORT, the primary passing zone changes on). Prints queries/s and lost queries per
round and the ratio of the medians, plus queries per CPU-second each server used
(on a small shared machine dnsperf may not saturate the faster server, so the
q/s ratio alone can flatter the slower one). Not a test: numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.peers import free_port  # noqa: E402
from ingressfed.dnsserver.zone import zone_data_from_records  # noqa: E402
from ingressfed.dnsserver.zonefile import save_zone_file  # noqa: E402
from ingressfed.model import RecordSet, RecordType  # noqa: E402

ZONE = "example.com"


def records(count: int) -> list[RecordSet]:
    out: list[RecordSet] = [RecordSet(f"ns1.{ZONE}", RecordType.A, 3600, ("127.0.0.1",))]
    for i in range(count):
        base = f"svc{i}.default.federation.svc"
        out.append(
            RecordSet(f"{base}.{ZONE}", RecordType.A, 30, (f"10.0.{i // 250}.{i % 250 + 1}", "10.9.9.9"))
        )
        if i % 2 == 0:
            out.append(RecordSet(f"{base}.{ZONE}", RecordType.AAAA, 30, (f"2001:db8::{i:x}",)))
        out.append(RecordSet(f"{base}.us-east1.{ZONE}", RecordType.CNAME, 30, (f"{base}.{ZONE}",)))
        out.append(
            RecordSet(
                f"_ingressfed.{base}.{ZONE}",
                RecordType.TXT,
                30,
                (f'"heritage=ingressfed,ingressfed/owner=bench,ingressfed/resource=service/default/svc{i}"',),
            )
        )
    return out


def knot_zone_text(recs: list[RecordSet]) -> str:
    lines = [
        f"$ORIGIN {ZONE}.",
        f"@ 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 30",
        f"@ 3600 IN NS ns1.{ZONE}.",
    ]
    for rs in recs:
        for v in rs.values:
            value = v + "." if rs.type is RecordType.CNAME else v
            lines.append(f"{rs.name}. {rs.ttl} IN {rs.type.value} {value}")
    return "\n".join(lines) + "\n"


def query_file(count: int, path: Path, seed: int = 7) -> None:
    rng = random.Random(seed)
    lines: list[str] = []
    for _ in range(20000):
        i = rng.randrange(count)
        base = f"svc{i}.default.federation.svc"
        r = rng.random()
        if r < 0.45:
            lines.append(f"{base}.{ZONE} A")
        elif r < 0.60:
            lines.append(f"{base}.{ZONE} AAAA")  # NODATA for odd i
        elif r < 0.75:
            lines.append(f"{base}.us-east1.{ZONE} A")  # CNAME chased in zone
        elif r < 0.85:
            lines.append(f"nope{i}.{ZONE} A")  # NXDOMAIN
        elif r < 0.92:
            lines.append(f"default.federation.svc.{ZONE} A")  # empty non-terminal: NODATA
        else:
            lines.append(f"_ingressfed.{base}.{ZONE} TXT")
    path.write_text("\n".join(lines) + "\n")


def wait_answering(port: int, timeout: float = 300.0) -> None:  # a loaded machine renders slowly
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = dns.query.udp(dns.message.make_query(f"ns1.{ZONE}", "A"), "127.0.0.1", port=port, timeout=0.5)
            if r.answer:
                return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {timeout}s")


def start_knot(tmp: Path, recs: list[RecordSet], workers: int) -> tuple[subprocess.Popen[bytes], int]:
    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    if not os.path.exists(knotd):
        raise SystemExit("knotd not found: apt-get install -y knot")
    kdir = tmp / "knot"
    kdir.mkdir()
    (kdir / f"{ZONE}.zone").write_text(knot_zone_text(recs))
    port = free_port()
    conf = f"""server:
    rundir: "{kdir}"
    listen: 127.0.0.1@{port}
    udp-workers: {workers}
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{kdir}"
log:
  - target: stderr
    any: warning
zone:
  - domain: {ZONE}
    storage: "{kdir}"
    file: "{ZONE}.zone"
    journal-content: none
    zonefile-sync: -1
"""
    (kdir / "knot.conf").write_text(conf)
    proc = subprocess.Popen([knotd, "-c", str(kdir / "knot.conf")], stderr=subprocess.PIPE)
    wait_answering(port)
    return proc, port


def start_embedded(
    tmp: Path, recs: list[RecordSet], workers: int, loop: str
) -> tuple[subprocess.Popen[str], list[int], int]:
    """``dns-serve --workers W``: the primary and the pids of every process it runs."""
    zone_file = tmp / "zone.json"
    save_zone_file(zone_file, zone_data_from_records(ZONE, recs))
    port = free_port()
    cmd = [sys.executable, "-m", "ingressfed.dnsserver", "--zone", ZONE, "--zone-file", str(zone_file),
           "--listen", f"127.0.0.1:{port}", "--loop", loop, "--log-level", "WARNING",
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once every worker serves the zone
    if not line.startswith("serving"):
        raise RuntimeError(f"dns-serve did not start: {line!r}")
    wait_answering(port)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return proc, [proc.pid, *map(int, children)], port


def dnsperf(port: int, queries: Path, duration: float, clients: int) -> tuple[float, int, int]:
    exe = shutil.which("dnsperf")
    if exe is None:
        raise SystemExit("dnsperf not found: apt-get install -y dnsperf")
    cmd = f"{exe} -s 127.0.0.1 -p {port} -d {queries} -l {duration} -c {clients} -T 1 -q 200 -t 2".split()
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    return qps, lost, sent


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by processes ``pids`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def stop(procs: list[subprocess.Popen[bytes]] | list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def compare(args: argparse.Namespace, recs: list[RecordSet], workers: int) -> tuple[float, float]:
    """One comparison with ``workers`` processes each: (q/s ratio, q per CPU-s ratio)."""
    with tempfile.TemporaryDirectory(prefix="ingressfed-bench-dns-") as d:
        tmp = Path(d)
        queries = tmp / "queries.txt"
        query_file(args.names, queries)
        knot, kport = start_knot(tmp, recs, workers)
        emb, emb_pids, eport = start_embedded(tmp, recs, workers, args.loop)
        print(
            f"== {workers} worker(s) each: zone {len(recs)} record sets; dnsperf -c {args.clients} "
            f"-l {args.duration}s; knot udp-workers={workers}, ingressfed --workers {workers} "
            f"(loop={args.loop}); {os.cpu_count()} CPUs shared with dnsperf and everything else running"
        )
        results: dict[str, list[tuple[float, int, int]]] = {"knot": [], "ingressfed": []}
        # Queries answered per CPU-second of the server: a fairer figure when dnsperf,
        # sharing the cores, cannot drive a server to saturation.
        per_cpu: dict[str, list[float]] = {"knot": [], "ingressfed": []}
        pids = {"knot": [knot.pid], "ingressfed": emb_pids}
        try:
            for r in range(args.rounds):
                for label, port in (("knot", kport), ("ingressfed", eport)):
                    cpu0 = cpu_seconds(pids[label])
                    qps, lost, sent = dnsperf(port, queries, args.duration, args.clients)
                    cpu = cpu_seconds(pids[label]) - cpu0
                    results[label].append((qps, lost, sent))
                    per_cpu[label].append((sent - lost) / cpu if cpu > 0 else 0.0)
                    print(
                        f"round {r + 1} {label:<10} {qps:>10.0f} q/s  lost {lost}/{sent}  "
                        f"server CPU {cpu:5.1f}s  {per_cpu[label][-1]:>8.0f} q/CPU-s",
                        flush=True,
                    )
        finally:
            stop([knot])
            stop([emb])
    k = statistics.median(q for q, _, _ in results["knot"])
    e = statistics.median(q for q, _, _ in results["ingressfed"])
    lost_k = sum(lost for _, lost, _ in results["knot"])
    lost_e = sum(lost for _, lost, _ in results["ingressfed"])
    print(f"median knot       {k:>10.0f} q/s  lost {lost_k}")
    print(f"median ingressfed {e:>10.0f} q/s  lost {lost_e}")
    kc = statistics.median(per_cpu["knot"])
    ec = statistics.median(per_cpu["ingressfed"])
    print(f"queries per server CPU-second: knot {kc:.0f}, ingressfed {ec:.0f}")
    return e / k, ec / kc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per dnsperf round (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per server, alternating (default 3)")
    ap.add_argument("--clients", type=int, default=4, help="dnsperf clients (sockets) (default 4)")
    ap.add_argument("--names", type=int, default=1000, help="services in the zone (default 1000)")
    ap.add_argument(
        "--workers",
        default="1,2",
        help="comma-separated process counts, each run as Knot udp-workers and dns-serve --workers "
        "(default 1,2)",
    )
    ap.add_argument(
        "--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="embedded event loop"
    )
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    recs = records(args.names)
    ratios = {w: compare(args, recs, w) for w in counts}
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (machine shared: numbers vary with it)")
    for w, (qps, cpu) in ratios.items():
        label = f"{w} worker{'s' if w > 1 else ''} each"
        print(f"{label}: ingressfed/knot q/s ratio {qps:.2f}, q per CPU-s ratio {cpu:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
