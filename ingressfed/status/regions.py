"""Which cluster each part of the world goes to: the nearest-cluster shading of the map (pure).

The world is cut into cells of ``step`` degrees; each cell's centre is a sample
client location ranked by ``geo.select.rank`` exactly as the proxy ranks a real
client, so the shading shows the choice the proxy makes, healthy clusters first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from geo.select import Candidate, rank
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
    cells: list[str | None] = []
    for r in range(rows):
        lat = 90 - (r + 0.5) * step
        for k in range(cols):
            lon = -180 + (k + 0.5) * step
            order = rank(Location(lat, lon), located) if located else []
            cells.append(order[0] if order else None)
    return Grid(step=step, rows=rows, cols=cols, cells=tuple(cells))
