"""``dns-serve --workers 2``: two processes on one address (SO_REUSEPORT), one following the feed
and passing each change on; real sockets, real processes, a real feed over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import dns.exception
import pytest
import yaml

from ingressfed.config import load_config
from ingressfed.dnsserver.commands import settings_from_args
from ingressfed.dnsserver.workers import zone_after
from ingressfed.dnsserver.zone import zone_data_from_records
from ingressfed.errors import ConfigError
from ingressfed.feed.publisher import FeedPublisher
from ingressfed.feed.view import FeedView
from ingressfed.model import Change, ChangeAction, RecordSet, RecordType
from tests.dnsserver.client import tcp, udp, values
from tests.fakes.ports import free_port
from tests.feed.conftest import FeedServer, sample_view, start_server
from tests.test_run_cli import write

ZONE = "example.com"
NAME = f"web.{ZONE}"
ANSWERED = re.compile(r"DNS server for zone example\.com \(pid (\d+)\) answered (\d+) queries")


def view(address: str) -> FeedView:
    base = sample_view(1)
    return replace(base, records=(*base.records, RecordSet(NAME, RecordType.A, 30, (address,))))


@pytest.fixture
async def feed() -> AsyncIterator[FeedServer]:
    srv = await start_server(FeedPublisher(epoch="e1", initial_version=100))
    srv.publisher.publish(view("192.0.2.1"))
    yield srv
    await srv.runner.cleanup()


def _start(feed: FeedServer, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "ingressfed.cli", "dns-serve",
            "--feed", feed.url, "--zone", ZONE, "--answers", "all",
            "--listen", f"127.0.0.1:{port}", "--workers", "2",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _answer(port: int) -> set[str]:
    try:
        return values((await udp(port, NAME)).answer, "A")  # a new socket: a new source port
    except dns.exception.Timeout:
        return set()


async def _until_all(port: int, wanted: set[str], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until 40 answers in a row (each from a new source port) are ``wanted``: with one process
    still serving something else, 40 in a row would come by chance with odds about 2**-40."""
    deadline = time.monotonic() + 60
    streak = 0
    while streak < 40:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"never 40 answers in a row of {wanted}:\n{log.read_text()}"
        got = await _answer(port)
        streak = streak + 1 if got == wanted else 0
        if not streak:
            await asyncio.sleep(0.05)


async def _serving(proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90  # spawning imports the package in each process
    while "(2 processes)" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.1)


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours (not yet reaped) is dead too.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _gone(pids: set[int], text: str) -> None:
    """Every child (the worker, multiprocessing's resource tracker) exits soon, none orphaned."""
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"orphaned {[p for p in pids if _alive(p)]}: {text}"
        await asyncio.sleep(0.1)


async def test_two_workers_share_the_queries_and_every_change(feed: FeedServer, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "dns.log"
    proc = _start(feed, port, log)
    try:
        await _serving(proc, log)
        await _until_all(port, {"192.0.2.1"}, proc, log)
        feed.publisher.publish(view("192.0.2.2"))  # one changed record set: a delta to each worker
        await _until_all(port, {"192.0.2.2"}, proc, log)
        for _ in range(10):  # TCP connections are spread too, and see the same zone
            assert values((await tcp(port, NAME)).answer, "A") == {"192.0.2.2"}
        for _ in range(100):
            await _answer(port)
        workers = _children(proc.pid)
        assert sum(b"spawn_main" in _cmdline(p) for p in workers) == 1, log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    text = log.read_text()
    assert code == 0, text
    await _gone(workers, text)
    counts = {int(pid): int(n) for pid, n in ANSWERED.findall(text)}
    # Both processes answered (the kernel spread the source ports over both sockets).
    assert len(counts) == 2 and all(n > 0 for n in counts.values()), text
    assert proc.pid in counts and set(counts) - {proc.pid} <= workers, text
    assert "in place" in text  # the change was followed as a delta, not a re-render


async def test_workers_end_with_the_primary_and_a_dead_worker_ends_the_primary(
    feed: FeedServer, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "dns.log"
    proc = _start(feed, port, log)
    try:
        await _serving(proc, log)
        workers = _children(proc.pid)
        assert workers
        os.kill(proc.pid, signal.SIGKILL)  # no chance to tell anyone
        await asyncio.to_thread(proc.wait, 10)
        await _gone(workers, log.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
    # A worker that dies makes the primary exit non-zero, naming it.
    port, log = free_port(), tmp_path / "dns2.log"
    proc = _start(feed, port, log)
    try:
        await _serving(proc, log)
        # The worker, not multiprocessing's resource tracker:
        (worker,) = [p for p in _children(proc.pid) if b"spawn_main" in _cmdline(p)]
        os.kill(worker, signal.SIGKILL)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 1, log.read_text()
    assert "DNS worker process 1 exited" in log.read_text()


def test_workers_out_of_range_is_refused_naming_the_flag() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingressfed.cli",
            "dns-serve",
            "--zone",
            ZONE,
            "--feed",
            "http://x",
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and "--workers: got 0, expected 1..64" in r.stderr


def test_zone_after_equals_the_view_the_primary_built() -> None:
    old = zone_data_from_records(ZONE, view("192.0.2.1").records, serial=5)
    new = zone_data_from_records(ZONE, view("192.0.2.2").records, serial=6)
    (before,) = [r for r in old.records if r.name == NAME]
    (after,) = [r for r in new.records if r.name == NAME]
    extra = RecordSet(f"new.{ZONE}", RecordType.TXT, 30, ('"x"',))
    changes = [Change(ChangeAction.UPDATE, old=before, new=after), Change(ChangeAction.CREATE, new=extra)]
    got = zone_after(old, 6, changes)
    assert got == zone_data_from_records(ZONE, (*new.records, extra), serial=6, soa=old.soa)
    gone = zone_after(got, 7, [Change(ChangeAction.DELETE, old=extra)])
    assert gone.records == new.records and gone.serial == 7


def test_run_refuses_workers_and_dns_serve_takes_them_from_the_config(tmp_path: Path) -> None:
    cfg = write(tmp_path, dns=free_port(), ctl=free_port())
    doc = yaml.safe_load(cfg.read_text())
    doc["dnsServer"]["workers"] = 2
    cfg.write_text(yaml.safe_dump(doc))
    r = subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1 and "dnsServer.workers: 2 is for `ingressfed dns-serve` only" in r.stderr
    args = argparse.Namespace(
        config=str(cfg), zone=None, listen=None, answers=None, geoip=None, default_order=None,
        trust_ecs_from=None, reuse_port=False, tcp_idle_timeout=10.0, workers=None,
    )  # fmt: skip
    settings = settings_from_args(args)
    assert settings.workers == 2 and settings.reuse_port
    doc["dnsServer"]["workers"] = 65
    cfg.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"dnsServer\.workers"):
        load_config(cfg)
