"""Great-circle distance between two locations (pure)."""

from __future__ import annotations

import math

from ingressfed.model import Location

__all__ = ["EARTH_RADIUS_KM", "great_circle_km"]

# Mean Earth radius (IUGG); the spherical model is off by at most ~0.5 %, far
# below the precision of city-level GeoIP coordinates.
EARTH_RADIUS_KM = 6371.0088


def great_circle_km(a: Location, b: Location) -> float:
    """Haversine distance in kilometres."""
    lat1 = math.radians(a.lat)
    lat2 = math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    # min() guards against rounding pushing h a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))
