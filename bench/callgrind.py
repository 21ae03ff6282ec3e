"""Counting a server process's instructions with callgrind, for bench/proxy/callgrind.py and
bench/tls/callgrind.py: deterministic where the CPU times of a shared machine move twofold.

The server runs under ``valgrind --tool=callgrind --instr-atstart=no``; the caller warms it up,
counts its requests inside ``instrumented(pid)`` and reads the total with ``dump_total``.
``PYTHONHASHSEED=0`` keeps dict probing (and so the count) the same from run to run.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["dump_total", "instrumented", "read_answer", "require", "under_callgrind"]


def require(*tools: str) -> None:
    for tool in tools:
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(
                f"{tool} is not installed (Debian packages: valgrind, nghttp2-client, nginx-light)"
            )


def under_callgrind(out: Path, cmd: Sequence[str], *, cache_sim: bool = False) -> list[str]:
    """``cmd`` run by callgrind, counting nothing until ``instrumented``. ``cache_sim`` also
    simulates the caches and branch predictors (``events``): slower, and the same count."""
    simulate = ["--cache-sim=yes", "--branch-sim=yes"] if cache_sim else []
    return [
        "valgrind",
        "--tool=callgrind",
        *simulate,
        "--instr-atstart=no",
        "--dump-instr=no",
        f"--callgrind-out-file={out}",
        *cmd,
    ]


# What a --cache-sim count's events mean (valgrind's names), in the order they are printed.
EVENTS = {
    "Ir": "instructions",
    "I1mr": "L1 instruction-cache misses",
    "D1mr": "L1 data-cache read misses",
    "D1mw": "L1 data-cache write misses",
    "ILmr": "last-level instruction misses",
    "DLmr": "last-level data read misses",
    "Bcm": "conditional branches mispredicted",
    "Bim": "indirect branches mispredicted",
}


def events(profile: Path) -> dict[str, int]:
    """The totals of a kept callgrind profile, by event name."""
    text = profile.read_text()
    names = re.search(r"^events: (.*)$", text, re.MULTILINE)
    totals = re.search(r"^totals: (.*)$", text, re.MULTILINE)
    if names is None or totals is None:
        raise SystemExit(f"no events or totals in {profile}")
    return dict(zip(names.group(1).split(), (int(v) for v in totals.group(1).split()), strict=True))


@contextlib.contextmanager
def instrumented(pid: int) -> Iterator[None]:
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)


def dump_total(pid: int, out: Path, keep: Path | None = None) -> int:
    """Instructions counted so far by the callgrind running ``pid`` (its profile kept at ``keep``)."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    dump = Path(f"{out}.1")
    found = re.search(r"^totals: (\d+)", dump.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"no totals in {dump}")
    if keep is not None:
        dump.replace(keep)
    return int(found.group(1))


def read_answer(sock: socket.socket, body: bytes) -> None:
    """Read from ``sock`` until ``body`` (the end of the backend's answer) has arrived."""
    buf = b""
    while body not in buf:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("the proxy closed a connection mid-answer")
        buf += data
