"""The client side of the data path: an asyncio protocol per client connection (HTTP/1.1 with
httptools) and the Exchange that carries one request to a backend and its response back.

Bodies are streamed in both directions with transport flow control; nothing is buffered whole.
The request parser is strict (llhttp): conflicting framing, bad chunk sizes, obs-fold and bare LF
are parse errors answered with 400 before anything is forwarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from http import HTTPStatus
from typing import cast

import httptools

from ingressfed.model import Backend, Location
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.table import ClusterTarget, RouteEntry, normalize_host
from ingressfed.proxy.upstream import UpstreamConnection

__all__ = ["ClientConnection", "Exchange"]

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 7.6.1) plus legacy ones; Proxy-* are matched by prefix.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection"}
)
_REQUEST_SPECIAL = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"forwarded",
    b"via",
}
_RESPONSE_SPECIAL = HOP_BY_HOP | {b"content-length", b"via"}
_DOT_SEGMENT = frozenset({b".", b"..", b"%2e", b"%2e%2e", b".%2e", b"%2e."})
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
_PENDING_LIMIT = 256 * 1024  # unsent request body held before the upstream is ready


class Reject(Exception):
    """A request answered by the proxy itself; raised inside parser callbacks."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


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


class Exchange:
    """One request and its response; tried on one backend after another until one answers."""

    __slots__ = (
        "attempt",
        "backend",
        "body_bytes",
        "chunked",
        "client",
        "client_http11",
        "close_after",
        "connecting",
        "done",
        "entry",
        "forwarded_for",
        "head",
        "idempotent",
        "is_head",
        "keep_alive",
        "kept",
        "kept_size",
        "pending",
        "pending_size",
        "request_done",
        "resp_chunked",
        "resp_status",
        "resp_until_eof",
        "response_started",
        "retried_fresh",
        "sent_any",
        "sent_at",
        "switching",
        "targets",
        "upgrade",
        "upstream",
        "upstream_active",
    )

    def __init__(
        self,
        client: ClientConnection,
        *,
        head: bytes,
        entry: RouteEntry,
        keep_alive: bool,
        client_http11: bool,
        idempotent: bool,
        is_head: bool,
        chunked: bool,
        upgrade: bool,
    ) -> None:
        self.client = client
        self.head = head
        self.entry = entry
        self.keep_alive = keep_alive
        self.client_http11 = client_http11
        self.idempotent = idempotent
        self.is_head = is_head
        self.chunked = chunked
        self.upgrade = upgrade
        self.targets: tuple[ClusterTarget, ...] = ()
        self.attempt = 0
        self.backend: Backend | None = None
        self.upstream: UpstreamConnection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.kept: list[bytes] | None = []
        self.kept_size = 0
        self.body_bytes = 0
        self.sent_any = False
        self.request_done = False
        self.response_started = False
        self.resp_chunked = False
        self.resp_until_eof = False  # the backend's body ends when it closes the connection
        self.resp_status = 0
        self.close_after = not keep_alive
        self.done = False
        self.switching = False
        self.retried_fresh = False
        self.sent_at = 0.0
        self.upstream_active = 0.0
        # (X-Forwarded-For, Forwarded) from a trusted peer: the client is further away than the peer.
        self.forwarded_for: tuple[bytes | None, bytes | None] | None = None

    # --- request side ----------------------------------------------------------------------
    def send(self, framed: bytes) -> None:
        """Forward (or hold) already-framed request body bytes."""
        kept = self.kept
        if kept is not None:
            self.kept_size += len(framed)
            if self.kept_size > self.client.engine.settings.limits.retry_body_bytes:
                self.kept = None
            else:
                kept.append(framed)
        upstream = self.upstream
        if upstream is not None:
            upstream.write(framed)
            self.sent_any = True
            self.upstream_active = self.client.engine.clock[0]
        else:
            self.pending.append(framed)
            self.pending_size += len(framed)
            if self.pending_size > _PENDING_LIMIT:
                self.client.set_paused(ClientConnection.PAUSE_PENDING, True)

    def body(self, data: bytes) -> None:
        self.body_bytes += len(data)
        if self.body_bytes > self.client.engine.settings.limits.max_body_bytes:
            raise Reject(413)
        if self.chunked:
            self.send(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.send(data)

    def complete(self) -> None:
        self.request_done = True
        if self.chunked:
            self.send(b"0\r\n\r\n")

    def retryable(self) -> bool:
        return (
            self.idempotent
            and self.request_done
            and not self.upgrade
            and not self.response_started
            and (not self.sent_any or self.kept is not None)
        )

    # --- dispatch --------------------------------------------------------------------------
    def start(self) -> None:
        engine = self.client.engine
        self.targets = engine.targets(self.entry, self.client.location_for(self))
        if not self.targets:
            self.fail(503, "no healthy cluster serves this route", extra=b"Retry-After: 5\r\n")
            return
        self.attempt = 0
        self.try_current(fresh=False)

    def try_current(self, *, fresh: bool) -> None:
        engine = self.client.engine
        while self.attempt < len(self.targets):
            backend = engine.pick(self.targets[self.attempt])
            if backend is not None:
                break
            self.attempt += 1
        else:
            self.fail(503, "no healthy backend left", extra=b"Retry-After: 5\r\n")
            return
        self.backend = backend
        conn = None if fresh else engine.pool.take((backend.host, backend.port))
        if conn is not None:
            self.attach(conn)
        else:
            task = asyncio.get_running_loop().create_task(self._connect(backend))
            # The loop keeps only weak references to tasks; the engine keeps this one alive.
            engine.connecting.add(task)
            task.add_done_callback(engine.connecting.discard)
            self.connecting = task

    async def _connect(self, backend: Backend) -> None:
        engine = self.client.engine
        try:
            conn = await engine.pool.connect((backend.host, backend.port))
        except (OSError, TimeoutError) as exc:
            self.connecting = None
            if self.done:
                return
            engine.record_request(backend, failed=True)
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
        nothing_sent = not self.sent_any
        safe = (nothing_sent or self.retryable()) and not self.response_started
        if safe and self.attempt + 1 < len(self.targets):
            self.client.engine.metrics.retries.labels(self.targets[self.attempt].name).inc()
            self.attempt += 1
            self.reset_for_retry()
            self.try_current(fresh=False)
            return
        self.fail(status, detail)

    def reset_for_retry(self) -> None:
        if self.sent_any:
            assert self.kept is not None
            self.pending = list(self.kept)
            self.pending_size = self.kept_size
            self.sent_any = False

    def attach(self, conn: UpstreamConnection) -> None:
        engine = self.client.engine
        self.upstream = conn
        conn.exchange = self
        now = engine.clock[0]
        self.upstream_active = now
        self.sent_at = engine.loop_time()
        if self.pending:
            conn.write(b"".join((self.head, *self.pending)))
            self.pending = []
            self.pending_size = 0
            self.client.set_paused(ClientConnection.PAUSE_PENDING, False)
        else:
            conn.write(self.head)
        self.sent_any = True

    def detach(self) -> UpstreamConnection | None:
        conn = self.upstream
        self.upstream = None
        if conn is not None:
            conn.exchange = None
        return conn

    # --- response side (called by UpstreamConnection) --------------------------------------
    def response_head(self, conn: UpstreamConnection) -> None:
        engine = self.client.engine
        status = conn.status
        backend = self.backend
        assert backend is not None
        if status < 200:
            if status == 101 and self.upgrade:
                self.switching = True
                self.client.write(self.render_head(conn, body=False))
            elif status != 101 and self.client_http11:
                self.client.write(b"HTTP/1.1 %d %b\r\n\r\n" % (status, conn.reason))
            return
        engine.record_request(backend, failed=status >= 500)
        if status in RETRY_STATUSES and self.retryable() and self.attempt + 1 < len(self.targets):
            log.info("%s answered %d; retrying on the next cluster", backend.cluster, status)
            self.detach()
            conn.close()
            self.next_attempt(status=502, detail="")
            return
        engine.metrics.observe_latency(backend.cluster, engine.loop_time() - self.sent_at)
        self.resp_status = status
        self.response_started = True
        no_body = self.is_head or status in (204, 304)
        self.client.write(self.render_head(conn, body=not no_body))
        if self.is_head:
            # llhttp cannot be told that a HEAD response has no body: finish here, never reuse.
            self.detach()
            conn.close()
            self.finish(reusable=None)

    def render_head(self, conn: UpstreamConnection, *, body: bool) -> bytes:
        parts = [b"HTTP/1.1 %d %b\r\n" % (conn.status, conn.reason)]
        headers = conn.headers
        named: set[bytes] = set()
        length: bytes | None = None
        framed_chunked = False
        via: bytes | None = None
        upgrade: bytes | None = None
        kept: list[tuple[bytes, bytes, bytes]] = []
        for name, value in headers:
            lname = name.lower()
            if lname not in _RESPONSE_SPECIAL and not lname.startswith(b"proxy-"):
                kept.append((lname, name, value))
            elif lname == b"content-length":
                length = value
            elif lname == b"transfer-encoding":
                framed_chunked = True
            elif lname == b"connection":
                named |= _tokens(value)
            elif lname == b"via":
                via = value
            elif lname == b"upgrade":
                upgrade = value
        for lname, name, value in kept:
            if not named or lname not in named:
                parts += (name, b": ", value, b"\r\n")
        settings = self.client.engine.settings
        if settings.cluster_header and self.backend is not None:
            parts.append(b"%b: %b\r\n" % (settings.cluster_header.encode(), self.backend.cluster.encode()))
        parts.append(b"Via: %b, %b\r\n" % (via, self.client.via) if via else b"Via: %b\r\n" % self.client.via)
        if self.switching:
            parts.append(b"Connection: upgrade\r\nUpgrade: %b\r\n\r\n" % (upgrade or b"websocket"))
            return b"".join(parts)
        if length is not None:
            parts += (b"Content-Length: ", length, b"\r\n")
        elif body and conn.status not in (204, 304) and not (100 <= conn.status < 200):
            self.resp_until_eof = not framed_chunked
            if self.client_http11:
                self.resp_chunked = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.close_after = True  # HTTP/1.0 client: the body ends when we close
        if self.upgrade or self.client.engine.draining:
            self.close_after = True
        if self.close_after:
            parts.append(b"Connection: close\r\n")
        elif not self.client_http11:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def response_body(self, data: bytes) -> None:
        if self.resp_chunked:
            self.client.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.client.write(data)

    def response_complete(self, conn: UpstreamConnection) -> None:
        if conn.status < 200:
            return  # an interim response; the final one follows on the same connection
        if self.resp_chunked:
            self.client.write(b"0\r\n\r\n")
        reusable = conn.parser.should_keep_alive() and self.request_done and not self.upgrade
        self.detach()
        self.finish(reusable=conn if reusable else None)
        if not reusable:
            conn.close()

    def upstream_upgraded(self, conn: UpstreamConnection, tail: bytes) -> None:
        if not self.switching:
            self.detach()
            conn.close()
            self.fail(502, "backend switched protocols unasked")
            return
        self.client.engine.metrics.count_request(self.backend.cluster if self.backend else "", 101)
        self.detach()
        self.client.start_tunnel(conn, tail, self)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """The backend closed while this exchange used the connection."""
        self.upstream = None
        if self.done:
            return
        if self.response_started:
            if self.resp_until_eof:
                if self.resp_chunked:
                    self.client.write(b"0\r\n\r\n")
                self.finish(reusable=None)  # a close-delimited body: EOF is its end
            else:
                self.client.abort()
            return
        backend = self.backend
        if conn.reused and not self.retried_fresh and (not self.sent_any or self.retryable()):
            # A kept-alive connection the backend had already given up on: try once on a fresh one.
            self.retried_fresh = True
            self.reset_for_retry()
            self.try_current(fresh=True)
            return
        if backend is not None:
            self.client.engine.record_request(backend, failed=True)
        self.next_attempt(status=502, detail="backend closed the connection")

    def upstream_failed(self, conn: UpstreamConnection, detail: str) -> None:
        if self.response_started:
            self.client.abort()
            return
        self.fail(502, detail)

    def check_timeout(self, now: float, read_timeout: float) -> None:
        if self.client.writing_paused:
            self.upstream_active = now  # waiting on a slow client is not the backend's silence
            return
        if self.upstream is not None and now - self.upstream_active > read_timeout:
            conn = self.detach()
            if conn is not None:
                conn.abort()
            if self.backend is not None:
                self.client.engine.record_request(self.backend, failed=True)
            if self.response_started:
                self.client.abort()
            else:
                self.fail(504, "backend did not answer in time")

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
        close = self.close_after or not self.request_done or self.client.engine.draining
        self.close_after = close
        self.resp_status = status
        self.client.write(local_response(status, close=close, detail=detail, extra=extra))
        self.finish(reusable=None)

    def finish(self, *, reusable: UpstreamConnection | None) -> None:
        if self.done:
            return
        self.done = True
        engine = self.client.engine
        backend = self.backend
        engine.metrics.count_request(
            backend.cluster if backend and self.response_started else "", self.resp_status
        )
        if reusable is not None:
            engine.pool.put(reusable)
        self.client.exchange_finished(self)

    def abandon(self) -> None:
        """The client went away."""
        self.done = True
        conn = self.detach()
        if conn is not None:
            conn.abort()
        if self.connecting is not None:
            self.connecting = None  # its result goes back to the pool


class ClientConnection(asyncio.Protocol):
    PAUSE_PIPELINE = 1
    PAUSE_UPSTREAM = 2
    PAUSE_PENDING = 4

    def __init__(self, engine: Engine, via: bytes) -> None:
        self.engine = engine
        self.via = via
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.peer_trusted = False
        self.peer_located = False
        self.peer_location: Location | None = None
        self.exchanges: deque[Exchange] = deque()
        self.parsing: Exchange | None = None
        self.last_active = engine.clock[0]
        self.closed = False
        self.final: bytes | None = None  # a rejection waiting for earlier responses to go out
        self.paused = 0
        self.writing_paused = False
        self.tunnel: UpstreamConnection | None = None
        self.corked: list[bytes] | None = None
        self.upgrading: Exchange | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._in_head = False
        self._head_raw = 0
        self._max_head = engine.settings.limits.max_header_bytes

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        if self.peer.startswith("::ffff:") and "." in self.peer:
            self.peer = self.peer[7:]
        self.peer_trusted = self.engine.has_trusted and self.engine.trusted.trusts(self.peer)
        self.engine.clients.add(self)
        self.engine.metrics.active_connections.inc()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.upgrading is not None:
            self.upgrading.send(data)
            return
        if self.final is not None or self.closed:
            return
        self.last_active = self.engine.clock[0]
        if self._in_head:
            self._head_raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            tail = data[upgrade.args[0] :]
            exchange = self.parsing
            if exchange is not None and exchange.upgrade:
                self.upgrading = exchange
                if tail:
                    exchange.send(tail)
            else:
                self.reject(400, "unexpected protocol upgrade")
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, Reject):
                self.reject(cause.status, cause.detail)
                return
            raise
        except httptools.HttpParserError as exc:
            self.reject(400, str(exc))
            return
        if self._in_head and self._head_raw > self._max_head:
            self.reject(431)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine.clients.discard(self)
        if not self.engine.clients:
            self.engine.no_clients.set()
        self.engine.metrics.active_connections.dec()
        tunnel = self.tunnel
        if tunnel is not None:
            self.tunnel = None
            tunnel.tunnel = None
            tunnel.close()
        for exchange in self.exchanges:
            exchange.abandon()
        self.exchanges.clear()

    def eof_received(self) -> bool:
        """The client half-closed: answer the complete requests already received, then close."""
        if self.exchanges and self.tunnel is None and self.exchanges[-1].request_done and not self.closed:
            for exchange in self.exchanges:
                exchange.close_after = True
            return True
        return False

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._upstream_reading(False)

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._upstream_reading(True)

    def _upstream_reading(self, on: bool) -> None:
        conn = self.tunnel
        if conn is None and self.exchanges:
            conn = self.exchanges[0].upstream
        if conn is not None and conn.transport is not None and not conn.closed:
            if on:
                conn.transport.resume_reading()
            else:
                conn.transport.pause_reading()

    # --- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._in_head = True
        self._head_raw = 0
        self.parsing = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self._max_head:
            raise Reject(431 if len(self._url) < 8192 else 414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._max_head:
            raise Reject(431)

    def on_headers_complete(self) -> None:
        self._in_head = False
        exchange = self.build_exchange()
        self.parsing = exchange
        self.exchanges.append(exchange)
        if len(self.exchanges) == 1:
            exchange.start()
        else:
            self.set_paused(self.PAUSE_PIPELINE, True)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.complete()

    # --- request validation and the upstream head ------------------------------------------
    def build_exchange(self) -> Exchange:
        parser = self.parser
        method = parser.get_method()
        if method == b"CONNECT":
            raise Reject(405, "CONNECT is not supported")
        http11 = parser.get_http_version() == "1.1"
        host: bytes | None = None
        length: bytes | None = None
        te: bytes | None = None
        xff: bytes | None = None
        forwarded: bytes | None = None
        xfp: bytes | None = None
        xfh: bytes | None = None
        via: bytes | None = None
        upgrade: bytes | None = None
        named: set[bytes] = set()
        out: list[bytes] = []
        for name, value in self._headers:
            lname = name.lower()
            if lname not in _REQUEST_SPECIAL and not lname.startswith(b"proxy-"):
                out += (name, b": ", value, b"\r\n")
                continue
            if lname == b"host":
                if host is not None:
                    raise Reject(400, "more than one Host header")
                host = value
            elif lname == b"content-length":
                length = value
            elif lname == b"transfer-encoding":
                if te is not None:
                    raise Reject(400, "more than one Transfer-Encoding header")
                te = value
            elif lname == b"connection":
                named |= _tokens(value)
            elif lname == b"x-forwarded-for":
                xff = value if xff is None else xff + b", " + value
            elif lname == b"forwarded":
                forwarded = value if forwarded is None else forwarded + b", " + value
                out += (name, b": ", value, b"\r\n")
            elif lname == b"x-forwarded-proto":
                xfp = value
            elif lname == b"x-forwarded-host":
                xfh = value
            elif lname == b"via":
                via = value if via is None else via + b", " + value
            elif lname == b"upgrade":
                upgrade = value
        if named:
            kept: list[bytes] = []
            for i in range(0, len(out), 4):
                if out[i].lower() not in named:
                    kept += out[i : i + 4]
            out = kept

        url = self._url
        if url.startswith(b"/") or (url == b"*" and method == b"OPTIONS"):
            target = url
        else:
            lowered = url[:8].lower()
            if lowered.startswith(b"http://") or lowered.startswith(b"https://"):
                rest = url[url.index(b"//") + 2 :]
                cut = len(rest)
                for sep in (b"/", b"?", b"#"):
                    found = rest.find(sep)
                    if 0 <= found < cut:
                        cut = found
                authority, target = rest[:cut], rest[cut:]
                if b"@" in authority:
                    raise Reject(400, "userinfo in request target")
                if not target.startswith(b"/"):
                    target = b"/" + target
                host = authority  # RFC 9112 3.2.2: the authority replaces Host
            else:
                raise Reject(400, "request target must be origin-form or absolute-form")
        if host is None:
            raise Reject(400, "missing Host header")
        hostname = normalize_host(host.decode("latin-1"))
        if not hostname:
            raise Reject(400, "invalid Host header")

        if te is not None:
            if not http11:
                raise Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
            if te.strip().lower() != b"chunked":
                raise Reject(400, "only Transfer-Encoding: chunked is accepted")
        limits = self.engine.settings.limits
        if length is not None and int(length) > limits.max_body_bytes:
            raise Reject(413)
        raw_path = target.split(b"?", 1)[0]
        lowered = raw_path.lower() if b"%" in raw_path else raw_path
        if (b"." in raw_path or b"%2e" in lowered) and not _DOT_SEGMENT.isdisjoint(lowered.split(b"/")):
            # "/api/../admin" would match the /api route and reach /admin behind it.
            raise Reject(400, "dot-segments in the request path")
        path = raw_path.decode("latin-1")
        entry = self.engine.table.lookup(hostname, path)
        if entry is None:
            raise Reject(404, "no route for this host and path")

        is_upgrade = self.parser.should_upgrade() and upgrade is not None
        peer = self.peer
        out += (b"X-Forwarded-For: ", xff + b", " + peer.encode() if xff else peer.encode(), b"\r\n")
        trusted = self.peer_trusted
        out += (b"X-Forwarded-Proto: ", xfp if trusted and xfp else b"http", b"\r\n")
        out += (b"X-Forwarded-Host: ", xfh if trusted and xfh else host, b"\r\n")
        out += (b"Via: ", via + b", " + self.via if via else self.via, b"\r\n")
        if te is not None:
            out.append(b"Transfer-Encoding: chunked\r\n")
        elif length is not None:
            out += (b"Content-Length: ", length, b"\r\n")
        if is_upgrade:
            assert upgrade is not None
            out += (b"Connection: upgrade\r\nUpgrade: ", upgrade, b"\r\n")
        head = b"".join((method, b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n", *out, b"\r\n"))
        exchange = Exchange(
            self,
            head=head,
            entry=entry,
            keep_alive=parser.should_keep_alive() and not is_upgrade,
            client_http11=http11,
            idempotent=method in IDEMPOTENT,
            is_head=method == b"HEAD",
            chunked=te is not None,
            upgrade=is_upgrade,
        )
        if trusted and (xff is not None or forwarded is not None):
            exchange.forwarded_for = (xff, forwarded)
        return exchange

    def location_for(self, exchange: Exchange) -> Location | None:
        engine = self.engine
        hint = exchange.forwarded_for
        if hint is not None:
            return engine.locate_forwarded(self.peer, hint[0], hint[1])
        if not self.peer_located:
            self.peer_location = engine.locate(self.peer)
            self.peer_located = True
        return self.peer_location

    # --- writing and endings ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        corked = self.corked
        if corked is not None:
            corked.append(data)
        elif self.transport is not None and not self.closed:
            self.transport.write(data)

    def cork(self) -> None:
        """Hold writes until ``uncork``: a response head and a small body leave in one send()."""
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        corked = self.corked
        self.corked = None
        if corked and self.transport is not None and not self.closed:
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def set_paused(self, reason: int, on: bool) -> None:
        before = self.paused
        self.paused = before | reason if on else before & ~reason
        if self.transport is None or self.closed or bool(before) == bool(self.paused):
            return
        if self.paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def reject(self, status: int, detail: str = "") -> None:
        """Answer the request being parsed ourselves, then close: after a framing error
        nothing later on this connection can be trusted."""
        self.engine.metrics.count_request("", status)
        if status == 400:
            log.info("rejected request from %s: %s", self.peer, detail)
        response = local_response(status, close=True, detail=detail if status != 400 else "bad request")
        parsing = self.parsing
        if parsing is not None and not parsing.done and parsing in self.exchanges:
            if parsing.response_started:
                self.abort()  # too late for a status line: the response is already on its way
                return
            self.exchanges.remove(parsing)
            parsing.abandon()
        if self.exchanges:
            self.final = response
            self.set_paused(self.PAUSE_PIPELINE, True)
            return
        self.write(response)
        self.close()

    def exchange_finished(self, exchange: Exchange) -> None:
        if self.exchanges and self.exchanges[0] is exchange:
            self.exchanges.popleft()
        if exchange.close_after or self.closed or self.engine.draining:
            self.close()
            return
        if self.final is not None and not self.exchanges:
            self.write(self.final)
            self.close()
            return
        if self.exchanges:
            self.set_paused(self.PAUSE_PIPELINE, len(self.exchanges) > 1)
            self.exchanges[0].start()
        else:
            self.set_paused(self.PAUSE_PIPELINE, False)
            self.last_active = self.engine.clock[0]

    def start_tunnel(self, conn: UpstreamConnection, tail: bytes, exchange: Exchange) -> None:
        self.tunnel = conn
        conn.tunnel = self
        self.upgrading = None
        if self.exchanges and self.exchanges[0] is exchange:
            self.exchanges.popleft()
        exchange.done = True
        if tail:
            self.write(tail)
        self.set_paused(self.PAUSE_PIPELINE, False)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.uncork()
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def check_timeouts(self, now: float) -> None:
        timeouts = self.engine.settings.timeouts
        if self.tunnel is not None:
            return
        if self.exchanges:
            self.exchanges[0].check_timeout(now, timeouts.read)
        elif now - self.last_active > (timeouts.idle if not self.engine.draining else 0):
            self.close()
