"""``ingressfed proxy --routes FILE``: a standalone proxy process that drains on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from ingressfed.errors import ConfigError
from ingressfed.proxy.commands import load_routes_file, register, settings_from_args
from ingressfed.proxy.settings import cores_available
from tests.fakes.ports import free_port, free_ports

from .conftest import EU, BackendServer


def test_routes_file_problems_are_named(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump({"clusters": [{"region": "x"}], "routes": [{"path": "/"}]}))
    with pytest.raises(ConfigError) as info:
        load_routes_file(path)
    assert any("clusters[0]" in p for p in info.value.problems)
    assert any("routes[0]" in p for p in info.value.problems)


async def test_standalone_proxy_serves_a_routes_file_and_drains(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    eu = backends[EU.name]
    path = tmp_path / "routes.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {"name": EU.name, "region": "europe-west1", "location": {"lat": 50.4, "lon": 3.8}}
                ],
                "routes": [
                    {
                        "host": "app.example.com",
                        "backends": [{"cluster": EU.name, "host": "127.0.0.1", "port": eu.port}],
                    }
                ],
            }
        )
    )
    port, admin = free_ports(2, udp=False)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingressfed.cli",
        "proxy",
        "--routes",
        str(path),
        "--listen",
        f"127.0.0.1:{port}",
        "--admin-listen",
        f"127.0.0.1:{admin}",
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(20):
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{admin}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/x", headers={"Host": "app.example.com"}) as r:
                assert r.status == 200
                assert r.headers["X-Served-By-Cluster"] == EU.name
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_standalone_proxy_follows_a_controller_feed(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    from aiohttp import web

    from ingressfed.feed.publisher import FeedPublisher, add_feed_routes
    from ingressfed.feed.view import FeedView
    from ingressfed.model import Route

    from .conftest import US

    def view(cluster: str) -> FeedView:
        route = Route(host="app.example.com", backends=(backends[cluster].backend(),))
        return FeedView(version=0, records=(), routes=(route,), clusters=(EU, US), zone="example.com")

    publisher = FeedPublisher()
    publisher.publish(view(EU.name))
    app = web.Application()
    add_feed_routes(app, publisher, "s3cret")
    runner = web.AppRunner(app)
    await runner.setup()
    feed_port = free_port(udp=False)
    await web.TCPSite(runner, "127.0.0.1", feed_port).start()
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    port, admin = free_ports(2, udp=False)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingressfed.cli",
        "proxy",
        "--feed",
        f"http://127.0.0.1:{feed_port}",
        "--token-file",
        str(token),
        "--state-file",
        str(tmp_path / "view.json"),
        "--listen",
        f"127.0.0.1:{port}",
        "--admin-listen",
        f"127.0.0.1:{admin}",
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def served_by() -> str | None:
                try:
                    async with http.get(
                        f"http://127.0.0.1:{port}/", headers={"Host": "app.example.com"}
                    ) as r:
                        return r.headers.get("X-Served-By-Cluster") if r.status == 200 else None
                except aiohttp.ClientError:
                    return None

            async with asyncio.timeout(20):
                while await served_by() != EU.name:
                    await asyncio.sleep(0.1)
                publisher.publish(view(US.name))
                while await served_by() != US.name:
                    await asyncio.sleep(0.1)
        assert (tmp_path / "view.json").exists()  # the last view is kept for offline restarts
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        publisher.close()
        await runner.cleanup()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["proxy", *argv])


@pytest.mark.parametrize(
    ("config", "argv", "expected"),
    [
        (None, (), "cores"),  # the data plane alone: one process per usable core
        ("proxy: {}\n", (), "cores"),
        ("proxy: {workers: 3}\n", (), 3),
        ("proxy: {workers: auto}\n", (), "cores"),
        ("proxy: {workers: 3}\n", ("--workers", "1"), 1),  # the flag wins
    ],
)
def test_standalone_proxy_workers_default_to_the_usable_cores(
    tmp_path: Path, config: str | None, argv: tuple[str, ...], expected: int | str
) -> None:
    cores = cores_available(len(os.sched_getaffinity(0)), _cgroup("cpu.max"), _cgroup("memory.max"))
    options = [*argv, "--routes", str(tmp_path / "routes.yaml")]
    if config is not None:
        (tmp_path / "config.yaml").write_text("federation: {name: f, zone: example.com}\n" + config)
        options += ["--config", str(tmp_path / "config.yaml")]
    settings = settings_from_args(_args(*options))
    assert settings.workers == (cores if expected == "cores" else expected)


def _cgroup(name: str) -> str | None:
    try:
        return (Path("/sys/fs/cgroup") / name).read_text()
    except OSError:
        return None
