"""The controller's small long-polled documents beside the feed (Ingress TLS certificates, ACME
http-01 tokens): one versioned body per epoch, a wait that returns when it changes (or the server
shuts down), and the query and bearer checks their routes share.

A follower asks ``?after=VERSION&epoch=EPOCH&timeout=SECONDS``: a newer version (or another epoch:
the controller restarted) is answered at once; else the request waits up to ``timeout`` and gets
304 when nothing changed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hmac
import logging
import random
import secrets
import ssl

import aiohttp
from aiohttp import web
from yarl import URL

from ingressfed.feed.follower import backoff_delay

__all__ = ["MAX_TIMEOUT", "LongPollFollower", "VersionedBody", "answer", "bearer_refusal", "poll_query"]

log = logging.getLogger(__name__)

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


class LongPollFollower(abc.ABC):
    """Follows one long-polled document of a controller (``path``), taking each new version with
    ``take``; network failures back off, a controller without the document is asked now and then."""

    path = ""  # the document's path on the controller
    what = "document"  # how logs name it
    format_error: type[Exception] = ValueError  # what ``take`` raises for a malformed body

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        ssl_context: ssl.SSLContext | None = None,
        poll_timeout: float = 30.0,
        backoff_max: float = 30.0,
    ) -> None:
        base = URL(url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"feed url {url!r} must be http(s)://host[:port]")
        self.url = base.with_path(self.path)
        self.token = token
        self.ssl_context = ssl_context
        self.poll_timeout = poll_timeout
        self.backoff_max = backoff_max
        self.epoch: str | None = None
        self.version = -1

    def query(self) -> dict[str, str]:
        query = {"after": str(self.version), "timeout": str(self.poll_timeout)}
        if self.epoch is not None:
            query["epoch"] = self.epoch
        return query

    @abc.abstractmethod
    def take(self, body: bytes) -> None:
        """Apply a new version of the document (set ``epoch`` and ``version``)."""

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else True)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        failures = 0
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            while True:
                try:
                    await self.poll(session)
                    failures = 0
                except (aiohttp.ClientError, TimeoutError, self.format_error) as exc:
                    if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 404:
                        # A controller from before this document: nothing to take; ask now and then.
                        if failures == 0:
                            log.info("%s: the controller serves no %s (404)", self.url, self.what)
                        failures += 1
                        await asyncio.sleep(self.backoff_max)
                        continue
                    failures += 1
                    delay = backoff_delay(
                        failures, initial=0.5, maximum=self.backoff_max, jitter=random.random()
                    )
                    log.warning(
                        "%s from %s not fetched (%s); retry in %.1fs", self.what, self.url, exc, delay
                    )
                    await asyncio.sleep(delay)

    async def poll(self, session: aiohttp.ClientSession) -> bool:
        """One long poll; True when a new version was taken."""
        timeout = aiohttp.ClientTimeout(total=self.poll_timeout + 10)
        async with session.get(self.url, params=self.query(), timeout=timeout) as resp:
            if resp.status == 304:
                return False
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, resp.history, status=resp.status, message=resp.reason or ""
                )
            body = await resp.read()
        self.take(body)
        return True
