"""A small MaxMind-format City database built with mmdb-writer, for tests.

Networks (documentation/test ranges are fine: the reader does not care):

=====================  =======  ==========================================
network                country  location
=====================  =======  ==========================================
81.2.69.0/24           GB       London (51.51, -0.13)
193.0.0.0/21           NL       Amsterdam (52.37, 4.90)
8.8.8.0/24             US       Mountain View (37.42, -122.08)
3.0.0.0/15             US       Ashburn (39.04, -77.49)
202.12.27.0/24         JP       Tokyo (35.68, 139.69)
2001:67c:2e8::/48      NL       Amsterdam (52.37, 4.90)
2600:1f18::/32         US       Ashburn (39.04, -77.49)
2400:cb00::/32         JP       Tokyo (35.68, 139.69)
198.51.100.0/24        DE       country only, no coordinates
192.0.2.0/24           --       continent EU only, no country, no coordinates
=====================  =======  ==========================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

CONTINENT_NAMES = {"EU": "Europe", "NA": "North America", "AS": "Asia"}

# network -> (continent, country or None, (lat, lon) or None, city or None)
NETWORKS: dict[str, tuple[str, str | None, tuple[float, float] | None, str | None]] = {
    "81.2.69.0/24": ("EU", "GB", (51.51, -0.13), "London"),
    "193.0.0.0/21": ("EU", "NL", (52.37, 4.90), "Amsterdam"),
    "8.8.8.0/24": ("NA", "US", (37.42, -122.08), "Mountain View"),
    "3.0.0.0/15": ("NA", "US", (39.04, -77.49), "Ashburn"),
    "202.12.27.0/24": ("AS", "JP", (35.68, 139.69), "Tokyo"),
    "2001:67c:2e8::/48": ("EU", "NL", (52.37, 4.90), "Amsterdam"),
    "2600:1f18::/32": ("NA", "US", (39.04, -77.49), "Ashburn"),
    "2400:cb00::/32": ("AS", "JP", (35.68, 139.69), "Tokyo"),
    "198.51.100.0/24": ("EU", "DE", None, None),
    "192.0.2.0/24": ("EU", None, None, None),
}


def _record(continent: str, country: str | None, coords: tuple[float, float] | None, city: str | None) -> Any:
    rec: dict[str, Any] = {"continent": {"code": continent, "names": {"en": CONTINENT_NAMES[continent]}}}
    if country is not None:
        rec["country"] = {"iso_code": country, "names": {"en": country}}
    if coords is not None:
        rec["location"] = {"latitude": coords[0], "longitude": coords[1], "accuracy_radius": 20}
    if city is not None:
        rec["city"] = {"names": {"en": city}}
    return rec


def build_city_db(
    directory: Path, *, name: str = "test-city.mmdb", database_type: str = "GeoLite2-City"
) -> Path:
    """Write the test database into ``directory`` and return its path."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description="ingressfed test City database",
    )
    for network, (continent, country, coords, city) in NETWORKS.items():
        writer.insert_network(IPSet([network]), _record(continent, country, coords, city))
    path = directory / name
    writer.to_db_file(str(path))
    return path
