"""Zone data: JSON round trip, every problem named at once, serial arithmetic."""

from __future__ import annotations

import pytest

from ingressfed.dnsserver.zone import (
    SoaSettings,
    next_serial,
    zone_data_from_json,
    zone_data_from_records,
    zone_data_to_json,
)
from ingressfed.errors import ConfigError
from ingressfed.model import Location, RecordSet, RecordType, Routing


def test_round_trip_keeps_routing_and_soa() -> None:
    soa = SoaSettings(
        nameservers=("ns1.example.com", "ns2.example.net"), hostmaster="h.example.com", minimum=5
    )
    records = [
        RecordSet("a.example.com", RecordType.A, 30, ("192.0.2.1",)),
        RecordSet(
            "g.example.com",
            RecordType.AAAA,
            60,
            ("2001:db8::1",),
            "c1",
            Routing("c1", "europe-west1", Location(50.4, 3.8), weight=7, continent="EU", country="BE"),
        ),
    ]
    data = zone_data_from_records("Example.COM.", records, serial=42, soa=soa)
    assert data.zone == "example.com"
    assert zone_data_from_json(zone_data_to_json(data)) == data


def test_all_problems_listed_with_their_paths() -> None:
    doc = {
        "version": 1,
        "zone": "example.com",
        "serial": -1,
        "soa": {"nameservers": [], "hostmaster": "h.example.com"},
        "records": [
            {"name": "a.example.com", "type": "MX", "ttl": 30, "values": ["x"]},
            {"name": "b.example.com", "type": "A", "ttl": 30, "values": []},
            {
                "name": "c.example.com",
                "type": "A",
                "ttl": 30,
                "values": ["192.0.2.1"],
                "routing": {"weight": 0},
            },
        ],
    }
    with pytest.raises(ConfigError) as err:
        zone_data_from_json(doc, source="zone.json")
    problems = "\n".join(err.value.problems)
    for path in (
        "zone.json.serial",
        "zone.json.soa.nameservers",
        "zone.json.records[0].type",
        "zone.json.records[1].values",
        "zone.json.records[2].routing.cluster",
        "zone.json.records[2].routing.weight",
    ):
        assert path in problems


def test_serial_increments_and_wraps_past_zero() -> None:
    assert next_serial(1) == 2
    assert next_serial(0xFFFFFFFF) == 1
