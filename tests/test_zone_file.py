"""``dnsServer.zoneFile`` is honoured or refused, never silently ignored (issue 13, finding 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingressfed.app import start
from ingressfed.config import load_config, parse_config
from ingressfed.errors import ConfigError
from tests.fakes.ports import free_port
from tests.kube.conftest import eventually

G = "web.default.federation.svc.example.com"


def _config(
    tmp: Path, *, provider: str, dns_server: dict[str, Any], options: dict[str, Any] | None = None
) -> Path:
    (tmp / "objects.yaml").write_text(
        yaml.safe_dump(
            {
                "services": [
                    {
                        "cluster": "us",
                        "namespace": "default",
                        "name": "web",
                        "readyEndpoints": 1,
                        "addresses": ["192.0.2.10"],
                    }
                ]
            }
        )
    )
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "dns": {"provider": provider, "options": options or {}},
        "clusters": [{"name": "us", "region": "us-east1", "zone": "us-east1-b"}],
        "source": {"kind": "static", "file": "objects.yaml"},
        "proxy": {"enabled": False},
        "dnsServer": {"listen": f"127.0.0.1:{free_port()}", "answers": "all", **dns_server},
        "controller": {"listen": f"127.0.0.1:{free_port()}", "debounce": 0.05},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _names(path: Path) -> set[str]:
    if not path.exists():
        return set()
    doc = json.loads(path.read_text())
    return {r["name"] for r in doc.get("records", [])}


async def test_embedded_zone_persists_at_dnsserver_zonefile(tmp_path: Path) -> None:
    zone = tmp_path / "state" / "zone.json"
    config = load_config(_config(tmp_path, provider="embedded", dns_server={"zoneFile": str(zone)}))
    async with start(config):
        await eventually(lambda: G in _names(zone), what="the embedded zone written to dnsServer.zoneFile")


async def test_zone_served_for_another_provider_persists_at_dnsserver_zonefile(tmp_path: Path) -> None:
    zone = tmp_path / "served.json"
    config = load_config(_config(tmp_path, provider="inmemory", dns_server={"zoneFile": str(zone)}))
    async with start(config):
        await eventually(lambda: G in _names(zone), what="the served zone written to dnsServer.zoneFile")


@pytest.mark.parametrize(
    ("dns_server", "options", "message"),
    [
        (
            {"enabled": False, "zoneFile": "z.json"},
            {},
            "dnsServer.zoneFile: set, but dnsServer.enabled is false",
        ),
        (
            {"zoneFile": "a.json"},
            {"zoneFile": "b.json"},
            "dnsServer.zoneFile: 'a.json' differs from dns.options.zoneFile 'b.json'",
        ),
    ],
)
def test_a_zone_file_that_would_be_ignored_is_refused(
    dns_server: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "dns": {"provider": "embedded", "options": options},
        "dnsServer": dns_server,
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    assert any(p.startswith(message) for p in exc.value.problems), exc.value.problems
