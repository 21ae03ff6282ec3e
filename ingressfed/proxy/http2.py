"""The HTTP/2 codec of the client side (h2, sans-I/O), beside ``http1``.

Each client stream becomes a ``request.RequestHead`` and, through the same pure ``request.prepare``,
an ``exchange.Exchange`` to an HTTP/1.1 backend from the shared pool: routing, header rules, limits,
retries and streaming are the HTTP/1.1 path's own. ``_Stream`` is the exchange's
``ports.Downstream``: it takes the HTTP/1.1 response bytes the exchange renders, turns the head into
HTTP/2 headers and sends the body within the client's flow-control window, pausing the backend
while the window is shut.

Protections (``Http2Settings``), each counted in ``ingressfed_proxy_http2_refusals{reason}``:
- concurrent streams: SETTINGS_MAX_CONCURRENT_STREAMS; a client that opens more is cut off;
- rapid reset (CVE-2023-44487): more than ``max_resets`` client resets per ``reset_window``
  ends the connection with GOAWAY ENHANCE_YOUR_CALM;
- CONTINUATION flood (CVE-2024-27316): a header block of more than ``max_header_frames`` frames,
  or more encoded bytes than ``max_header_list_bytes``, ends the connection;
- HPACK bomb: the decoded header list is capped at ``max_header_list_bytes`` (SETTINGS and the
  decoder), so a small block expanding from the dynamic table is refused;
- SETTINGS/PING/WINDOW_UPDATE/empty-frame floods: more than ``max_control_frames`` per
  ``control_window`` ends the connection; while our own writes are backed up we stop reading, so
  acknowledgements a client never reads cannot pile up;
- zero-window stalls: a response the client leaves at a zero window for ``stall_timeout`` is
  reset and its backend connection released;
- malformed requests (RFC 9113 8.1.1, 8.2, 8.3: ``request_head`` checks a block in the same pass
  that translates it, instead of h2's chain of generators, which cost a tenth of a request): the
  stream is reset with PROTOCOL_ERROR, nothing reaches a backend, and each counts against
  ``max_resets`` like a client reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Sequence
from http import HTTPStatus
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from prometheus_client import CollectorRegistry, Counter

from ingressfed.model import Location
from ingressfed.proxy.deadlines import BodyWindow
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.exchange import BodyTooLarge, Exchange
from ingressfed.proxy.hpack_in import MemoDecoder
from ingressfed.proxy.hpack_out import SIZE_ZERO, StatelessEncoder, encode_block, encode_cached, encode_field
from ingressfed.proxy.ports import Downstream, TunnelPeer
from ingressfed.proxy.request import Forward, Peer, RequestHead, prepare
from ingressfed.tls.settings import Http2Settings

__all__ = ["H2ClientConnection", "H2Metrics", "request_head"]

log = logging.getLogger(__name__)

_STREAM_BUFFER = 256 * 1024  # response bytes held per stream before its backend is paused
# Connection-specific fields HTTP/2 forbids (RFC 9113 8.2.2); the exchange may render some of them.
_CONNECTION_FIELDS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)


class H2Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refusals = Counter(
            "ingressfed_proxy_http2_refusals",
            "HTTP/2 connections or streams cut by a protection, by reason",
            ["reason"],
            registry=registry,
        )
        self.connections = Counter(
            "ingressfed_proxy_http2_connections", "HTTP/2 client connections accepted", registry=registry
        )


# RFC 9110 5.6.2 token characters, lower case only (RFC 9113 8.2.1: upper case is malformed). h2
# itself allows a few more (quotes, slashes...); they are not valid HTTP/1.1 names for the backend.
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
# Names already found to be tokens: a client repeats the same few in every request, and a set
# lookup costs a fraction of the regular expression's match (emptied when full, like hpack_out's).
_TOKENS: set[bytes] = set()
_TOKENS_MAX = 1024
_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
_FORBIDDEN = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})


def _bad_value(value: bytes) -> bool:
    """RFC 9113 8.2.1: NUL, CR or LF anywhere, or SP/HTAB at either end (``value`` not empty).
    Byte values, not one-byte strings, are looked for: ``13 in value`` is a memchr, ``b"\\r" in
    value`` a substring search costing about 2,000 instructions (callgrind); the regular expression
    with the same alternatives cost about 4,000 a value."""
    if 0 in value or 13 in value or 10 in value:
        return True
    return value[0] in (32, 9) or value[-1] in (32, 9)  # a tuple: mypyc compares, no set lookup


def malformed(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Why a request header block is malformed (RFC 9113 8.1.1, 8.2, 8.3), or None (pure)."""
    found = request_head(headers, ended=True)
    return found if isinstance(found, str) else None


