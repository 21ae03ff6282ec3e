"""Follow a remote controller's feed: long-poll, persist, keep serving when it is away.

On start the follower yields the view persisted by its previous run at once,
so a data plane serves its last known state before (and without) reaching the
controller. Then it long-polls from the version it holds, persists each newer
view atomically (write to a temporary file, fsync, rename) before yielding it,
and reconnects with capped exponential backoff and jitter. It never yields a
view older than one it has yielded (see :meth:`FeedView.newer_than`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType

import aiohttp
from yarl import URL

from ingressfed.errors import IngressfedError
from ingressfed.feed.delta import apply_delta, decode_feed
from ingressfed.feed.publisher import FEED_PATH
from ingressfed.feed.view import FeedFormatError, FeedView, decode_view, encode_view

__all__ = ["FeedFollower", "FeedUnauthorizedError", "backoff_delay", "client_ssl_context"]

log = logging.getLogger(__name__)


class FeedUnauthorizedError(IngressfedError):
    """The controller rejected our bearer token (401)."""


def backoff_delay(attempt: int, *, initial: float, maximum: float, jitter: float) -> float:
    """Delay before retry number ``attempt`` (1-based): doubling from ``initial``, capped at
    ``maximum``, then scaled into [50 %, 100 %] by ``jitter`` in [0, 1) so that many followers
    cut off together do not come back in lock step."""
    base = min(maximum, initial * 2.0 ** min(attempt - 1, 30))
    return base * (0.5 + 0.5 * jitter)


def client_ssl_context(*, ca_file: str | Path | None = None) -> ssl.SSLContext:
    """Verify the controller's certificate against ``ca_file`` (else the system trust store)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


class FeedFollower:
    """``async for view in follower`` yields views of a controller's feed, forever.

    Use it as an async context manager (``async with FeedFollower(...) as f``)
    to share one HTTP session between iterations; iterating without entering it
    opens a session for the iteration.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        state_file: str | Path | None,
        ssl_context: ssl.SSLContext | None = None,
        poll_timeout: float = 30.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        base = URL(url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"feed url {url!r} must be http(s)://host[:port][/path]")
        # Accept the controller's base URL or the feed URL itself.
        self.url = base if base.path.rstrip("/").endswith(FEED_PATH) else base.with_path(FEED_PATH)
        self.token = token
        self.state_file = Path(state_file) if state_file is not None else None
        self.ssl_context = ssl_context
        self.poll_timeout = poll_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self.last: FeedView | None = None
        self.failures = 0  # consecutive failed polls; 0 while connected

    # -- session lifecycle

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else True)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        return aiohttp.ClientSession(connector=connector, headers=headers)

    async def __aenter__(self) -> FeedFollower:
        self._session = self._new_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __aiter__(self) -> AsyncIterator[FeedView]:
        return self.views()

    # -- persistence

    def load_state(self) -> FeedView | None:
        """The view persisted by a previous run; None if there is none or it is unreadable."""
        if self.state_file is None:
            return None
        try:
            data = self.state_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read feed state %s: %s", self.state_file, exc)
            return None
        try:
            return decode_view(data)
        except FeedFormatError as exc:
            log.warning("ignoring corrupt feed state %s: %s", self.state_file, exc)
            return None

    def _write_state(self, data: bytes) -> None:
        assert self.state_file is not None
        directory = self.state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.state_file.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # Make the rename itself durable.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def _persist(self, view: FeedView) -> None:
        if self.state_file is None:
            return
        try:
            await asyncio.to_thread(self._write_state, encode_view(view))
        except OSError as exc:
            # Serving the new view matters more than remembering it across a restart.
            log.error("cannot persist feed state %s: %s", self.state_file, exc)

    # -- polling

    async def poll(self, session: aiohttp.ClientSession) -> FeedView | None:
        """One long-poll from the held view; None when nothing newer came in time."""
        params = {"timeout": f"{self.poll_timeout:g}"}
        held = self.last
        if held is not None:
            params["after"] = str(held.version)
            params["epoch"] = held.epoch
            params["delta"] = "1"  # what changed since, when the controller still knows
        timeout = aiohttp.ClientTimeout(total=self.poll_timeout + 15, sock_connect=10)
        async with session.get(self.url, params=params, timeout=timeout) as resp:
            if resp.status == 304:
                return None
            if resp.status == 401:
                raise FeedUnauthorizedError(f"{self.url}: 401 {resp.headers.get('WWW-Authenticate', '')}")
            if resp.status != 200:
                text = (await resp.text(errors="replace"))[:200]
                raise aiohttp.ClientResponseError(
                    resp.request_info, resp.history, status=resp.status, message=text
                )
            answer = decode_feed(await resp.read())
            if isinstance(answer, FeedView):
                return answer
            if held is None:
                raise FeedFormatError("base: a delta came without a view to apply it to")
            return apply_delta(held, answer)

    async def views(self) -> AsyncIterator[FeedView]:
        stored = self.load_state()
        if stored is not None and stored.newer_than(self.last):
            self.last = stored
            log.info("serving persisted feed view", extra={"version": stored.version})
            yield stored
        own_session = self._session is None
        session = self._new_session() if own_session else self._session
        assert session is not None
        try:
            while True:
                try:
                    view = await self.poll(session)
                except (aiohttp.ClientError, TimeoutError, FeedFormatError, FeedUnauthorizedError) as exc:
                    self.failures += 1
                    delay = backoff_delay(
                        self.failures,
                        initial=self.backoff_initial,
                        maximum=self.backoff_max,
                        jitter=self._rng.random(),
                    )
                    log.warning(
                        "feed %s unavailable (%s); retrying in %.1fs",
                        self.url,
                        exc or type(exc).__name__,
                        delay,
                        extra={"failures": self.failures},
                    )
                    await asyncio.sleep(delay)
                    continue
                self.failures = 0
                if view is None or not view.newer_than(self.last):
                    continue
                await self._persist(view)
                self.last = view
                yield view
        finally:
            if own_session:
                await session.close()

    async def run(self, on_view: Callable[[FeedView], Awaitable[None] | None]) -> None:
        """Call ``on_view`` with every view until cancelled."""
        async for view in self:
            result = on_view(view)
            if result is not None:
                await result
