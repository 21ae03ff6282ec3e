"""The controller's small long-polled documents beside the feed (Ingress TLS certificates, ACME
http-01 tokens): one versioned body per epoch, a wait that returns when it changes (or the server
shuts down), and the query and bearer checks their routes share.

A follower asks ``?after=VERSION&epoch=EPOCH&timeout=SECONDS``: a newer version (or another epoch:
the controller restarted) is answered at once; else the request waits up to ``timeout`` and gets
304 when nothing changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets

from aiohttp import web

__all__ = ["MAX_TIMEOUT", "VersionedBody", "answer", "bearer_refusal", "poll_query"]

MAX_TIMEOUT = 60.0  # seconds a long poll may ask to wait


class VersionedBody:
    """An encoded document, its version within this process's epoch, and waiters on it."""

    def __init__(self, body: bytes, *, epoch: str | None = None) -> None:
        self.epoch = epoch or secrets.token_hex(8)
        self.version = 0
        self.body = body
        self._changed = asyncio.Event()
        self._closed = False

    def publish(self, body: bytes) -> int:
        """A new version with ``body``; every waiting poll is answered."""
        self.version += 1
        self.body = body
        self._changed.set()
        self._changed = asyncio.Event()
        return self.version

    def close(self) -> None:
        """Release every long poll (they answer 304): a shutting-down server does not wait them out."""
        self._closed = True
        self._changed.set()

    async def wait_newer(self, after: int, epoch: str | None, wait: float) -> bool:
        """True as soon as there is a version after ``after`` (or ``epoch`` is not ours)."""
        if epoch != self.epoch or after < self.version:
            return True
        changed = self._changed
        if not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await changed.wait()
        return after < self.version


def bearer_refusal(request: web.Request, expected: bytes) -> web.Response | None:
    """A 401 unless the request carries ``Authorization: Bearer <expected>``; None when it does."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
        return web.json_response(
            {"error": "unauthorized"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="ingressfed-feed"'},
        )
    return None


def poll_query(request: web.Request) -> tuple[int, float] | web.Response:
    """``after`` and ``timeout`` of a long poll, or the 400 that names what is wrong."""
    try:
        after = int(request.query.get("after", "-1"))
        timeout = float(request.query.get("timeout", "30"))
    except ValueError:
        return web.json_response(
            {"error": "bad request", "detail": "after and timeout are numbers"}, status=400
        )
    if not 0 <= timeout <= MAX_TIMEOUT:
        return web.json_response(
            {"error": "bad request", "detail": f"timeout: 0..{MAX_TIMEOUT:g} seconds"}, status=400
        )
    return after, timeout


def answer(body: VersionedBody) -> web.Response:
    return web.Response(
        body=body.body, content_type="application/json", headers={"Cache-Control": "no-store"}
    )
