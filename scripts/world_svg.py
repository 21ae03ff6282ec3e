"""Regenerate ingressfed/status/assets/world.svg, the status page's land outline (run by hand, rarely).

Input: Natural Earth's 1:110m land polygons (public domain) as TopoJSON, e.g. ``land-110m.json`` from
the ``world-atlas`` npm package (``npm pack world-atlas@2``). Output: one SVG path in the
equirectangular projection the page draws on: x = longitude + 180, y = 90 - latitude, so the
viewBox is 0 0 360 180 and a cluster at (lat, lon) sits at (lon + 180, 90 - lat).

    python scripts/world_svg.py land-110m.json > ingressfed/status/assets/world.svg
"""

from __future__ import annotations

import json
import sys
from typing import Any

Point = tuple[float, float]


def decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    """TopoJSON arcs are delta-encoded quantized positions; undo both."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(indices: list[int], arcs: list[list[Point]]) -> list[Point]:
    out: list[Point] = []
    for i in indices:
        # A negative index ~i means arc i walked backwards.
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        out.extend(points if not out else points[1:])
    return out


def unwrap(points: list[Point]) -> list[list[Point]]:
    """A ring that crosses the antimeridian (Russia, Fiji) as copies that each stay continuous.

    Longitudes are unwrapped so no step exceeds 180 degrees; a ring then reaching past ±180 is
    also drawn shifted by 360 (the viewBox clips both). A ring that winds around a pole
    (Antarctica) already runs along the map's edge and is kept as it is.
    """
    out: list[Point] = []
    for lon, lat in points:
        if out:
            while lon - out[-1][0] > 180:
                lon -= 360
            while lon - out[-1][0] < -180:
                lon += 360
        out.append((lon, lat))
    if not out or abs(out[-1][0] - out[0][0]) > 180:
        return [points]
    copies = [out]
    if min(p[0] for p in out) < -180:
        copies.append([(lon + 360, lat) for lon, lat in out])
    if max(p[0] for p in out) > 180:
        copies.append([(lon - 360, lat) for lon, lat in out])
    return copies


def path_of(rings: list[list[Point]]) -> str:
    parts = []
    for points in (copy for r in rings for copy in unwrap(r)):
        cells: list[str] = []
        for lon, lat in points:
            cell = f"{lon + 180:.1f} {90 - lat:.1f}"
            if not cells or cells[-1] != cell:
                cells.append(cell)
        if len(cells) >= 3:
            parts.append("M" + "L".join(cells) + "Z")
    return "".join(parts)


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        topology = json.load(f)
    arcs = decode_arcs(topology)
    rings: list[list[Point]] = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            rings.extend(ring(r, arcs) for r in polygon)
    sys.stdout.write(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 360 180">\n'
        "<!-- Land outline from Natural Earth 1:110m (public domain, naturalearthdata.com), via the\n"
        "     world-atlas package's TopoJSON; regenerate with scripts/world_svg.py. -->\n"
        '<path fill="#d9dee5" stroke="#b6bfca" stroke-width="0.15" fill-rule="evenodd"'
        f' d="{path_of(rings)}"/>\n'
        "</svg>\n"
    )


if __name__ == "__main__":
    main(sys.argv[1])
