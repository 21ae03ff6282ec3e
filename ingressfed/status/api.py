"""The read API and the status page over HTTP, added to an aiohttp app (controller or proxy admin).

    GET /status                      the page (HTML, with its script, style and map from the package)
    GET /v1/status?after=V&timeout=S the page's document; long-poll: answers at once when the
                                     status version is past V, else within S seconds (rates move)
    GET /v1/status/where?ip=&host=   where a client at that address would go
    GET /v1/status/<resource>        {"resource", "version", "items"} for clusters, routes, records,
                                     events and whatever other areas registered (edges, ...)

With a token configured every path needs it, as ``Authorization: Bearer <token>``
(the CLI) or HTTP Basic with the token as password (a browser asks for it
once); anything else gets ``401``. The page holds no data and no secret: its
script reads the API with the browser's credentials, and a Content-Security-
Policy allows only the package's own script, so a name that slipped past the
page's escaping still could not run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import importlib.resources
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from ingressfed.status.document import overview, resource_items, resource_names
from ingressfed.status.state import StatusState, WhereError

__all__ = ["PAGE_PATH", "STATUS_PATH", "add_status_routes", "authorized"]

log = logging.getLogger(__name__)

PAGE_PATH = "/status"
STATUS_PATH = "/v1/status"
MAX_POLL_TIMEOUT = 60.0
DEFAULT_POLL_TIMEOUT = 25.0

_ASSETS = {
    "index.html": "text/html",
    "status.js": "text/javascript",
    "status.css": "text/css",
    "world.svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorized(header: str, token: str) -> bool:
    """``Bearer <token>``, or Basic with any user name and ``token`` as password."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        value = decoded.partition(":")[2]
    elif scheme.lower() != "bearer":
        return False
    # compare_digest takes time independent of where the strings differ.
    return hmac.compare_digest(value.encode(), token.encode())


def _unauthorized(presented: bool) -> web.Response:
    detail = "the token is not valid for this controller" if presented else "a token is required"
    resp = web.json_response(
        {"error": "unauthorized", "detail": detail}, status=401, headers=_SECURITY_HEADERS
    )
    # Basic first: a browser opening the page asks for the token once; the CLI sends Bearer.
    resp.headers.add("WWW-Authenticate", 'Basic realm="ingressfed status", charset="UTF-8"')
    resp.headers.add("WWW-Authenticate", 'Bearer realm="ingressfed status"')
    return resp


def _json(doc: object, status: int = 200) -> web.Response:
    body = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return web.Response(text=body, status=status, content_type="application/json", headers=_SECURITY_HEADERS)


def _asset(name: str) -> bytes:
    return importlib.resources.files("ingressfed.status").joinpath("assets", name).read_bytes()


def add_status_routes(app: web.Application, state: StatusState, *, token: str | None) -> None:
    """Serve the page and the read API from ``state``; ``token`` None means no authentication."""

    def guarded(handler: Handler) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            if token is not None:
                header = request.headers.get("Authorization", "")
                if not header or not authorized(header, token):
                    return _unauthorized(bool(header))
            return await handler(request)

        return check

    async def page(request: web.Request) -> web.StreamResponse:
        return await asset_named("index.html")

    async def asset(request: web.Request) -> web.StreamResponse:
        return await asset_named(request.match_info["name"])

    async def asset_named(name: str) -> web.StreamResponse:
        kind = _ASSETS.get(name)
        if kind is None:
            return _json({"error": "not found", "detail": f"no asset {name!r}"}, 404)
        return web.Response(body=_asset(name), content_type=kind, headers=_SECURITY_HEADERS)

    async def document(request: web.Request) -> web.StreamResponse:
        after_text = request.query.get("after")
        if after_text is not None:
            try:
                after = int(after_text)
            except ValueError:
                return _json({"error": "bad request", "detail": "after: must be an integer version"}, 400)
            try:
                timeout = float(request.query.get("timeout", str(DEFAULT_POLL_TIMEOUT)))
            except ValueError:
                return _json({"error": "bad request", "detail": "timeout: must be a number of seconds"}, 400)
            if not 0 <= timeout <= MAX_POLL_TIMEOUT:
                detail = f"timeout: must be between 0 and {MAX_POLL_TIMEOUT:g} seconds"
                return _json({"error": "bad request", "detail": detail}, 400)
            await state.wait_newer(after, timeout)
        return _json(overview(state.inputs()))

    async def where(request: web.Request) -> web.StreamResponse:
        ip = request.query.get("ip")
        if not ip:
            return _json({"error": "bad request", "detail": "ip: required, e.g. ?ip=81.2.69.160"}, 400)
        try:
            return _json(state.where(ip, request.query.get("host")))
        except WhereError as exc:
            return _json({"error": "bad request", "detail": str(exc)}, 400)

    async def resource(request: web.Request) -> web.StreamResponse:
        name = request.match_info["resource"]
        inputs = state.inputs()
        items = resource_items(inputs, name)
        if items is None:
            known = ", ".join(resource_names(inputs))
            return _json({"error": "not found", "detail": f"no resource {name!r} here; known: {known}"}, 404)
        return _json({"resource": name, "role": state.role, "version": inputs.version, "items": items})

    async def release_waiters(_: web.Application) -> None:
        state.close()

    async def sampler(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(state.run(), name="status-sampler")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.router.add_get(PAGE_PATH, guarded(page))
    app.router.add_get(PAGE_PATH + "/assets/{name}", guarded(asset))
    app.router.add_get(STATUS_PATH, guarded(document))
    app.router.add_get(STATUS_PATH + "/where", guarded(where))
    app.router.add_get(STATUS_PATH + "/{resource}", guarded(resource))
    app.on_shutdown.append(release_waiters)
    app.cleanup_ctx.append(sampler)
