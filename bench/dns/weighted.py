"""What a weighted answer costs: CPU per ``answer()`` for a plain name, a geo name (two
clusters, answered by location) and a weighted name (two shares, drawn per query).

    .venv/bin/python bench/dns/weighted.py [--queries 200000]

In-process (no sockets), without the response memo (plain answers get it in the server, so
over the wire a plain name is cheaper still); the ratios are what to read: geo and weighted
against plain, measured in the same run. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import dns.message

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import Locator, build_index
from ingressfed.dnsserver.zone import zone_data_from_records
from ingressfed.model import Location, RecordSet, RecordType, Routing

ZONE = "example.com"


def _records() -> list[RecordSet]:
    a = RecordType.A
    us, eu = Location(33.0, -80.0), Location(50.0, 3.0)
    return [
        RecordSet(f"plain.{ZONE}", a, 30, ("10.0.0.1", "10.0.0.2")),
        RecordSet(f"geo.{ZONE}", a, 30, ("10.0.0.1",), "us", Routing("us", "us-east1", us)),
        RecordSet(f"geo.{ZONE}", a, 30, ("10.0.0.2",), "eu", Routing("eu", "europe-west1", eu)),
        RecordSet(
            f"weighted.{ZONE}", a, 30, ("10.0.0.1",), "us", Routing("us", "", weight=90, weighted=True)
        ),
        RecordSet(
            f"weighted.{ZONE}", a, 30, ("10.0.0.2",), "eu", Routing("eu", "", weight=10, weighted=True)
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200_000)
    n = parser.parse_args().queries
    index = build_index(
        zone_data_from_records(ZONE, _records(), serial=1), locator=Locator(lambda ip: Location(40.7, -74.0))
    )
    cost: dict[str, float] = {}
    for name in ("plain", "geo", "weighted"):
        query = dns.message.make_query(f"{name}.{ZONE}", "A").to_wire()
        for _ in range(1000):
            answer(index, query, "127.0.0.1")
        start = time.process_time()
        for _ in range(n):
            answer(index, query, "127.0.0.1")
        cost[name] = (time.process_time() - start) / n * 1e6
    for name, us in cost.items():
        print(f"{name:9s} {us:6.2f} us CPU per answer()  {us / cost['plain']:.2f}x plain")


if __name__ == "__main__":
    main()
