"""CPU time of benchmarked servers, read from Linux /proc.

Throughput ratios on a shared 2-core machine move with whatever else runs; the CPU time a server
spends per request or query moves much less, so the benchmarks print both.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "process_tree"]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (nginx's workers, the proxy's worker processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            found += process_tree(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by processes ``pids`` (ended ones count as 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
