"""``dns.options.nameservers`` with addresses: in-zone nameservers get A/AAAA glue."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingressfed.dnsserver.index import build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_json, zone_data_to_json
from ingressfed.errors import ConfigError
from providers.embedded import EmbeddedProvider
from tests.dnsserver.client import udp, values

ZONE = "example.com"
OPTIONS = {
    "nameservers": [
        {"name": "ns1.example.com", "addresses": ["192.0.2.53", "2001:db8::53"]},
        {"name": "ns2.example.com.", "addresses": ["198.51.100.53"]},
        "ns3.example.net",
    ]
}


async def test_ns_answer_carries_in_zone_glue(tmp_path: Path) -> None:
    p = EmbeddedProvider(zone=ZONE, options={**OPTIONS, "zoneFile": str(tmp_path / "z.json")})
    async with DnsServer(build_index(p.zone_data), port=0) as srv:
        r = await udp(srv.port, ZONE, "NS")
        assert values(r.answer, "NS") == {"ns1.example.com.", "ns2.example.com.", "ns3.example.net."}
        assert values(r.additional, "A") == {"192.0.2.53", "198.51.100.53"}
        assert values(r.additional, "AAAA") == {"2001:db8::53"}
        r = await udp(srv.port, "ns1.example.com", "AAAA")
        assert values(r.answer, "AAAA") == {"2001:db8::53"} and r.answer[0].ttl == p.zone_data.soa.ttl
        r = await udp(srv.port, "ns3.example.com", "A")
        assert r.rcode() == 3  # NXDOMAIN: no glue invented for names without addresses


def test_glue_survives_the_zone_file() -> None:
    p = EmbeddedProvider(zone=ZONE, options=OPTIONS)
    again = zone_data_from_json(zone_data_to_json(p.zone_data))
    assert again.soa == p.zone_data.soa
    assert dict(again.soa.glue)["ns1.example.com"] == ("192.0.2.53", "2001:db8::53")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "ns.example.net", "addresses": ["192.0.2.1"]}, r"\[0\]\.addresses: .*outside zone"),
        ({"name": "ns1.example.com", "addresses": ["300.1.1.1"]}, r"nameservers\[0\]\.addresses: '300"),
        ({"name": "ns1.example.com", "addresses": []}, r"nameservers\[0\]\.addresses: expected"),
        ({"name": "ns1.example.com", "address": ["192.0.2.1"]}, r"nameservers\[0\]\.address: unknown"),
        ({"addresses": ["192.0.2.1"]}, r"nameservers\[0\]\.name: expected a DNS name"),
    ],
)
def test_bad_nameserver_entries_are_named(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EmbeddedProvider(zone=ZONE, options={"nameservers": [entry]})
