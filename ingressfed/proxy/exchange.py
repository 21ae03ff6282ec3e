"""One request and its response, tried on one backend after another until one answers.

Its lifecycle is two small state machines (in the manner of h11's client and server states):
``RequestPhase`` for the request body the client is sending, and ``Phase`` for the exchange
with the backends. Every decision that depends on "how far did we get" reads these, never a flag:

```
QUEUED ──start──▶ CONNECTING ──attach──▶ SENT ──response head──▶ RESPONDING ──complete──▶ DONE
   │                 ▲   │                 │  └─101 to an upgrade──▶ SWITCHING ──▶ DONE (tunnel)
   │                 └───┴── retry ◀───────┘  (next-ranked cluster, or a fresh connection)
   └──────────────── fail / abandon (any phase) ─────────────────────────────────────▶ DONE
```
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum
from http import HTTPStatus
from typing import Final

from librt.strings import BytesWriter

from ingressfed.model import Backend, Location
from ingressfed.proxy.deadlines import BodyWindow
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.gateway import modified_headers
from ingressfed.proxy.ports import Corkable, Downstream, Pause, UpstreamListener
from ingressfed.proxy.request import (
    DROP,
    HOP_BY_HOP,
    PASS,
    Forward,
    HeaderActions,
    connection_names,
)
from ingressfed.proxy.table import ClusterTarget
from ingressfed.proxy.upstream import UpstreamConnection

__all__ = ["BodyTooLarge", "Exchange", "Phase", "RequestPhase", "ResponseFraming", "local_response"]

log = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({502, 503, 504})
_RESPONSE_SPECIAL: Final = HOP_BY_HOP | {b"content-length", b"via"}
_GONE: Final = _RESPONSE_SPECIAL | {b"close"}  # Connection tokens naming nothing left to remove
# What render_head does with each response header name, as backends spell it
_LENGTH: Final = 2  # Final: folded into the compiled comparisons (no module-dict lookup)
_TE: Final = 3
_CONNECTION: Final = 4
_VIA: Final = 5
_UPGRADE: Final = 6
_ACTIONS: Final = {
    b"content-length": _LENGTH,
    b"transfer-encoding": _TE,
    b"connection": _CONNECTION,
    b"via": _VIA,
    b"upgrade": _UPGRADE,
    **{name: DROP for name in HOP_BY_HOP - {b"connection", b"transfer-encoding", b"upgrade"}},
}
assert set(_ACTIONS) == _RESPONSE_SPECIAL
_RESPONSE_NAMES: Final = HeaderActions(_ACTIONS)


_STATUS_LINES: Final[dict[int, tuple[bytes, bytes]]] = {}  # status -> (reason, its line), the last seen


def _status_line(status: int, reason: bytes) -> bytes:
    """``HTTP/1.1 <status> <reason>`` and CRLF: formatting it cost more than the rest of the head."""
    known = _STATUS_LINES.get(status)
    if known is not None and known[0] == reason:
        return known[1]
    line = b"HTTP/1.1 %d %b\r\n" % (status, reason)
    _STATUS_LINES[status] = (reason, line)  # bounded: one entry per status code the backends use
    return line


_HEAD: Final = BytesWriter()  # render_head's buffer
_PENDING_LIMIT: Final = 256 * 1024  # unsent request body held before the upstream is ready


class Phase(Enum):
    QUEUED = "queued"  # parsed; waits behind earlier pipelined exchanges
    CONNECTING = "connecting"  # choosing a backend / connecting; nothing of this attempt sent
    SENT = "sent"  # this attempt's head (and maybe body) is upstream; no final response yet
    RESPONDING = "responding"  # the response head went to the client; its body is streaming
    SWITCHING = "switching"  # a 101 for a WebSocket upgrade went to the client
    DONE = "done"


class RequestPhase(Enum):
    BODY = "body"  # the client may still send body bytes
    COMPLETE = "complete"  # the whole request has been received


class ResponseFraming(Enum):
    """How the response body reaches the client (chunked out?, body ends when the backend closes?)."""

    AS_IS = (False, False)
    CHUNKED = (True, False)
    CHUNKED_UNTIL_EOF = (True, True)
    UNTIL_EOF = (False, True)


_CHUNKED_OUT: Final = frozenset({ResponseFraming.CHUNKED, ResponseFraming.CHUNKED_UNTIL_EOF})
_UNTIL_EOF: Final = frozenset({ResponseFraming.CHUNKED_UNTIL_EOF, ResponseFraming.UNTIL_EOF})


class BodyTooLarge(Exception):
    """The request body went over ``limits.max_body_bytes``; the codec answers 413."""


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def _valid_switch(headers: list[bytes], accept: bytes | None) -> bool:
    """A 101 answers our WebSocket handshake: Upgrade: websocket and the right Sec-WebSocket-Accept."""
    upgrade = found = None
    for i in range(0, len(headers), 2):
        lname = headers[i].lower()
        value = headers[i + 1]
        if lname == b"upgrade":
            upgrade = value
        elif lname == b"sec-websocket-accept":
            found = value.strip()
    if upgrade is None or _tokens(upgrade) != {b"websocket"}:
        return False
    return found is not None and found == accept


def local_response(status: int, *, close: bool, detail: str = "", extra: bytes = b"") -> bytes:
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}{': ' + detail if detail else ''}\n".encode()
    return b"".join(
        (
            f"HTTP/1.1 {status} {phrase}\r\n".encode(),
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"Connection: close\r\n" if close else b"",
            extra,
            b"\r\n",
            body,
        )
    )


class Exchange(UpstreamListener):
    # No __slots__: the state below starts as these class-level values and an exchange stores only
    # what it changes, which made building one per request a third as costly (bench/proxy/micro).
    phase: Phase = Phase.QUEUED
    request_phase: RequestPhase = RequestPhase.BODY
    framing: ResponseFraming = ResponseFraming.AS_IS
    targets: tuple[ClusterTarget, ...] = ()
    attempt = 0
    backend: Backend | None = None
    # backend.cluster, read several times per request: a compiled attribute, where Backend's (a
    # model dataclass) is a Python attribute lookup
    cluster = ""
    upstream: UpstreamConnection | None = None
    connecting: asyncio.Task[None] | None = None
    # Body bytes held until an upstream connection is ready (a list once there are any).
    pending: list[bytes] | tuple[bytes, ...] = ()
    pending_size = 0
    # The body so far, while small enough to send again on a retry; None once it is not.
    kept: list[bytes] | tuple[bytes, ...] | None = ()
    kept_size = 0
    body_bytes = 0
    resp_status = 0
    retried_fresh = False  # a reused connection found closed was retried on a fresh one
    retries = 0  # moves to a next-ranked cluster (each allowed by the retry budget)
    budget_refused = False  # counted and logged once
    attempt_since = 0.0  # when this attempt's request went upstream (coarse clock)
    counted: str | None = None  # the cluster whose in-flight count holds this exchange
    sent_at = 0.0
    upstream_active = 0.0

    def __init__(
        self, client: Downstream, engine: Engine, request: Forward, location: Location | None
    ) -> None:
        self.client = client
        self.downstream: Corkable = client  # ports.UpstreamListener: what the upstream corks per read
        self.engine = engine
        self.request = request
        self.location = location
        self.close_after = not request.keep_alive

    # --- state questions -------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def request_done(self) -> bool:
        return self.request_phase is RequestPhase.COMPLETE

    @property
    def response_started(self) -> bool:
        return self.phase is Phase.RESPONDING or self.phase is Phase.SWITCHING

    def retryable(self) -> bool:
        """May this request go to another backend after this attempt's bytes were sent?"""
        request = self.request
        return (
            request.idempotent
            and self.request_phase is RequestPhase.COMPLETE
            and not request.upgrade
            and not self.response_started
            and (self.phase is not Phase.SENT or self.kept is not None)
        )

    # --- request side (called by the codec) ------------------------------------------------
    def send(self, framed: bytes) -> None:
        """Forward (or hold) already-framed request body bytes."""
        kept = self.kept
        if kept is not None:
            self.kept_size += len(framed)
            if self.kept_size > self.engine.settings.limits.retry_body_bytes:
                self.kept = None
            elif isinstance(kept, list):
                kept.append(framed)
            else:
                self.kept = [framed]
        upstream = self.upstream
        if upstream is not None:
            upstream.write(framed)
            self.upstream_active = self.engine.clock.now
        else:
            pending = self.pending
            if isinstance(pending, list):
                pending.append(framed)
            else:
                self.pending = [framed]
            self.pending_size += len(framed)
            if self.pending_size > _PENDING_LIMIT:
                self.client.set_paused(Pause.PENDING, True)

    def body(self, data: bytes) -> None:
        self.body_bytes += len(data)
        if self.body_bytes > self.engine.settings.limits.max_body_bytes:
            raise BodyTooLarge
        if self.request.chunked:
            self.send(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.send(data)

    def check_body(self, now: float, window: BodyWindow, *, paused: bool, peer: str) -> bool:
        """The client-side body deadlines (timeouts.bodyRead, limits.minBodyRate) for this request,
        as both codecs apply them: True when the body was late and the exchange answered 408.
        ``paused``: the codec itself stopped reading, which restarts the window."""
        if paused:
            window.restart(now, self.body_bytes)
            return False
        settings = self.engine.settings
        why = window.late(
            now,
            self.body_bytes,
            body_read=settings.timeouts.body_read,
            min_rate=settings.limits.min_body_rate,
        )
        if why is None:
            return False
        self.engine.metrics.client_timeouts.labels("body").inc()
        log.info("request body from %s %s; closing", peer, why)
        self.fail(408, "request body not received in time")
        return True

    def complete(self) -> None:
        self.request_phase = RequestPhase.COMPLETE
        if self.request.chunked:
            self.send(b"0\r\n\r\n")

    # --- dispatch --------------------------------------------------------------------------
    def start(self) -> None:
        self.engine.budget.active += 1
        self.phase = Phase.CONNECTING
        router = self.engine.router
        entry = self.request.entry
        self.targets = router.targets(entry, self.location)
        if entry.steered and len(self.targets) > 1:
            self.targets = router.steered(entry, self.targets, self.request.affinity)
        if not self.targets:
            self.fail(503, "no healthy cluster serves this route", extra=b"Retry-After: 5\r\n")
            return
        self.attempt = 0
        self.try_current(fresh=False)

    def try_current(self, *, fresh: bool) -> None:
        engine = self.engine
        self.phase = Phase.CONNECTING
        while self.attempt < len(self.targets):
            backend = engine.router.pick(self.targets[self.attempt])
            if backend is not None:
                break
            self.attempt += 1
        else:
            self.fail(503, "no healthy backend left", extra=b"Retry-After: 5\r\n")
            return
        self.backend = backend
        self.cluster = backend.cluster
        conn = None if fresh else engine.pool.take(backend)
        if conn is not None:
            self.attach(conn)
        else:
            task = asyncio.get_running_loop().create_task(self._connect(backend))
            engine.registry.track(task)
            self.connecting = task

    async def _connect(self, backend: Backend) -> None:
        engine = self.engine
        try:
            conn = await engine.pool.connect((backend.host, backend.port))
        except (OSError, TimeoutError) as exc:
            self.connecting = None
            if self.done:
                return
            engine.router.record_request(backend, failed=True)
            log.info(
                "connect to %s:%s (%s) failed: %s",
                backend.host,
                backend.port,
                backend.cluster,
                exc or type(exc).__name__,
            )
            self.next_attempt(status=502, detail="backend connection failed")
            return
        self.connecting = None
        if self.done:
            engine.pool.put(conn)
            return
        self.attach(conn)

    def next_attempt(self, *, status: int, detail: str) -> None:
        """Move on to the next-ranked cluster when that is safe, else answer ``status``."""
        safe = (self.phase is Phase.CONNECTING or self.retryable()) and not self.response_started
        if safe and self.attempt + 1 < len(self.targets) and self._budget_allows():
            self._retry()
            return
        self.fail(status, detail)

    def _retry(self) -> None:
        self.engine.metrics.retries.labels(self.targets[self.attempt].name).inc()
        self.attempt += 1
        self.reset_for_retry()
        self.try_current(fresh=False)

    def _budget_allows(self) -> bool:
        budget = self.engine.budget
        if not budget.allows():
            if self.budget_refused:  # a per-try retry refused is asked for again each tick
                return False
            self.budget_refused = True
            self.engine.metrics.retry_budget_exhausted.inc()
            log.info(
                "retry budget exhausted (%d of %d exchanges on a retry); not retrying",
                budget.retrying,
                budget.active,
                extra={"cluster": self.targets[self.attempt].name},
            )
            return False
        if self.retries == 0:
            budget.retrying += 1
        self.retries += 1
        return True

    def reset_for_retry(self) -> None:
        if self.phase is Phase.SENT:
            assert self.kept is not None
            self.pending = list(self.kept)
            self.pending_size = self.kept_size
            self.phase = Phase.CONNECTING

    def attach(self, conn: UpstreamConnection) -> None:
        engine = self.engine
        self.upstream = conn
        conn.listener = self
        entry = self.request.entry
        if entry.counts_in_flight and self.backend is not None:
            cluster = self.counted = self.cluster
            in_flight = engine.router.in_flight
            in_flight[cluster] = in_flight.get(cluster, 0) + 1
        if entry.meters_rates and self.backend is not None:
            engine.router.meter.record(self.cluster, engine.clock.precise())
        self.upstream_active = self.attempt_since = engine.clock.now
        self.sent_at = engine.clock.precise()
        self.phase = Phase.SENT
        if self.pending:
            conn.write(b"".join((self.request.head, *self.pending)))
            self.pending = []
            self.pending_size = 0
            self.client.set_paused(Pause.PENDING, False)
        else:
            conn.write(self.request.head)

    def _uncount(self) -> None:
        cluster = self.counted
        if cluster is not None:
            self.counted = None
            in_flight = self.engine.router.in_flight
            in_flight[cluster] = in_flight.get(cluster, 1) - 1

    def detach(self) -> UpstreamConnection | None:
        if self.counted is not None:
            self._uncount()
        conn = self.upstream
        self.upstream = None
        if conn is not None:
            conn.listener = None
        return conn

    # --- ports.UpstreamListener ------------------------------------------------------------
    def upstream_read(self, now: float) -> None:
        self.upstream_active = now

    def pause_client(self, on: bool) -> None:
        self.client.set_paused(Pause.UPSTREAM, on)

    def response_head(self, status: int, reason: bytes, headers: list[bytes]) -> None:
        engine = self.engine
        backend = self.backend
        assert backend is not None
        if status < 200:
            if status == 101 and self.request.upgrade:
                if not _valid_switch(headers, self.request.websocket_accept):
                    log.info("%s answered a WebSocket handshake with an invalid 101", backend.cluster)
                    engine.router.record_request(backend, failed=True)
                    self.fail(502, "backend's 101 is not a WebSocket handshake answer")
                    return
                self.phase = Phase.SWITCHING
                self.client.write(self.render_head(status, reason, headers, body=False))
            elif status != 101 and self.request.http11:
                self.client.write(b"HTTP/1.1 %d %b\r\n\r\n" % (status, reason))
            return
        router = engine.router
        if status >= 500 or router.failing:  # success with nothing on record changes nothing
            router.record_request(backend, failed=status >= 500)
        if (
            status in RETRY_STATUSES
            and self.retryable()
            and self.attempt + 1 < len(self.targets)
            and self._budget_allows()
        ):
            log.info("%s answered %d; retrying on the next cluster", backend.cluster, status)
            conn = self.detach()
            if conn is not None:
                conn.close()
            self._retry()
            return
        elapsed = engine.clock.precise() - self.sent_at
        engine.tallies.observe_latency(self.cluster, elapsed)
        engine.router.record_latency(backend, elapsed)
        self.resp_status = status
        self.phase = Phase.RESPONDING
        no_body = self.request.is_head or status in (204, 304)
        self.client.write(self.render_head(status, reason, headers, body=not no_body))
        if self.request.is_head:
            # llhttp cannot be told that a HEAD response has no body: finish here, never reuse.
            conn = self.detach()
            if conn is not None:
                conn.close()
            self.finish(reusable=None)

    def render_head(self, status: int, reason: bytes, headers: list[bytes], *, body: bool) -> bytes:
        """The response head for the client; ``headers`` flat, as ``response_head`` has them."""
        header_actions = _RESPONSE_NAMES
        # Headers the backend's Connection header names are hop-by-hop too (RFC 9110 7.6.1): known
        # before anything is written (only a name ten letters long can be Connection).
        drop: frozenset[bytes] | None = None
        for i in range(0, len(headers), 2):
            name = headers[i]
            if len(name) == 10 and header_actions.action(name) == _CONNECTION:
                extra = connection_names(headers[i + 1]) - _GONE
                if extra:
                    drop = extra if drop is None else drop | extra
        # Written straight into one reused buffer (ADR 0020): nothing here yields.
        out = _HEAD
        out.truncate(0)
        out.write(_status_line(status, reason))
        length: bytes | None = None
        framed_chunked = False
        via: bytes | None = None
        upgrade: bytes | None = None
        request = self.request
        modifiers = request.response_headers
        kept: list[tuple[bytes, bytes]] | None = [] if modifiers else None
        for i in range(0, len(headers), 2):
            name = headers[i]
            value = headers[i + 1]
            action = header_actions.action(name)
            if action == PASS:
                if drop is not None and name.lower() in drop:
                    continue
                if kept is not None:
                    kept.append((name, value))
                else:
                    out.write(name)
                    out.write(b": ")
                    out.write(value)
                    out.write(b"\r\n")
            elif action == _LENGTH:
                length = value
            elif action == _TE:
                framed_chunked = True
            elif action == _VIA:
                via = value
            elif action == _UPGRADE:
                upgrade = value
        if kept is not None:
            # HTTPRoute ResponseHeaderModifier: after hop-by-hop removal, before our own headers.
            for name, value in modified_headers(kept, modifiers):
                if drop is None or name.lower() not in drop:
                    out.write(name)
                    out.write(b": ")
                    out.write(value)
                    out.write(b"\r\n")
        engine = self.engine
        backend = self.backend
        if backend is not None:
            out.write(engine.cluster_line(self.cluster))
        out.write(b"Via: %b, %b\r\n" % (via, engine.via) if via else engine.via_line)
        client = self.client
        if client.response_headers:
            out.write(client.response_headers)
        cookie = request.entry.affinity_cookie
        if cookie and backend is not None and self.cluster != request.affinity:
            # Session affinity: later requests carry the serving cluster back to us.
            out.write(
                b"Set-Cookie: %b=%b; Path=/; HttpOnly; SameSite=Lax\r\n"
                % (cookie.encode(), backend.cluster.encode())
            )
        if self.phase is Phase.SWITCHING:
            out.write(b"Connection: upgrade\r\nUpgrade: %b\r\n\r\n" % (upgrade or b"websocket"))
            return out.getvalue()
        if length is not None:
            out.write(b"Content-Length: ")
            out.write(length)
            out.write(b"\r\n")
        elif body and status not in (204, 304) and not (100 <= status < 200):
            if request.http11:
                self.framing = (
                    ResponseFraming.CHUNKED if framed_chunked else ResponseFraming.CHUNKED_UNTIL_EOF
                )
                out.write(b"Transfer-Encoding: chunked\r\n")
            else:
                self.framing = ResponseFraming.AS_IS if framed_chunked else ResponseFraming.UNTIL_EOF
                self.close_after = True  # HTTP/1.0 client: the body ends when we close
        if request.upgrade or engine.registry.draining:
            self.close_after = True
        if self.close_after:
            out.write(b"Connection: close\r\n\r\n")
        elif not request.http11:
            out.write(b"Connection: keep-alive\r\n\r\n")
        else:
            out.write(b"\r\n")
        return out.getvalue()

    def response_body(self, data: bytes) -> None:
        framing = self.framing
        if framing is ResponseFraming.AS_IS or framing is ResponseFraming.UNTIL_EOF:
            self.client.write(data)
        else:
            self.client.write(b"%x\r\n%b\r\n" % (len(data), data))

    def response_complete(self, keep_alive: bool) -> None:
        framing = self.framing
        if framing is ResponseFraming.CHUNKED or framing is ResponseFraming.CHUNKED_UNTIL_EOF:
            self.client.write(b"0\r\n\r\n")
        # A backend that answered before the request body ended has bytes of it still owed:
        # that connection can never carry another request.
        reusable = keep_alive and self.request_phase is RequestPhase.COMPLETE and not self.request.upgrade
        conn = self.detach()
        self.finish(reusable=conn if reusable else None)
        if not reusable and conn is not None:
            conn.close()

    def upstream_upgraded(self, tail: bytes) -> None:
        conn = self.detach()
        if self.phase is not Phase.SWITCHING or conn is None:
            if conn is not None:
                conn.close()
            self.fail(502, "backend switched protocols unasked")
            return
        self.engine.tallies.count_request(self.cluster if self.backend is not None else "", 101)
        self._end()
        self.client.start_tunnel(conn, tail, self)

    def upstream_lost(self) -> None:
        """The backend closed while this exchange used the connection."""
        conn = self.upstream
        self.upstream = None
        self._uncount()
        if self.done:
            return
        if self.response_started:
            if self.framing in _UNTIL_EOF:
                if self.framing in _CHUNKED_OUT:
                    self.client.write(b"0\r\n\r\n")
                self.finish(reusable=None)  # a close-delimited body: EOF is its end
            else:
                self.client.abort()
            return
        backend = self.backend
        reused = conn is not None and conn.reused
        if reused and not self.retried_fresh and (self.phase is Phase.CONNECTING or self.retryable()):
            # A kept-alive connection the backend had already given up on: try once on a fresh one.
            self.retried_fresh = True
            self.reset_for_retry()
            self.try_current(fresh=True)
            return
        if backend is not None:
            self.engine.router.record_request(backend, failed=True)
        self.next_attempt(status=502, detail="backend closed the connection")

    def upstream_failed(self, detail: str) -> None:
        self.upstream = None
        self._uncount()
        if self.response_started:
            self.client.abort()
            return
        self.fail(502, detail)

    def check_timeout(self, now: float, read_timeout: float) -> None:
        if self.client.send_blocked():
            self.upstream_active = now  # waiting on a slow client is not the backend's silence
            return
        upstream = self.upstream
        if upstream is None:
            return
        per_try = self.engine.settings.timeouts.per_try
        if (
            self.phase is Phase.SENT
            and now - self.attempt_since > per_try
            and self.attempt + 1 < len(self.targets)
            and self.retryable()
            # Over budget, this attempt goes on (as for a request that cannot be retried) and the
            # next tick asks again: a tick's per-try timeouts all come due before any retry made
            # in it can finish, so refusing meant a 504 for a retry the budget had room for later.
            and self._budget_allows()
        ):
            self._per_try_timeout(now)
            return
        if now - self.upstream_active > read_timeout:
            conn = self.detach()
            if conn is not None:
                conn.abort()
            if self.backend is not None:
                self.engine.router.record_request(self.backend, failed=True)
            if self.response_started:
                self.client.abort()
            else:
                self.fail(504, "backend did not answer in time")

    def _per_try_timeout(self, now: float) -> None:
        """No response byte within the per-try time: a hung backend. Count it against the backend
        (consecutive timeouts and its latency eject it) and move to the next-ranked cluster."""
        engine = self.engine
        backend = self.backend
        conn = self.detach()
        if conn is not None:
            conn.abort()
        if backend is not None:
            elapsed = now - self.attempt_since
            engine.metrics.per_try_timeouts.labels(backend.cluster).inc()
            log.info(
                "%s:%s of %s sent no response byte in %.1fs; trying the next cluster",
                backend.host,
                backend.port,
                backend.cluster,
                elapsed,
                extra={"cluster": backend.cluster},
            )
            engine.router.record_latency(backend, elapsed)
            engine.router.record_request(backend, failed=True)
        self._retry()  # check_timeout had the budget's leave

    # --- endings ---------------------------------------------------------------------------
    def fail(self, status: int, detail: str, *, extra: bytes = b"") -> None:
        if self.done:
            return
        conn = self.detach()
        if conn is not None:
            conn.abort()
        if self.response_started:
            self.client.abort()
            return
        # A request whose body we did not read to the end leaves the connection unusable.
        close = (
            self.close_after
            or self.request_phase is not RequestPhase.COMPLETE
            or self.engine.registry.draining
        )
        self.close_after = close
        self.resp_status = status
        self.client.write(local_response(status, close=close, detail=detail, extra=extra))
        self.finish(reusable=None)

    def finish(self, *, reusable: UpstreamConnection | None) -> None:
        if self.done:
            return
        responded = self.response_started
        self._end()
        engine = self.engine
        engine.tallies.count_request(
            self.cluster if self.backend is not None and responded else "", self.resp_status
        )
        if reusable is not None:
            engine.pool.put(reusable)
        self.client.exchange_finished(self)

    def _end(self) -> None:
        if self.phase is not Phase.QUEUED and self.phase is not Phase.DONE:
            budget = self.engine.budget
            budget.active -= 1
            if self.retries:
                budget.retrying -= 1
        self.phase = Phase.DONE

    def abandon(self) -> None:
        """The client went away."""
        self._end()
        conn = self.detach()
        if conn is not None:
            conn.abort()
        if self.connecting is not None:
            self.connecting = None  # its result goes back to the pool
