"""Serve the controller's view to data planes: in-process, and as an HTTP long-poll.

``GET /v1/feed?after=N&epoch=E&timeout=S`` answers at once with the current
view when it is newer than version ``N`` of epoch ``E`` (or ``E`` is not this
publisher's epoch: the follower holds a previous controller's view), otherwise
waits up to ``S`` seconds for one and answers ``304 Not Modified`` if none
came. With ``delta=1`` and a version the publisher still remembers (the last
``history`` versions of this epoch), the answer is a delta from ``N`` instead
(:mod:`ingressfed.feed.delta`): bytes in proportion to what changed, not to the
zone (and with ``parts=changed``, routes, clusters and HTTPRoute rules only when
they changed); a follower too far behind (or of another epoch) gets the full
view. With a token configured every request needs ``Authorization: Bearer <token>``;
anything else gets ``401`` with ``WWW-Authenticate``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections import deque
from dataclasses import replace

from aiohttp import web

from ingressfed.feed.delta import FeedDelta, compose, encode_delta
from ingressfed.feed.records import RecordTable
from ingressfed.feed.view import FeedView, encode_view
from ingressfed.gateway.table import ServedRule
from ingressfed.model import Cluster, Route

__all__ = ["FEED_PATH", "MAX_POLL_TIMEOUT", "FeedPublisher", "add_feed_routes"]

log = logging.getLogger(__name__)

FEED_PATH = "/v1/feed"
MAX_POLL_TIMEOUT = 60.0
DEFAULT_POLL_TIMEOUT = 30.0


class FeedPublisher:
    """The latest view; used from the event loop only.

    Versions start from the wall clock in milliseconds (``initial_version``
    overrides) so they keep increasing across controller restarts in practice;
    the random ``epoch`` makes followers safe even when they do not.
    """

    def __init__(
        self, *, epoch: str | None = None, initial_version: int | None = None, history: int = 64
    ) -> None:
        self.epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._next_version = initial_version if initial_version is not None else time.time_ns() // 1_000_000
        self._view: FeedView | None = None
        self._table = RecordTable()  # the current view's record sets, sorted
        self._body: bytes | None = None
        self._history = history
        self._deltas: deque[FeedDelta] = deque(maxlen=history or None)
        self._delta_bodies: dict[tuple[int, bool], bytes] = {}
        # The small parts of each version the deltas start from (shared tuples: cheap to keep).
        self._parts: dict[int, tuple[tuple[Route, ...], tuple[Cluster, ...], tuple[ServedRule, ...]]] = {}
        self._changed = asyncio.Event()
        self._closed = False

    def current(self) -> FeedView | None:
        return self._view

    def current_body(self) -> bytes | None:
        """The current view encoded as JSON (encoded once per version, shared by every follower)."""
        if self._body is None and self._view is not None:
            self._body = encode_view(self._view)
        return self._body

    def publish(self, view: FeedView) -> FeedView:
        """Make ``view``'s content current; the version changes only when the content does.

        The ``version`` and ``epoch`` of the argument are ignored: the publisher numbers views.
        Costs the changed record sets, plus C-speed work over the rest when the caller hands in
        the same record-set objects for what did not change (see :mod:`ingressfed.feed.records`).
        """
        small = replace(view, records=()).canonical()
        removed, upserted = self._table.update(view.records)
        old = self._view
        if (
            old is not None
            and not removed
            and not upserted
            and (old.routes, old.clusters, old.zone, old.gateway_rules)
            == (small.routes, small.clusters, small.zone, small.gateway_rules)
        ):
            return old
        published = replace(
            small, records=self._table.records(), version=self._next_version, epoch=self.epoch
        )
        self._next_version += 1
        if old is not None and self._history:
            self._parts[old.version] = (old.routes, old.clusters, old.gateway_rules)
            if len(self._deltas) == self._deltas.maxlen:
                self._parts.pop(self._deltas[0].base, None)  # about to leave the history
            self._deltas.append(
                FeedDelta(
                    published.epoch,
                    old.version,
                    published.version,
                    published.zone,
                    removed,
                    upserted,
                    published.routes,
                    published.clusters,
                    published.gateway_rules,
                )
            )
        self._view = published
        self._body = None
        self._delta_bodies = {}
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        log.debug("feed view published", extra={"version": published.version, "records": len(view.records)})
        return published

    def delta_body(self, after: int, epoch: str | None, *, changed_parts: bool = False) -> bytes | None:
        """The current view as a delta from version ``after`` of ``epoch``; None when the
        publisher does not remember that version (the follower gets the full view).
        ``changed_parts``: leave out the small parts equal to those of ``after``."""
        if epoch != self.epoch or self._view is None or after >= self._view.version:
            return None
        body = self._delta_bodies.get((after, changed_parts))
        if body is not None:
            return body
        chain = list(self._deltas)
        start = next((i for i, d in enumerate(chain) if d.base == after), None)
        if start is None:
            return None
        delta = compose(chain[start:])
        base_parts = self._parts.get(after)
        if changed_parts and base_parts is not None:
            delta = delta.without_unchanged_parts(*base_parts)
        body = encode_delta(delta)
        self._delta_bodies[(after, changed_parts)] = body
        return body

    def is_newer(self, view: FeedView, *, after: int, epoch: str | None) -> bool:
        return (epoch is not None and epoch != view.epoch) or view.version > after

    async def wait_newer(
        self,
        after: int,
        timeout: float,  # noqa: ASYNC109 - a long-poll deadline: returns None, never raises
        *,
        epoch: str | None = None,
    ) -> FeedView | None:
        """The current view once it is newer than ``after`` (see module doc), or None after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            view = self._view
            if view is not None and self.is_newer(view, after=after, epoch=epoch):
                return view
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closed:
                return None
            changed = self._changed
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return None

    def close(self) -> None:
        """Release every waiter (they answer 304) so a server can shut down without waiting them out."""
        self._closed = True
        self._changed.set()


