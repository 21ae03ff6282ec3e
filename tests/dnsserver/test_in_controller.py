"""The DNS server inside `ingressfed run` follows the embedded provider's changes in place."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype
import yaml

from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import build_index
from tests.fakes.ports import free_port

G = "web.default.federation.svc.example.com"


def _objects(path: Path, addresses: list[str]) -> None:
    services = [
        {"cluster": "us", "namespace": "default", "name": "web", "readyEndpoints": 1, "addresses": addresses},
        {
            "cluster": "us",
            "namespace": "default",
            "name": "api",
            "readyEndpoints": 1,
            "addresses": ["192.0.2.20"],
        },
    ]
    path.write_text(yaml.safe_dump({"services": services}))


def _config(tmp: Path) -> Path:
    _objects(tmp / "objects.yaml", ["192.0.2.10"])
    doc: dict[str, Any] = {
        "federation": {"name": "federation", "zone": "example.com"},
        "dns": {"provider": "embedded", "options": {}},
        "clusters": [{"name": "us", "region": "us-east1", "zone": "us-east1-b"}],
        "source": {"kind": "static", "file": "objects.yaml"},
        "proxy": {"enabled": False},
        "dnsServer": {"listen": f"127.0.0.1:{free_port()}", "answers": "all"},
        "controller": {"listen": f"127.0.0.1:{free_port()}", "debounce": 0.05},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def _a(port: int, name: str) -> set[str]:
    r = await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


async def test_the_controllers_dns_server_follows_provider_changes_in_place(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    async with start(config) as running:
        srv = running.dns_server
        port = srv.port
        got: set[str] = set()

        async def serves(want: set[str]) -> bool:
            nonlocal got
            got = await _a(port, G)
            return got == want

        for _ in range(200):
            if await serves({"192.0.2.10"}):
                break
            await asyncio.sleep(0.05)
        assert got == {"192.0.2.10"}
        first = srv.index
        serial = first.serial
        _objects(tmp_path / "objects.yaml", ["192.0.2.11", "192.0.2.12"])
        for _ in range(400):
            if await serves({"192.0.2.11", "192.0.2.12"}):
                break
            await asyncio.sleep(0.02)
        assert got == {"192.0.2.11", "192.0.2.12"}
        # The same index object, changed in place to a later serial: no full render happened.
        assert srv.index is first
        assert first.serial != serial
        # ... and it answers byte for byte like an index rendered afresh from the provider's zone.
        fresh = build_index(srv.index.data, answers="all")
        for name in (G, "api.default.federation.svc.example.com", "nothere.example.com", "example.com"):
            for qtype in ("A", "AAAA", "TXT", "SOA", "NS"):
                q = dns.message.make_query(name, qtype)
                q.id = 7
                wire = q.to_wire()
                assert answer(srv.index, wire, "127.0.0.1") == answer(fresh, wire, "127.0.0.1"), (name, qtype)
