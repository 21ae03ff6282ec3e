"""Follow a remote controller's feed: long-poll, persist, keep serving when it is away.

On start the follower yields the view persisted by its previous run at once,
so a data plane serves its last known state before (and without) reaching the
controller. Then it long-polls from the version it holds and reconnects with
capped exponential backoff and jitter. It never yields a view older than one it
has yielded (see :meth:`FeedView.newer_than`).

A change costs the follower what the change holds, not the zone: a delta is taken
into the :class:`HeldView` in place and yielded as a :class:`FeedStep` carrying the
record-set changes it made (``steps()``/``follow()``; a DNS server follows them in
place), and it is persisted as one line appended to the state file's journal
(:mod:`ingressfed.feed.state`) before it is yielded; a whole view is persisted as a
new snapshot. ``views()``/``run()`` yield whole :class:`FeedView` values as before,
at O(zone) per change, for callers that want values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType

import aiohttp
from yarl import URL

from ingressfed.errors import IngressfedError
from ingressfed.feed.delta import FeedDelta, decode_feed
from ingressfed.feed.held import FeedStep, HeldView, changes_between
from ingressfed.feed.publisher import FEED_PATH
from ingressfed.feed.state import FeedStateFile
from ingressfed.feed.view import FeedFormatError, FeedView

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
        self.state = FeedStateFile(self.state_file) if self.state_file is not None else None
        self.ssl_context = ssl_context
        self.poll_timeout = poll_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self.held: HeldView | None = None
        self.failures = 0  # consecutive failed polls; 0 while connected
        self._compaction: asyncio.Task[None] | None = None
        self._journal_broken = False  # an append failed: the next delta writes a whole snapshot

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
        await self._settle()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __aiter__(self) -> AsyncIterator[FeedView]:
        return self.views()

    # -- persistence

    def load_state(self) -> HeldView | None:
        """The view persisted by a previous run (journal replayed); None if there is none or it is
        unreadable."""
        return self.state.load() if self.state is not None else None

    async def _settle(self) -> None:
        """Wait for a compaction under way (a whole snapshot must not be written beside it)."""
        task = self._compaction
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            self._compaction = None

    async def _persist_view(self, view: FeedView) -> None:
        if self.state is None:
            return
        await self._settle()
        try:
            await asyncio.to_thread(self.state.save, view)
            self._journal_broken = False
        except OSError as exc:
            # Serving the new view matters more than remembering it across a restart.
            log.error("cannot persist feed state %s: %s", self.state_file, exc)

    async def _persist_delta(self, held: HeldView, delta: FeedDelta) -> None:
        """Journal ``delta`` (taken into ``held`` already) and start a compaction when one is due."""
        state = self.state
        if state is None:
            return
        if self._journal_broken:
            await self._persist_view(held.view())
            return
        try:
            await asyncio.to_thread(state.append, delta)
        except OSError as exc:
            log.error("cannot append to feed state journal %s: %s", state.journal, exc)
            self._journal_broken = True
            return
        if state.compaction_due and (self._compaction is None or self._compaction.done()):
            # Taken here, between deltas: the thread sorts and encodes a value, not the live view.
            view = held.view(canonical=False)
            self._compaction = asyncio.create_task(self._compact(view, state.journal_bytes))

    async def _compact(self, view: FeedView, mark: int) -> None:
        assert self.state is not None
        try:
            await asyncio.to_thread(self.state.compact, view, mark=mark)
        except OSError as exc:
            log.error("cannot compact feed state %s: %s (the journal keeps growing)", self.state_file, exc)

    # -- polling

    async def poll(self, session: aiohttp.ClientSession) -> FeedView | FeedDelta | None:
        """One long-poll from the held view; None when nothing newer came in time."""
        params = {"timeout": f"{self.poll_timeout:g}"}
        held = self.held
        if held is not None:
            params["after"] = str(held.version)
            params["epoch"] = held.epoch
            params["delta"] = "1"  # what changed since, when the controller still knows
            params["parts"] = "changed"  # and the routes and clusters only when they changed
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
            if isinstance(answer, FeedDelta) and held is None:
                raise FeedFormatError("base: a delta came without a view to apply it to")
            return answer

    async def _take(self, answer: FeedView | FeedDelta) -> FeedStep | None:
        """The step ``answer`` makes from the held view, persisted; None when it is not newer."""
        held = self.held
        if isinstance(answer, FeedDelta):
            assert held is not None
            if answer.epoch == held.epoch and answer.version <= held.version:
                return None
            changes = held.apply(answer)  # FeedFormatError (nothing changed) for another base
            await self._persist_delta(held, answer)
            return FeedStep(held, changes)
        if held is not None and answer.epoch == held.epoch and answer.version <= held.version:
            return None
        await self._persist_view(answer)
        new = HeldView(answer)
        self.held = new
        return FeedStep(new, changes_between(held.records, new.records) if held is not None else None, True)

    async def steps(self) -> AsyncGenerator[FeedStep, None]:
        """Each change of the view held, as it comes (see the module doc)."""
        stored = await asyncio.to_thread(self.load_state) if self.state is not None else None
        if stored is not None and stored.newer_than(self.held):
            previous, self.held = self.held, stored
            log.info("serving persisted feed view", extra={"version": stored.version})
            yield FeedStep(
                stored, changes_between(previous.records, stored.records) if previous else None, True
            )
        own_session = self._session is None
        session = self._new_session() if own_session else self._session
        assert session is not None
        try:
            while True:
                try:
                    answer = await self.poll(session)
                    step = await self._take(answer) if answer is not None else None
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
                if step is not None:
                    yield step
        finally:
            if own_session:
                await session.close()

    async def views(self) -> AsyncIterator[FeedView]:
        """Each newer view, whole (O(zone) per change: prefer :meth:`steps`)."""
        async with contextlib.aclosing(self.steps()) as steps:
            async for step in steps:
                yield step.held.view()

    async def run(self, on_view: Callable[[FeedView], Awaitable[None] | None]) -> None:
        """Call ``on_view`` with every view until cancelled."""
        async for view in self:
            result = on_view(view)
            if result is not None:
                await result

    async def follow(self, on_step: Callable[[FeedStep], Awaitable[None] | None]) -> None:
        """Call ``on_step`` with every step until cancelled (read ``step.held`` before returning)."""
        async with contextlib.aclosing(self.steps()) as steps:
            async for step in steps:
                result = on_step(step)
                if result is not None:
                    await result
