"""Approximate centroids of countries and continents (pure data).

Used when a GeoIP record names a country or continent but carries no
coordinates. Countries not listed fall back to their continent.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from ingressfed.model import Location

__all__ = ["CONTINENT_CENTROIDS", "COUNTRY_CENTROIDS", "centroid"]

_L = Location

# MaxMind continent codes.
CONTINENT_CENTROIDS: Final = MappingProxyType(
    {
        "AF": _L(2.0, 21.0),
        "AN": _L(-82.9, 135.0),
        "AS": _L(29.8, 89.3),
        "EU": _L(48.7, 9.1),
        "NA": _L(46.1, -100.5),
        "OC": _L(-18.3, 138.5),
        "SA": _L(-14.6, -57.7),
    }
)

# ISO 3166-1 alpha-2 -> rough geographic centre (one decimal is plenty).
COUNTRY_CENTROIDS: Final = MappingProxyType(
    {
        "AE": _L(23.4, 53.8),
        "AR": _L(-38.4, -63.6),
        "AT": _L(47.5, 14.6),
        "AU": _L(-25.3, 133.8),
        "BD": _L(23.7, 90.4),
        "BE": _L(50.5, 4.5),
        "BG": _L(42.7, 25.5),
        "BR": _L(-14.2, -51.9),
        "CA": _L(56.1, -106.3),
        "CH": _L(46.8, 8.2),
        "CL": _L(-35.7, -71.5),
        "CN": _L(35.9, 104.2),
        "CO": _L(4.6, -74.3),
        "CZ": _L(49.8, 15.5),
        "DE": _L(51.2, 10.5),
        "DK": _L(56.3, 9.5),
        "DZ": _L(28.0, 1.7),
        "EE": _L(58.6, 25.0),
        "EG": _L(26.8, 30.8),
        "ES": _L(40.5, -3.7),
        "FI": _L(61.9, 25.7),
        "FR": _L(46.2, 2.2),
        "GB": _L(55.4, -3.4),
        "GR": _L(39.1, 21.8),
        "HK": _L(22.4, 114.1),
        "HR": _L(45.1, 15.2),
        "HU": _L(47.2, 19.5),
        "ID": _L(-0.8, 113.9),
        "IE": _L(53.4, -8.2),
        "IL": _L(31.0, 34.9),
        "IN": _L(20.6, 79.0),
        "IR": _L(32.4, 53.7),
        "IS": _L(65.0, -19.0),
        "IT": _L(41.9, 12.6),
        "JP": _L(36.2, 138.3),
        "KE": _L(-0.0, 37.9),
        "KR": _L(35.9, 127.8),
        "KZ": _L(48.0, 66.9),
        "LT": _L(55.2, 23.9),
        "LU": _L(49.8, 6.1),
        "LV": _L(56.9, 24.6),
        "MA": _L(31.8, -7.1),
        "MX": _L(23.6, -102.6),
        "MY": _L(4.2, 101.98),
        "NG": _L(9.1, 8.7),
        "NL": _L(52.1, 5.3),
        "NO": _L(60.5, 8.5),
        "NZ": _L(-40.9, 174.9),
        "PE": _L(-9.2, -75.0),
        "PH": _L(12.9, 121.8),
        "PK": _L(30.4, 69.3),
        "PL": _L(51.9, 19.1),
        "PT": _L(39.4, -8.2),
        "QA": _L(25.4, 51.2),
        "RO": _L(45.9, 25.0),
        "RS": _L(44.0, 21.0),
        "RU": _L(61.5, 105.3),
        "SA": _L(23.9, 45.1),
        "SE": _L(60.1, 18.6),
        "SG": _L(1.35, 103.8),
        "SK": _L(48.7, 19.7),
        "TH": _L(15.9, 101.0),
        "TR": _L(39.0, 35.2),
        "TW": _L(23.7, 121.0),
        "UA": _L(48.4, 31.2),
        "US": _L(37.1, -95.7),
        "VN": _L(14.1, 108.3),
        "ZA": _L(-30.6, 22.9),
    }
)


def centroid(country: str | None, continent: str | None) -> Location | None:
    """The country's centroid, else the continent's, else None."""
    if country is not None:
        found = COUNTRY_CENTROIDS.get(country.upper())
        if found is not None:
            return found
    if continent is not None:
        return CONTINENT_CENTROIDS.get(continent.upper())
    return None