def request_head(headers: Sequence[tuple[bytes, bytes]], *, ended: bool) -> RequestHead | str:
    """An HTTP/2 request's header list as the HTTP/1.1 head ``request.prepare`` reads, or why the
    block is malformed (RFC 9113 8.1.1, 8.2, 8.3), in one pass (pure).

    ``:authority`` becomes ``Host`` (it wins over a ``host`` field, RFC 9113 8.3.1); several
    ``cookie`` fields are joined with "; " (8.2.3); a body without ``content-length`` is marked
    chunked so that the backend's HTTP/1.1 request is framed. CONNECT (and extended CONNECT's
    ``:protocol``) is refused: this proxy tunnels nothing over HTTP/2."""
    seen: set[bytes] = set()
    regular = False
    authority: bytes | None = None
    host: bytes | None = None
    method: bytes | None = None
    path: bytes | None = None
    cookies: list[bytes] = []
    out: list[tuple[bytes, bytes]] = []
    has_length = False
    for name, value in headers:
        if value and _bad_value(value):
            return f"field {name[:64]!r} has a value with NUL, CR, LF or surrounding whitespace"
        if name[:1] == b":":
            if regular:
                return f"pseudo-header {name[:64]!r} after a regular field"
            if name not in _PSEUDO:
                return f"pseudo-header {name[:64]!r} is not one of a request's"
            if name in seen:
                return f"pseudo-header {name!r} twice"
            seen.add(name)
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue
        regular = True
        if name not in _TOKENS:
            if not _NAME.match(name):
                return f"field name {name[:64]!r} is empty, upper case or not a token"
            if len(_TOKENS) >= _TOKENS_MAX:
                _TOKENS.clear()
            _TOKENS.add(name)
        if name in _FORBIDDEN:
            return f"connection-specific field {name!r}"
        if name == b"te" and value.lower() != b"trailers":
            return "te other than trailers"
        if name == b"host":
            if host is not None:
                return "host twice"
            host = value
        elif name == b"cookie":
            cookies.append(value)
        else:
            out.append((name, value))
            has_length = has_length or name == b"content-length"
    if method is None:
        return "no :method"
    if method == b"CONNECT":
        return "CONNECT is not served over HTTP/2 here"
    if b":scheme" not in seen or path is None:
        return "no :scheme or :path"
    if not path:
        return "empty :path"
    if authority is None and host is None:
        return "neither :authority nor host"
    if authority is not None and host is not None and authority != host:
        return ":authority and host differ"
    authority = authority or host
    if authority is not None:
        out.insert(0, (b"host", authority))
    if cookies:
        out.append((b"cookie", b"; ".join(cookies)))
    if not ended and not has_length:
        out.append((b"transfer-encoding", b"chunked"))
    return RequestHead(method=method, target=path, headers=out, http11=True, keep_alive=True, upgrade=False)


def _line_field(line: bytes) -> bytes:
    """One line of an HTTP/1.1 response head as its HTTP/2 field, HPACK-encoded (``hpack_out``):
    the name lower-cased, both ends of name and value stripped; b"" for a line HTTP/2 does not
    carry (a connection-specific field, no name)."""
    name, _, value = line.partition(b":")
    lname = name.strip().lower()
    if not lname or lname in _CONNECTION_FIELDS:
        return b""
    return encode_field(lname, value.strip())


def encode_lines(lines: bytes) -> bytes:
    """CRLF-separated head lines (a listener's added response headers) as encoded fields."""
    return b"".join(_line_field(line) for line in lines.split(b"\r\n") if line)


