from __future__ import annotations

import os
from pathlib import Path

import pytest

from geo.centroids import CONTINENT_CENTROIDS, COUNTRY_CENTROIDS
from geo.demo_db import demo_database, demo_database_path
from geo.distance import great_circle_km
from geo.lookup import ClientLocation, GeoLookup
from ingressfed.errors import ConfigError
from ingressfed.model import Location
from tests.fakes.geoip_db import build_city_db


@pytest.mark.parametrize(
    ("ip", "country", "continent", "location", "prefix_len"),
    [
        ("81.2.69.142", "GB", "EU", Location(51.51, -0.13), 24),
        ("193.0.6.139", "NL", "EU", Location(52.37, 4.90), 21),
        ("8.8.8.8", "US", "NA", Location(37.42, -122.08), 24),
        ("3.1.200.1", "US", "NA", Location(39.04, -77.49), 15),
        ("202.12.27.33", "JP", "AS", Location(35.68, 139.69), 24),
        ("2001:67c:2e8:22::c100:68b", "NL", "EU", Location(52.37, 4.90), 48),
        ("2600:1f18:1234::1", "US", "NA", Location(39.04, -77.49), 32),
        ("2400:cb00::1", "JP", "AS", Location(35.68, 139.69), 32),
        ("::ffff:81.2.69.1", "GB", "EU", Location(51.51, -0.13), 24),
    ],
)
def test_locate(
    city_db: Path, ip: str, country: str, continent: str, location: Location, prefix_len: int
) -> None:
    with GeoLookup(city_db) as lookup:
        assert lookup.locate(ip) == ClientLocation(location, country, continent, prefix_len)


def test_country_and_continent_centroid_when_no_coordinates(city_db: Path) -> None:
    with GeoLookup(city_db) as lookup:
        de = lookup.locate("198.51.100.7")
        eu = lookup.locate("192.0.2.1")
    assert de == ClientLocation(COUNTRY_CENTROIDS["DE"], "DE", "EU", 24)
    assert eu == ClientLocation(CONTINENT_CENTROIDS["EU"], None, "EU", 24)


@pytest.mark.parametrize("ip", ["10.1.2.3", "127.0.0.1", "fe80::1", "2a00::1", "not-an-ip", "", "1.2.3.4.5"])
def test_unknown_is_none(city_db: Path, ip: str) -> None:
    with GeoLookup(city_db) as lookup:
        assert lookup.locate(ip) is None
        assert lookup.locate(ip) is None


def test_cache_serves_whole_network_and_matches_uncached(city_db: Path) -> None:
    cached = GeoLookup(city_db)
    uncached = GeoLookup(city_db, cache_size=0)
    try:
        first = cached.locate("3.0.0.1")
        assert (cached.hits, cached.misses) == (0, 1)
        # another address in the same /15 is answered from the cache
        assert cached.locate("3.1.255.254") == first
        assert (cached.hits, cached.misses) == (1, 1)
        # a more specific network elsewhere does not shadow it
        cached.locate("81.2.69.5")
        assert cached.locate("3.0.128.9") == first
        assert cached.hits == 2
        for ip in ["3.0.0.1", "81.2.69.5", "10.0.0.1", "10.0.0.2", "2400:cb00::5", "2400:cb00:1::5"]:
            assert cached.locate(ip) == uncached.locate(ip)
        assert uncached.hits == 0
    finally:
        cached.close()
        uncached.close()


def test_cache_is_bounded(city_db: Path) -> None:
    with GeoLookup(city_db, cache_size=2) as lookup:
        for ip in ["81.2.69.1", "193.0.0.1", "8.8.8.8", "202.12.27.1"]:
            lookup.locate(ip)
        assert len(lookup._cache) == 2
        # evicted networks are looked up again and still answer correctly
        loc = lookup.locate("81.2.69.1")
        assert loc is not None and loc.country == "GB"
        assert lookup.misses == 5


def test_missing_or_wrong_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        GeoLookup(tmp_path / "nope.mmdb")
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="not a MaxMind DB"):
        GeoLookup(junk)
    asn = build_city_db(tmp_path, name="asn.mmdb", database_type="GeoLite2-ASN")
    with pytest.raises(ConfigError, match="City database is needed"):
        GeoLookup(asn)


def test_demo_database_from_installed_package() -> None:
    path = demo_database_path()
    if path is None:
        message = "no demo database package installed (pip install 'ingressfed[demo]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    found = demo_database()
    assert found is not None and found[0] == path and found[1]
    near = {
        "193.0.6.139": Location(52.37, 4.90),  # RIPE NCC, Amsterdam
        "202.12.27.33": Location(35.68, 139.69),  # WIDE, Tokyo
        "2001:67c:2e8:22::c100:68b": Location(52.37, 4.90),  # RIPE NCC, IPv6
    }
    with GeoLookup(path) as lookup:
        for ip, where in near.items():
            loc = lookup.locate(ip)
            assert loc is not None and loc.location is not None, ip
            assert great_circle_km(loc.location, where) < 150, (ip, loc)
        us = lookup.locate("8.8.8.8")
        assert us is not None and us.country == "US" and us.continent == "NA"
