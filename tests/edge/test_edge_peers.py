"""Edges check each other: three real ``ingressfed proxy --edge`` subprocesses on loopback.

edge-eu's public address is a forwarder the test can stop while edge-eu itself keeps running and
reporting to the controller (its load balancer gone, its pod fine). The other two edges see it
unreachable, the quorum of its peers takes it out of DNS, ``ingressfed get edges`` says why; the
forwarder back, the edge is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from ingressfed.app import start
from ingressfed.config import load_config
from tests.edge.test_multi_edge import (
    CLUSTERS,
    SUBNETS,
    TOKEN,
    Backend,
    backends,
    controller_config,
    eventually,
    geo_a,
    start_edge,
)
from tests.fakes.geoip_db import build_city_db
from tests.fakes.ports import free_port, free_ports

__all__ = ["backends"]  # the fixture


class Forwarder:
    """A TCP listener standing for an edge's load balancer: bytes both ways to the edge's port."""

    def __init__(self, host: str, port: int, target: int) -> None:
        self.host, self.port, self.target = host, port, target
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.close()
        await self.server.wait_closed()
        self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def edge_rows(session: aiohttp.ClientSession, controller: int) -> dict[str, dict[str, object]]:
    async with session.get(
        f"http://127.0.0.1:{controller}/v1/edges", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as r:
        assert r.status == 200
        return {e["name"]: e for e in (await r.json())["edges"]}


@pytest.mark.timeout(120)
async def test_an_edge_its_peers_cannot_reach_leaves_dns_and_comes_back(
    tmp_path: Path, backends: dict[str, Backend]
) -> None:
    db = build_city_db(tmp_path)
    ports = {"dns": free_port(), "controller": free_port()}
    edge_port, eu_private = free_ports(2)
    path = controller_config(tmp_path, db=db, ports=ports, backends=backends)
    doc = yaml.safe_load(path.read_text())
    doc["status"] = {"enabled": True}  # `ingressfed get edges --controller` reads it (feed token)
    # Unreachable (reporting, peers cannot reach it) is told from Stale by fresh reports: a window
    # that a loaded machine's one-second reports keep even when one is late.
    doc["edgeHealth"]["staleAfter"] = 8
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path)
    eu_ip = CLUSTERS["eu"][3]
    balancer = Forwarder(eu_ip, edge_port, eu_private)
    await balancer.start()
    checks = ("--peer-check-interval", "1", "--peer-check-timeout", "0.5", "--peer-port", str(edge_port))
    edges: dict[str, subprocess.Popen[bytes]] = {}
    try:
        async with aiohttp.ClientSession() as session, start(config) as running:
            for c in CLUSTERS:
                port = eu_private if c == "eu" else edge_port
                edges[c] = start_edge(tmp_path, c, controller=ports["controller"], port=port, extra=checks)

            async def eu_clients_at_eu() -> bool:
                return await geo_a(ports["dns"], SUBNETS["eu"]) == {eu_ip}

            await eventually(eu_clients_at_eu, "European clients resolve to edge-eu", seconds=30)

            # Both voters have checked both their peers (an edge with no peer results yet does not vote).
            async def peers_checked() -> bool:
                logs = [(tmp_path / f"edge-{c}.log").read_text() for c in ("us", "asia")]
                return all(log.count(" reachable at ") >= 2 for log in logs)

            await eventually(peers_checked, "edge-us and edge-asia checked their peers", seconds=20)
            await asyncio.sleep(1.5)  # their next reports (sent on the change, at most 1.1 s apart)
            assert (await edge_rows(session, ports["controller"]))["edge-eu"]["status"] == "Live"

            # The load balancer goes; the edge process keeps reporting.
            await balancer.stop()

            async def eu_out() -> bool:
                got = await geo_a(ports["dns"], SUBNETS["eu"])
                return bool(got) and eu_ip not in got

            took = await eventually(eu_out, "edge-eu leaves DNS by its peers' votes", seconds=15)
            print(f"edge-eu out of DNS {took:.2f}s after its public listener stopped")  # not asserted
            rows = await edge_rows(session, ports["controller"])
            assert rows["edge-eu"]["status"] == "Unreachable"
            assert "2 of 2 peers" in str(rows["edge-eu"]["reason"])
            assert float(str(rows["edge-eu"]["lastReportSeconds"])) < 8  # still reporting: not Stale
            assert "edge-eu" not in {e.name for e in running.store.snapshot().edges if e.live}
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "ingressfed.cli", "get", "edges", "-o", "wide",
                 "--controller", f"http://127.0.0.1:{ports['controller']}",
                 "--token-file", str(tmp_path / "token")],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            eu_row = next(line for line in done.stdout.splitlines() if line.startswith("edge-eu "))
            assert "Unreachable" in eu_row.split() and "Unreachable" in eu_row.split()[-1]

            await balancer.start()
            took = await eventually(eu_clients_at_eu, "edge-eu back in DNS once reachable", seconds=15)
            print(f"edge-eu back in DNS {took:.2f}s after its public listener returned")
            assert (await edge_rows(session, ports["controller"]))["edge-eu"]["status"] == "Live"
    finally:
        if balancer.server is not None:
            await balancer.stop()
        for p in edges.values():
            if p.poll() is None:
                p.terminate()
        for c, p in edges.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.returncode not in (0, -signal.SIGTERM):
                print((tmp_path / f"edge-{c}.log").read_text())
