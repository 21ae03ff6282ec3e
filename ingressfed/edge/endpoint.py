"""The controller's edge endpoints on its listener.

``POST /v1/edges/{name}/health`` takes one health report from edge ``name``:

- no ``Authorization: Bearer`` header, or a token valid for no edge: ``401``;
- a token valid for some edge but not for ``name``, or an edge not declared: ``403``;
- a body over ``edgeHealth.maxReportBytes``: ``413``; sooner than
  ``edgeHealth.minReportInterval`` after the edge's last accepted report: ``429``
  with ``Retry-After``; not a valid report, or a report naming another edge: ``400``.

In every refused case nothing is applied. An accepted report answers ``204``.

``GET /v1/edges`` lists the edges (``ingressfed get edges``), with the feed's token.
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ingressfed.edge.registry import EdgeRegistry, EdgeRow
from ingressfed.edge.report import ReportFormatError, decode_report

__all__ = ["EDGES_PATH", "REPORT_PATH", "add_edge_routes", "row_to_wire"]

log = logging.getLogger(__name__)

EDGES_PATH = "/v1/edges"
REPORT_PATH = "/v1/edges/{name}/health"


def _error(status: int, error: str, detail: str, **headers: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers or None)


def _unauthorized(detail: str) -> web.Response:
    return _error(401, "unauthorized", detail, **{"WWW-Authenticate": 'Bearer realm="ingressfed-edges"'})


def _bearer(request: web.Request) -> bytes | None:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    return presented.strip().encode()


def _matches(presented: bytes, token: str | None) -> bool:
    # compare_digest takes time independent of where the strings differ.
    return token is not None and hmac.compare_digest(presented, token.encode())


def row_to_wire(row: EdgeRow, *, now: float) -> dict[str, Any]:
    def ago(t: float | None) -> float | None:
        return None if t is None else round(now - t, 3)

    return {
        "name": row.name,
        "cluster": row.cluster,
        "region": row.region,
        "addresses": list(row.addresses),
        "status": row.status,
        "ageSeconds": ago(row.first_seen),
        "lastReportSeconds": ago(row.last_seen),
        "reports": row.reports,
        "backendsUp": row.backends_up,
        "backends": row.backends,
        "published": row.published,
        "reason": row.reason,
    }


def add_edge_routes(
    app: web.Application,
    registry: EdgeRegistry,
    *,
    read_token: str | None,
    max_bytes: int,
    min_interval: float,
    clock: Callable[[], float],
) -> None:
    async def report(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        presented = _bearer(request)
        if presented is None:
            return _unauthorized("an edge health report needs 'Authorization: Bearer <token>'")
        tokens = [i.token for i in registry.identities()]
        if not any(_matches(presented, t) for t in tokens):
            return _unauthorized("the token is not valid for any edge")
        identity = registry.identity(name)
        if identity is None:
            return _error(403, "forbidden", f"edge {name!r} is not declared in the controller's edges")
        if not _matches(presented, identity.token):
            return _error(403, "forbidden", f"the token is not the one of edge {name!r}")
        if request.content_length is not None and request.content_length > max_bytes:
            return _error(
                413, "too large", f"a report is limited to {max_bytes} bytes (edgeHealth.maxReportBytes)"
            )
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > max_bytes:
                return _error(
                    413, "too large", f"a report is limited to {max_bytes} bytes (edgeHealth.maxReportBytes)"
                )
        now = clock()
        last = registry.last_seen(name)
        if last is not None and now - last < min_interval:
            wait = max(1, math.ceil(min_interval - (now - last)))
            return _error(
                429,
                "too many requests",
                f"edge {name!r} reports at most every {min_interval:g}s",
                **{"Retry-After": str(wait)},
            )
        try:
            parsed = decode_report(bytes(body))
        except ReportFormatError as exc:
            log.warning("edge %s: report refused: %s", name, exc, extra={"edge": name})
            return _error(400, "bad request", str(exc))
        if parsed.edge != name:
            return _error(
                400, "bad request", f"report.edge: {parsed.edge!r} does not match the path's {name!r}"
            )
        registry.accept(parsed, now=now)
        return web.Response(status=204)

    async def listing(request: web.Request) -> web.Response:
        if read_token is not None:
            presented = _bearer(request)
            if presented is None:
                return _unauthorized("listing edges needs 'Authorization: Bearer <token>'")
            if not _matches(presented, read_token):
                return _unauthorized("the token is not valid for this controller")
        now = clock()
        return web.json_response({"edges": [row_to_wire(r, now=now) for r in registry.rows(now=now)]})

    app.router.add_post(REPORT_PATH, report)
    app.router.add_get(EDGES_PATH, listing)