def _unauthorized(reason: str | None) -> web.Response:
    challenge = 'Bearer realm="ingressfed-feed"'
    if reason is not None:
        challenge += f', error="invalid_token", error_description="{reason}"'
    return web.json_response(
        {"error": "unauthorized", "detail": reason or "bearer token required"},
        status=401,
        headers={"WWW-Authenticate": challenge},
    )


def _bad_request(detail: str) -> web.Response:
    return web.json_response({"error": "bad request", "detail": detail}, status=400)


def add_feed_routes(
    app: web.Application,
    publisher: FeedPublisher,
    token: str | None,
    *,
    max_timeout: float = MAX_POLL_TIMEOUT,
) -> None:
    """Serve ``GET /v1/feed`` from ``publisher`` on ``app``; ``token`` None means no authentication."""
    expected = token.encode() if token is not None else None

    async def feed(request: web.Request) -> web.StreamResponse:
        if expected is not None:
            header = request.headers.get("Authorization", "")
            scheme, _, presented = header.partition(" ")
            if not header:
                return _unauthorized(None)
            # compare_digest takes time independent of where the strings differ.
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
                return _unauthorized("the token is not valid for this feed")
        try:
            after = int(request.query.get("after", "-1"))
        except ValueError:
            return _bad_request("after: must be an integer version")
        try:
            timeout = float(request.query.get("timeout", str(DEFAULT_POLL_TIMEOUT)))
        except ValueError:
            return _bad_request("timeout: must be a number of seconds")
        if not 0 <= timeout <= max_timeout:
            return _bad_request(f"timeout: must be between 0 and {max_timeout:g} seconds")
        epoch = request.query.get("epoch") or None
        view = await publisher.wait_newer(after, timeout, epoch=epoch)
        body = None
        if view is not None and request.query.get("delta") == "1":
            body = publisher.delta_body(after, epoch, changed_parts=request.query.get("parts") == "changed")
        if body is None and view is not None:
            body = publisher.current_body()
        if view is None or body is None:
            return web.Response(status=304)
        # The body can be newer than ``view`` if a publish happened in between; that is fine.
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})

    async def release_waiters(_: web.Application) -> None:
        publisher.close()

    app.router.add_get(FEED_PATH, feed)
    app.on_shutdown.append(release_waiters)