# Head lines as their encoded field (``_line_field``). An exchange renders the same lines response
# after response (Server, Content-Type, the cluster header, Content-Length of same-sized bodies, the
# Date of this second): a lookup replaces splitting, stripping, lower-casing and encoding each one.
# Emptied when full, so hostile variety costs nothing but the misses.
_LINES: dict[bytes, bytes] = {}
_LINES_MAX = 4096
_LINE_MAX = 320  # longer lines (cookies, long URLs) are rarely repeated: encoded, not kept


# Whole heads as (status, block without the listener's fields). A backend answers the same head
# again and again until its Date moves on: one lookup instead of a split and a lookup per line.
_HEADS: dict[bytes, tuple[bytes, bytes]] = {}
_HEADS_MAX = 256
_HEAD_MAX = 1024


def response_block(head: bytes, extra: bytes) -> tuple[bytes, bytes]:
    """The HTTP/1.1 response head an exchange rendered (without its final CRLF CRLF) as its status
    and the HPACK block of its HTTP/2 fields: ``:status``, the head's fields (``_line_field``), then
    ``extra``, fields encoded already (``encode_lines``) (pure, but for the caches)."""
    known = _HEADS.get(head)
    if known is None:
        known = _head_block(head)
        if len(head) <= _HEAD_MAX:
            if len(_HEADS) >= _HEADS_MAX:
                _HEADS.clear()
            _HEADS[head] = known
    status, block = known
    return status, block + extra if extra else block


def _head_block(head: bytes) -> tuple[bytes, bytes]:
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)[1]
    parts = [SIZE_ZERO, encode_cached(b":status", status)]
    cache = _LINES
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        encoded = cache.get(line)
        if encoded is None:
            encoded = _line_field(line)
            if len(line) <= _LINE_MAX:
                if len(cache) >= _LINES_MAX:
                    cache.clear()
                cache[line] = encoded
        parts.append(encoded)
    return status, b"".join(parts)


