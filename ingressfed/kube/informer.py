"""A generic informer: list (paginated), then watch from the list's resourceVersion.

The loop is kept deliberately plain:

- list with ``limit``/``continue``; each page goes to the handler as it
  arrives, the handler commits the whole set at the end (a relist replaces the
  cluster's objects, so nothing is lost or doubled);
- watch from the list's resourceVersion with ``allowWatchBookmarks``; a server
  timeout just re-watches from the last resourceVersion seen;
- 410 Gone (on the watch, or an expired ``continue`` token) relists;
- dropped streams, client timeouts, 429 and 5xx reconnect after a capped
  exponential backoff with jitter; 401/403 and other refusals are reported to
  the handler as a problem and retried the same way (permissions get fixed).

``iterations`` bounds the number of requests (list pages and watches) for
tests; ``CancelledError`` always propagates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio.client import ApiClient

from ingressfed.kube.backoff import BackoffPolicy, backoff_delay
from ingressfed.kube.rest import KubeApiError, request_json, stream_lines

__all__ = ["EventType", "Informer", "InformerOptions", "Resource", "WatchHandler"]

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = BackoffPolicy()
EventType = str  # "ADDED" | "MODIFIED" | "DELETED"


@dataclass(frozen=True, slots=True)
class Resource:
    """A collection to watch, e.g. ``Resource("/api/v1/services", "Service")``."""

    path: str
    kind: str
    label_selector: str | None = None


class WatchHandler(Protocol):
    def relist_started(self) -> None: ...

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None: ...

    def relist_finished(self) -> None:
        """The pages since ``relist_started`` are now the complete set."""

    def changed(self, event: EventType, obj: Mapping[str, Any]) -> None: ...

    def failed(self, error: KubeApiError) -> None:
        """A request was refused (403, 404...) or the server is failing; the informer retries."""

    # Optional: ``recovered()``, called when the first request after a run of failures succeeds.


@dataclass(frozen=True, slots=True)
class InformerOptions:
    page_size: int = 500
    watch_timeout: int = 300  # server-side timeoutSeconds of one watch
    read_slack: float = 30.0  # client read timeout beyond it (bookmarks arrive about every minute)
    connect_timeout: float = 10.0
    list_timeout: float = 60.0
    backoff: BackoffPolicy = DEFAULT_BACKOFF


DEFAULT_OPTIONS = InformerOptions()


class _Relist(Exception):
    """The resourceVersion or continue token expired (410 Gone): start over with a list."""


class Informer:
    def __init__(
        self,
        api: ApiClient,
        resource: Resource,
        handler: WatchHandler,
        *,
        options: InformerOptions = DEFAULT_OPTIONS,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api = api
        self._resource = resource
        self._handler = handler
        self._options = options
        self._rand = rand
        self._sleep = sleep
        self._version: str | None = None  # None: a (re)list is due
        self._attempt = 0
        self.requests = 0  # list pages and watches started (observable by tests)
        self.relists = 0
        self._failing = False  # since the last failure nothing has succeeded

    @property
    def synced(self) -> bool:
        """True once a full list was delivered and until a relist is needed."""
        return self._version is not None

    async def run(self, *, iterations: int | None = None) -> None:
        """List and watch until cancelled (or after ``iterations`` requests)."""
        while iterations is None or self.requests < iterations:
            try:
                if self._version is None:
                    await self._list(iterations)
                    self._attempt = 0
                elif await self._watch() == 0:
                    # A watch that ends without even a bookmark: do not spin against the server.
                    delay = backoff_delay(self._attempt, policy=self._options.backoff, rand=self._rand())
                    self._attempt += 1
                    await self._sleep(delay)
            except _Relist:
                self._version = None
            except KubeApiError as exc:
                await self._fail(exc)
            except Exception:
                # A bug in a handler must not stop the watch for good: log it, start over from a list.
                log.exception("%s: handler failed; relisting", self._resource.kind)
                self._version = None
                await self._fail(KubeApiError(0, "HandlerError", path=self._resource.path))

    async def _fail(self, exc: KubeApiError) -> None:
        if exc.status == 0 or exc.transient:
            log.info(
                "%s: %s; reconnecting", self._resource.kind, exc, extra={"resource": self._resource.path}
            )
        else:
            log.warning("%s: %s", self._resource.kind, exc, extra={"resource": self._resource.path})
        self._failing = True
        self._handler.failed(exc)
        delay = backoff_delay(self._attempt, policy=self._options.backoff, rand=self._rand())
        self._attempt += 1
        await self._sleep(delay)

    def _query(self, **extra: str | int) -> dict[str, str | int]:
        query: dict[str, str | int] = {}
        if self._resource.label_selector:
            query["labelSelector"] = self._resource.label_selector
        query.update(extra)
        return query

    async def _list(self, iterations: int | None) -> None:
        self._handler.relist_started()
        token: str | None = None
        while True:
            if iterations is not None and self.requests >= iterations:
                return
            query = self._query(limit=self._options.page_size)
            if token:
                query["continue"] = token
            self.requests += 1
            try:
                page = await request_json(
                    self._api,
                    "GET",
                    self._resource.path,
                    query=query,
                    request_timeout=self._options.list_timeout,
                )
            except KubeApiError as exc:
                if exc.status == 410:
                    raise _Relist from exc  # the continue token expired
                raise
            items = page.get("items")
            meta = page.get("metadata")
            if not isinstance(items, list) or not isinstance(meta, Mapping):
                raise KubeApiError(200, "InvalidList", path=self._resource.path, message="no items/metadata")
            self._succeeded()
            self._handler.relisted_page([i for i in items if isinstance(i, Mapping)])
            nxt = meta.get("continue")
            if isinstance(nxt, str) and nxt:
                token = nxt
                continue
            version = meta.get("resourceVersion")
            self._handler.relist_finished()
            self.relists += 1
            # Without a version (a broken server) watch from "now" after a fresh list.
            self._version = version if isinstance(version, str) and version else "0"
            return

    async def _watch(self) -> int:
        """One watch request; the number of events (bookmarks included) it delivered."""
        assert self._version is not None
        opts = self._options
        query = self._query(
            watch=1,
            resourceVersion=self._version,
            allowWatchBookmarks="true",
            timeoutSeconds=opts.watch_timeout,
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=opts.connect_timeout, sock_read=opts.watch_timeout + opts.read_slack
        )
        self.requests += 1
        lines = stream_lines(self._api, self._resource.path, query=query, request_timeout=timeout)
        seen = 0
        try:
            async with aclosing(lines):
                async for line in lines:
                    self._succeeded()
                    self._event(line)
                    seen += 1
                    self._attempt = 0  # the stream works: a later drop starts backing off afresh
        except KubeApiError as exc:
            if exc.status == 410:
                raise _Relist from exc  # resourceVersion too old when the watch started
            raise
        return seen

    def _succeeded(self) -> None:
        if self._failing:
            self._failing = False
            hook = getattr(self._handler, "recovered", None)
            if callable(hook):
                hook()

    def _event(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise KubeApiError(0, "InvalidWatchEvent", path=self._resource.path, message=str(exc)) from exc
        if not isinstance(event, Mapping):
            raise KubeApiError(0, "InvalidWatchEvent", path=self._resource.path, message="not an object")
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, Mapping):
            raise KubeApiError(0, "InvalidWatchEvent", path=self._resource.path, message="no object")
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise _Relist
            status = code if isinstance(code, int) else 500
            raise KubeApiError(
                status,
                str(obj.get("reason", "Error")),
                path=self._resource.path,
                message=str(obj.get("message")),
            )
        meta = obj.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._handler.changed(kind, obj)
        elif kind != "BOOKMARK":
            log.debug("ignoring watch event type %r", kind, extra={"resource": self._resource.path})
            return
        if isinstance(version, str) and version:
            self._version = version
