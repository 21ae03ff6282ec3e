"""Which cluster each part of the world goes to: the nearest-cluster shading of the map (pure).

The world is cut into cells of ``step`` degrees; each cell's centre is a sample
client location ranked by ``geo.select.rank`` exactly as the proxy ranks a real
client, so the shading shows the choice the proxy makes, healthy clusters first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from geo.distance import EARTH_RADIUS_KM
from geo.select import DISTANCE_BUCKET_KM, Candidate, rank
from ingressfed.core.health import cluster_serves
from ingressfed.model import Cluster, Location

__all__ = ["Grid", "nearest_grid"]


@dataclass(frozen=True, slots=True)
class Grid:
    step: float
    rows: int  # from the north: row 0 spans latitudes 90 .. 90 - step
    cols: int  # from the antimeridian: column 0 spans longitudes -180 .. -180 + step
    cells: tuple[str | None, ...]  # row-major cluster names; None: no healthy located cluster


def nearest_grid(clusters: Sequence[Cluster], *, step: float = 10.0) -> Grid:
    if not 0 < step <= 90 or 180 % step or 360 % step:
        raise ValueError(f"step: {step} must divide 180 and 360")
    rows, cols = int(180 // step), int(360 // step)
    located = [
        Candidate(c.name, c.location, True, c.weight)
        for c in clusters
        if c.location is not None and cluster_serves(c)
    ]
    vectors = [_unit(c.location) for c in located if c.location is not None]
    cells: list[str | None] = []
    for r in range(rows):
        lat = 90 - (r + 0.5) * step
        for k in range(cols):
            lon = -180 + (k + 0.5) * step
            cells.append(_first(Location(lat, lon), located, vectors))
    return Grid(step=step, rows=rows, cols=cols, cells=tuple(cells))


def _unit(loc: Location) -> tuple[float, float, float]:
    lat, lon = math.radians(loc.lat), math.radians(loc.lon)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def _first(
    client: Location, located: list[Candidate], vectors: list[tuple[float, float, float]]
) -> str | None:
    """``rank(client, located)[0]``, asking rank only about the clusters that can come first.

    rank compares distances in buckets of DISTANCE_BUCKET_KM, so whatever it puts first is within
    one bucket (plus rounding) of the nearest cluster; a dot product finds those cheaply, and rank
    orders them exactly as it would have ordered all of them.
    """
    if not located:
        return None
    cx, cy, cz = _unit(client)
    dots = [cx * x + cy * y + cz * z for x, y, z in vectors]
    nearest = math.acos(max(-1.0, min(1.0, max(dots)))) * EARTH_RADIUS_KM
    reach = math.cos(min(math.pi, (nearest + DISTANCE_BUCKET_KM + 1.0) / EARTH_RADIUS_KM))
    close = [c for c, d in zip(located, dots, strict=True) if d >= reach]
    return rank(client, close)[0]