class _Stream(Downstream):
    """One HTTP/2 stream as ``ports.Downstream`` of its exchange."""

    __slots__ = (
        "block",
        "blocked_since",
        "body_window",
        "conn",
        "ended",
        "exchange",
        "finished",
        "head",
        "head_sent",
        "out",
        "paused",
        "response_headers",
        "status",
        "stream_id",
        "unacked",
        "upstream_paused",
    )

    def __init__(self, conn: H2ClientConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.exchange: Exchange | None = None
        self.response_headers = b""  # added by response_block instead (HTTP/2 fields)
        self.head = b""
        self.head_sent = False  # the response head was taken (and its block queued in ``block``)
        self.status = b""
        self.block: bytes | None = None  # the HPACK block of HEADERS not sent yet
        self.out = bytearray()
        self.ended = False  # the exchange finished: end the stream once ``out`` is sent
        self.finished = False  # END_STREAM or RST_STREAM sent
        self.paused = 0
        self.unacked = 0  # request body bytes received while paused, acknowledged on resume
        self.blocked_since: float | None = None
        self.upstream_paused = False
        # Request body deadlines, as on HTTP/1.1 (Exchange.check_body)
        self.body_window = BodyWindow(conn.engine.clock.now)

    # --- ports.Downstream ----------------------------------------------------------------------
    def send_blocked(self) -> bool:
        return len(self.out) >= _STREAM_BUFFER or self.conn.writing_paused

    def write(self, data: bytes) -> None:
        if self.finished:
            return
        if not self.head_sent:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, body = self.head[:end], self.head[end + 4 :]
            self.head = b""
            self.head_sent = True
            self.status, self.block = response_block(head, self.conn.response_block)
            data = body
        self.out += data
        # Sent at the end of this loop iteration: a body that ends in the same iteration (most
        # do) goes out with END_STREAM on its last DATA frame, or on HEADERS when it is empty.
        self.conn.mark(self)

    def cork(self) -> None:
        return None  # the connection writes once per loop iteration anyway

    def uncork(self) -> None:
        return None

    def set_paused(self, reason: int, on: bool) -> None:
        self.paused = self.paused | reason if on else self.paused & ~reason
        if not self.paused and self.unacked:
            unacked, self.unacked = self.unacked, 0
            self.conn.acknowledge(self, unacked)

    def abort(self) -> None:
        self.conn.reset(self, ErrorCodes.INTERNAL_ERROR)

    def close(self) -> None:
        self.exchange_finished(None)

    def exchange_finished(self, exchange: object) -> None:
        self.ended = True
        self.conn.mark(self)

    def start_tunnel(self, conn: TunnelPeer, tail: bytes, exchange: object) -> None:
        conn.close()  # requests over HTTP/2 never upgrade (prepare sees upgrade=False)
        self.abort()


class H2ClientConnection(asyncio.Protocol):
    def __init__(
        self, engine: Engine, settings: Http2Settings, *, metrics: H2Metrics, response_headers: bytes = b""
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.response_headers = response_headers
        self.response_block = encode_lines(response_headers)
        self.transport: asyncio.Transport | None = None
        # Outbound fields come from a backend head httptools parsed and response_block lower-cased
        # and stripped of connection fields: h2's per-field re-validation is skipped.
        # Inbound fields are checked and cookies joined by ``request_head`` (one pass per stream),
        # so h2's own inbound validation and normalisation are skipped too.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config)
        self._encoder = StatelessEncoder()
        self.h2.encoder = self._encoder  # type: ignore[assignment]
        self.streams: dict[int, _Stream] = {}
        self.peer = ""
        self.admitted = False  # counted by the registry's connection caps
        self.identity = Peer(address="", scheme=b"https")
        self.location: Location | None = None
        self.located = False
        self.closed = False
        self.writing_paused = False
        self.reading_paused = False
        self.last_active = engine.clock.now
        # timeouts.requestHead: the first request's head is due from the accept, a header block
        # (HEADERS + CONTINUATION) from its first frame; None while no head is awaited.
        self.head_since: float | None = engine.clock.now
        self.resets: deque[float] = deque()
        self.controls: deque[float] = deque()
        self._write_soon = False
        self._dirty: dict[int, _Stream] = {}  # streams with output to send at the next write
        # made by a listener's connection_made, so in the loop (get_running_loop per write-out
        # also cost a getpid() call)
        self._loop = asyncio.get_running_loop()
        self.streams_opened = 0

    @property
    def busy(self) -> bool:
        return bool(self.streams)

    # --- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        if self.peer.startswith("::ffff:") and "." in self.peer:
            self.peer = self.peer[7:]
        engine = self.engine
        self.identity = Peer(address=self.peer, trusted=engine.router.trusts(self.peer), scheme=b"https")
        refused = engine.registry.admit(self, self.peer, exempt=self.identity.trusted)
        if refused is not None:
            # The connection caps (issue 11) cover HTTP/2 connections too.
            engine.metrics.refused_connections.labels(refused).inc()
            log.info("refused an HTTP/2 connection from %s: %s connection cap reached", self.peer, refused)
            self.closed = True
            self.transport.close()
            return
        self.admitted = True
        s = self.settings
        codes = h2.settings.SettingCodes
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                codes.MAX_CONCURRENT_STREAMS: s.max_concurrent_streams,
                codes.MAX_HEADER_LIST_SIZE: s.max_header_list_bytes,
                codes.INITIAL_WINDOW_SIZE: s.initial_window_bytes,
            },
        )
        # The HPACK bomb bound: refuse a block whose *decoded* list is larger, whatever its size on
        # the wire. The decoder remembers repeated heads (hpack_in); the bound applies to each decode.
        self.h2.decoder = MemoDecoder(max_header_list_size=s.max_header_list_bytes)
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(s.initial_window_bytes - 65535)
        engine.metrics.active_connections.inc()
        self.metrics.connections.inc()
        self._write_out()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        now = self.engine.clock.now
        self.last_active = now
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.TooManyStreamsError:
            self._refuse("max_concurrent_streams", None)
            return
        except h2.exceptions.DenialOfServiceError:
            self._refuse("header_list_size", None)
            return
        except h2.exceptions.ProtocolError as exc:
            message = str(exc)
            reason = "continuation_flood" if "continuation" in message.lower() else "protocol_error"
            log.info("HTTP/2 protocol error from %s: %s", self.peer, message)
            self._refuse(reason, None)
            return
        if self._header_block_too_big():
            self._refuse("continuation_flood", ErrorCodes.ENHANCE_YOUR_CALM)
            return
        for event in events:
            if self.closed:
                return
            self._dispatch(event, now)
        if self.h2.incoming_buffer._headers_buffer:
            if self.head_since is None:
                self.head_since = now  # a header block begun: the whole of it is due in time
        elif self.head_since is not None and self.streams_opened:
            self.head_since = None
        self._write_out()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.admitted:
            return
        engine = self.engine
        engine.registry.remove(self, self.peer, exempt=self.identity.trusted)
        engine.metrics.active_connections.dec()
        for stream in self.streams.values():
            if stream.exchange is not None:
                stream.exchange.abandon()
        self.streams.clear()

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._set_reading(False)  # no more frames to acknowledge until the client reads ours

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._set_reading(True)
        for stream in list(self.streams.values()):
            self.flush(stream)

    def _set_reading(self, on: bool) -> None:
        if self.transport is None or self.closed or self.reading_paused == (not on):
            return
        self.reading_paused = not on
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    # --- events ----------------------------------------------------------------------------------
    def _dispatch(self, event: h2.events.Event, now: float) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event.stream_id, event.headers, event.stream_ended)
        elif isinstance(event, h2.events.DataReceived):
            self._data(event, now)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.exchange is not None and not stream.exchange.done:
                stream.exchange.complete()
        elif isinstance(event, h2.events.StreamReset):
            self._client_reset(event.stream_id, now)
        elif isinstance(event, h2.events.WindowUpdated):
            self._control(now)
            if event.stream_id:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    self.flush(stream)
            else:
                for stream in list(self.streams.values()):
                    self.flush(stream)
        elif isinstance(
            event,
            h2.events.PingReceived
            | h2.events.RemoteSettingsChanged
            | h2.events.PriorityUpdated
            | h2.events.UnknownFrameReceived
            | h2.events.SettingsAcknowledged
            | h2.events.PingAckReceived,
        ):
            self._control(now)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.close()

    def _request(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: object) -> None:
        stream = _Stream(self, stream_id)
        self.streams[stream_id] = stream
        self.streams_opened += 1
        head = request_head(headers, ended=ended is not None)
        if isinstance(head, str):
            self.metrics.refusals.labels("malformed_request").inc()
            log.info("HTTP/2 stream %d from %s reset: malformed request: %s", stream_id, self.peer, head)
            self.reset(stream, ErrorCodes.PROTOCOL_ERROR)
            self._client_reset(stream_id, self.engine.clock.now)  # counts against max_resets
            return
        engine = self.engine
        outcome = prepare(
            head,
            peer=self.identity,
            matcher=engine.router.table.for_scheme(self.identity.scheme),
            rules=engine.rules,
        )
        if not isinstance(outcome, Forward):
            self.respond_local(stream, outcome.status, outcome.detail, headers=outcome.headers)
            return
        # The exchange frames the response for an HTTP/1.0-style reader (no chunking): this codec
        # frames bodies itself, and the stream's end is its own signal.
        outcome.http11 = False  # a fresh Forward of this stream's own
        exchange = Exchange(stream, engine, outcome, location=self._location(outcome))
        stream.exchange = exchange
        exchange.start()

    def _data(self, event: h2.events.DataReceived, now: float) -> None:
        data = event.data
        size = event.flow_controlled_length
        if not data:
            self._control(now)  # empty DATA frames cost work and carry nothing
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.exchange is None or stream.exchange.done:
            if size:
                self.h2.acknowledge_received_data(size, event.stream_id)
            return
        stream.body_window.active = now
        try:
            if data:
                stream.exchange.body(data)
        except BodyTooLarge:
            stream.exchange.fail(413, "request body too large")
            return
        if stream.paused:
            stream.unacked += size
        elif size:
            self.h2.acknowledge_received_data(size, event.stream_id)

    def _client_reset(self, stream_id: int, now: float) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            stream.finished = True
            if stream.exchange is not None and not stream.exchange.done:
                stream.exchange.abandon()
        window = self.settings.reset_window
        resets = self.resets
        resets.append(now)
        while resets and now - resets[0] > window:
            resets.popleft()
        if len(resets) > self.settings.max_resets:
            self._refuse("rapid_reset", ErrorCodes.ENHANCE_YOUR_CALM)

    def _control(self, now: float) -> None:
        controls = self.controls
        controls.append(now)
        while controls and now - controls[0] > self.settings.control_window:
            controls.popleft()
        if len(controls) > self.settings.max_control_frames:
            self._refuse("control_flood", ErrorCodes.ENHANCE_YOUR_CALM)

    def _header_block_too_big(self) -> bool:
        # h2 gathers HEADERS + CONTINUATION frames until END_HEADERS (and caps them at 64 itself);
        # this bound is ours, checked after every read.
        pending = self.h2.incoming_buffer._headers_buffer
        if not pending:
            return False
        size = sum(len(f.data) for f in pending)
        return len(pending) > self.settings.max_header_frames or size > self.settings.max_header_list_bytes

    def _location(self, request: Forward) -> Location | None:
        router = self.engine.router
        hint = request.forwarded_for
        if hint is not None:
            return router.locate_forwarded(self.peer, hint)
        if not self.located:
            self.location = router.locate(self.peer)
            self.located = True
        return self.location

    # --- sending -------------------------------------------------------------------------------
    def mark(self, stream: _Stream) -> None:
        """``stream`` has output: flushed by the next ``_write_out`` (this loop iteration's end)."""
        self._dirty[stream.stream_id] = stream
        self._schedule_write()

    def _send_headers(self, stream: _Stream, status: bytes, block: bytes, *, end: bool) -> bool:
        """HEADERS with ``block`` (encoded here: h2 gets it from the encoder, and ``:status`` alone
        as the fields, which is all it reads of a response's once its validation is off)."""
        encoder = self._encoder
        encoder.block = block
        try:
            self.h2.send_headers(stream.stream_id, [(b":status", status)], end_stream=end)
        except h2.exceptions.ProtocolError as exc:
            log.info("HTTP/2 response head for stream %d refused: %s", stream.stream_id, exc)
            self.reset(stream, ErrorCodes.INTERNAL_ERROR)
            return False
        finally:
            encoder.block = None
        return True

    def _finished(self, stream: _Stream) -> None:
        stream.finished = True
        self.streams.pop(stream.stream_id, None)
        self._dirty.pop(stream.stream_id, None)
        if self.engine.registry.draining and not self.streams:
            self.close()

    def respond_local(
        self, stream: _Stream, status: int, detail: str = "", *, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer a stream ourselves (a rejection; an HTTPRoute redirect carries its Location)."""
        phrase = HTTPStatus(status).phrase
        body = f"{status} {phrase}{': ' + detail if detail else ''}\n".encode()
        self.engine.tallies.count_request("", status)
        fields = [
            (b":status", b"%d" % status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            *((name.lower(), value) for name, value in headers),
        ]
        stream.head_sent = True
        stream.status = fields[0][1]
        stream.block = encode_block(fields)
        stream.out += body
        stream.ended = True
        self.flush(stream)

    def flush(self, stream: _Stream) -> None:
        """Send ``stream``'s head and what the window allows of its body; end it when done
        (END_STREAM rides on the last frame that carries something)."""
        if stream.finished or self.closed:
            return
        h2conn = self.h2
        sid = stream.stream_id
        out = stream.out
        block = stream.block
        if block is not None:
            stream.block = None
            empty = stream.ended and not out
            if not self._send_headers(stream, stream.status, block, end=empty):
                return
            if empty:
                self._finished(stream)
                self._pace_upstream(stream)
                self._schedule_write()
                return
        if not self.writing_paused:
            while out:
                window = min(self._window(sid), h2conn.max_outbound_frame_size)
                if window <= 0:
                    break
                last = stream.ended and len(out) <= window
                chunk = bytes(out[:window])
                del out[:window]
                h2conn.send_data(sid, chunk, end_stream=last)
                if last:
                    self._finished(stream)
                    self._pace_upstream(stream)
                    self._schedule_write()
                    return
        if out:
            if stream.blocked_since is None:
                stream.blocked_since = self.engine.clock.now
        else:
            stream.blocked_since = None
            if stream.ended and stream.head_sent:
                h2conn.end_stream(sid)
                self._finished(stream)
        self._pace_upstream(stream)
        self._schedule_write()

    def _window(self, sid: int) -> int:
        """``h2conn.local_flow_control_window(sid)`` read from the same two public attributes
        without its interpreted call; a stream h2 no longer has goes to h2, which raises as before."""
        h2conn = self.h2
        h2stream = h2conn.streams.get(sid)
        if h2stream is None:
            return int(h2conn.local_flow_control_window(sid))
        return min(h2conn.outbound_flow_control_window, h2stream.outbound_flow_control_window)

    def _pace_upstream(self, stream: _Stream) -> None:
        exchange = stream.exchange
        upstream = exchange.upstream if exchange is not None else None
        if upstream is None:
            return
        full = len(stream.out) >= _STREAM_BUFFER
        if full != stream.upstream_paused:
            stream.upstream_paused = full
            upstream.set_reading(not full)

    def acknowledge(self, stream: _Stream, size: int) -> None:
        if stream.finished or self.closed:
            return
        self.h2.acknowledge_received_data(size, stream.stream_id)
        self._schedule_write()

    def reset(self, stream: _Stream, code: ErrorCodes) -> None:
        if stream.finished or self.closed:
            return
        stream.finished = True
        self.streams.pop(stream.stream_id, None)
        self._dirty.pop(stream.stream_id, None)
        exchange = stream.exchange
        if exchange is not None and not exchange.done:
            exchange.abandon()
        self.h2.reset_stream(stream.stream_id, code)
        self._schedule_write()

    def _schedule_write(self) -> None:
        if not self._write_soon and not self.closed:
            self._write_soon = True
            self._loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        if self.transport is None or self.closed:
            self._write_soon = False
            return
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            self._write_soon = True  # what the flushes queue goes out just below
            for stream in dirty.values():
                self.flush(stream)
        self._write_soon = False
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)

    # --- endings ---------------------------------------------------------------------------------
    def _refuse(self, reason: str, code: ErrorCodes | None) -> None:
        """A protection tripped: GOAWAY (h2 has queued one for protocol errors), then close."""
        self.metrics.refusals.labels(reason).inc()
        log.warning("HTTP/2 connection from %s closed: %s", self.peer, reason, extra={"reason": reason})
        if code is not None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection(error_code=code)
        self._write_out()
        self.close()

    def close(self) -> None:
        """Ask the client to stop (GOAWAY NO_ERROR), send what is queued and close."""
        if self.transport is None or self.closed:
            return
        if not self.h2.state_machine.state.name.startswith("CLOSED"):
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
        self._write_out()
        self.closed = True
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def check_timeouts(self, now: float) -> None:
        if self.closed:
            return
        timeouts = self.engine.settings.timeouts
        for stream in list(self.streams.values()):
            exchange = stream.exchange
            if stream.blocked_since is not None and now - stream.blocked_since > self.settings.stall_timeout:
                self.metrics.refusals.labels("stalled_window").inc()
                log.info("HTTP/2 stream %d from %s reset: window shut too long", stream.stream_id, self.peer)
                self.reset(stream, ErrorCodes.CANCEL)
                continue
            if exchange is not None and not exchange.done:
                if not exchange.request_done and exchange.check_body(
                    now,
                    stream.body_window,
                    paused=bool(stream.paused) or self.reading_paused,
                    peer=f"{self.peer} (HTTP/2 stream {stream.stream_id})",
                ):
                    continue
                exchange.check_timeout(now, timeouts.read)
        head_since = self.head_since
        if head_since is not None and not self.reading_paused and now - head_since > timeouts.request_head:
            # A first request, or a header block begun, not complete in time (slowloris over HTTP/2).
            self.engine.metrics.client_timeouts.labels("head").inc()
            log.info("HTTP/2 request head from %s not complete in time; closing", self.peer)
            self._refuse("request_head_timeout", ErrorCodes.NO_ERROR)
            return
        if head_since is not None and self.reading_paused:
            self.head_since = now  # our flow control, not the client
        draining = self.engine.registry.draining
        if not self.streams and (draining or now - self.last_active > timeouts.idle):
            self.close()
