"""A real controller (``ingressfed.app.start``) on loopback with the read API on, from a static source."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingressfed.app import Running, start
from ingressfed.config import load_config
from tests.fakes.ports import free_port

CLUSTERS = [
    {"name": "cluster-us-east1-b", "region": "us-east1", "zone": "us-east1-b"},
    {"name": "cluster-europe-west1-b", "region": "europe-west1", "zone": "europe-west1-b"},
]


def write_config(tmp: Path, *, token: str | None = None, status: bool = True) -> Path:
    objects = {
        "services": [
            {
                "cluster": c["name"],
                "namespace": "default",
                "name": "web",
                "readyEndpoints": 1,
                "addresses": [f"192.0.2.{i + 10}"],
            }
            for i, c in enumerate(CLUSTERS)
        ],
        "ingresses": [
            {
                "cluster": c["name"],
                "namespace": "default",
                "name": "web",
                "rules": [{"host": "web.example.com", "path": "/", "pathType": "Prefix"}],
                "addresses": [f"192.0.2.{i + 10}"],
                "port": 8080,
            }
            for i, c in enumerate(CLUSTERS)
        ],
    }
    (tmp / "objects.yaml").write_text(yaml.safe_dump(objects))
    cfg: dict[str, Any] = {
        "federation": {"name": "federation", "zone": "example.com", "globalAddresses": ["192.0.2.1"]},
        "dns": {"provider": "inmemory"},
        "clusters": CLUSTERS,
        "source": {"kind": "static", "file": str(tmp / "objects.yaml")},
        "proxy": {"enabled": False},
        "dnsServer": {"enabled": False},
        "controller": {"listen": f"127.0.0.1:{free_port()}", "debounce": 0.01},
        "status": {"enabled": status},
    }
    if token is not None:
        (tmp / "token").write_text(token + "\n")
        cfg["status"]["tokenFile"] = str(tmp / "token")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def started(path: Path) -> AsyncIterator[Running]:
    async with start(load_config(path)) as running:
        for _ in range(200):
            if running.controller.reconciles:
                break
            await asyncio.sleep(0.01)
        yield running


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Running]:
    async for running in started(write_config(tmp_path)):
        yield running


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Running]:
    async for running in started(write_config(tmp_path, token="s3cret-token")):
        yield running
