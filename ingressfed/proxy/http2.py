"""The HTTP/2 codec of the client side, beside ``http1``: libnghttp2 (through ngh2, sans-I/O)
parses and writes the frames, HPACK and flow control; this module maps streams to exchanges and
holds the protections (ADR 0019).

Each client stream becomes a ``request.RequestHead`` and, through the same pure ``request.prepare``,
an ``exchange.Exchange`` to an HTTP/1.1 backend from the shared pool: routing, header rules, limits,
retries and streaming are the HTTP/1.1 path's own. ``_Stream`` is the exchange's
``ports.Downstream``: it takes the HTTP/1.1 response bytes the exchange renders, turns the head into
HTTP/2 fields and hands the body to the engine, which sends it as the client's windows allow; the
backend is paused while the engine holds more than ``_STREAM_BUFFER`` of it.

Protections (``Http2Settings``), each counted in ``ingressfed_proxy_http2_refusals{reason}``:
- concurrent streams: SETTINGS_MAX_CONCURRENT_STREAMS; a client that opens more once it has
  acknowledged our SETTINGS is cut off (GOAWAY PROTOCOL_ERROR); before that, the stream is refused
  (RST_STREAM REFUSED_STREAM, RFC 9113 5.1.2, so it may be retried) and counts against
  ``max_resets``;
- rapid reset (CVE-2023-44487): more than ``max_resets`` client resets and refused streams per
  ``reset_window`` ends the connection with GOAWAY ENHANCE_YOUR_CALM;
- CONTINUATION flood (CVE-2024-27316): a header block of more than ``max_header_frames`` frames,
  or more bytes than ``max_header_list_bytes``, ends the connection, judged on the frame headers
  (``h2frames``) before the engine decodes the block;
- HPACK bomb: the decoded header list is capped at ``max_header_list_bytes`` (SETTINGS and the
  engine's limit), so a small block expanding from the dynamic table is refused;
- SETTINGS/PING/WINDOW_UPDATE/PRIORITY/unknown/empty-DATA floods: more than
  ``max_control_frames`` per ``control_window`` ends the connection; while our own writes are
  backed up we stop reading, so acknowledgements a client never reads cannot pile up;
- zero-window stalls: a response the client leaves at a zero window for ``stall_timeout`` is
  reset and its backend connection released;
- malformed requests (RFC 9113 8.1.1, 8.2, 8.3): the engine resets most of them itself (counted
  from its RST_STREAM frames), ``request_head`` the rest (CONNECT, ``:authority`` against
  ``host``); nothing reaches a backend, and each counts against ``max_resets``.
The engine keeps its own limits too (``engine_configuration``), never tighter than ours, so that a
refusal is ours and named.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Sequence
from http import HTTPStatus
from typing import Final, cast

import ngh2
from prometheus_client import CollectorRegistry, Counter

from ingressfed.model import Location
from ingressfed.proxy.deadlines import BodyWindow
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.exchange import BodyTooLarge, Exchange
from ingressfed.proxy.h2frames import InboundFrames, goaway, sent
from ingressfed.proxy.ports import Downstream, TunnelPeer
from ingressfed.proxy.request import Forward, Peer, RequestHead, prepare
from ingressfed.tls.settings import Http2Settings

__all__ = ["H2ClientConnection", "H2Metrics", "engine_configuration", "request_head", "response_fields"]

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
# lookup costs a fraction of the regular expression's match (emptied when full).
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


def _line_field(line: bytes) -> tuple[bytes, bytes] | None:
    """One line of an HTTP/1.1 response head as its HTTP/2 field: the name lower-cased, both ends of
    name and value stripped; None for a line HTTP/2 does not carry (a connection-specific field,
    no name)."""
    name, _, value = line.partition(b":")
    lname = name.strip().lower()
    if not lname or lname in _CONNECTION_FIELDS:
        return None
    return (lname, value.strip())


def head_fields(lines: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """CRLF-separated head lines (a listener's added response headers) as HTTP/2 fields."""
    fields = (_line_field(line) for line in lines.split(b"\r\n") if line)
    return tuple(f for f in fields if f is not None)


Fields = tuple[tuple[bytes, bytes], ...]

# Head lines as their field (``_line_field``). An exchange renders the same lines response after
# response (Server, Content-Type, the cluster header, Content-Length of same-sized bodies, the Date
# of this second): a lookup replaces splitting, stripping and lower-casing each one. Emptied when
# full, so hostile variety costs nothing but the misses.
_LINES: dict[bytes, tuple[bytes, bytes] | None] = {}
_LINES_MAX = 4096
_LINE_MAX = 320  # longer lines (cookies, long URLs) are rarely repeated: translated, not kept

# Whole heads as their fields, ``:status`` first, without the listener's own. A backend answers the
# same head again and again until its Date moves on: one lookup instead of a split and a lookup
# per line.
_HEADS: dict[bytes, Fields] = {}
_HEADS_MAX = 256
_HEAD_MAX = 1024


def response_fields(head: bytes, extra: Fields) -> Fields:
    """The HTTP/1.1 response head an exchange rendered (without its final CRLF CRLF) as the fields
    of its HTTP/2 HEADERS: ``:status``, the head's fields (``_line_field``), then ``extra`` (pure,
    but for the caches)."""
    known = _HEADS.get(head)
    if known is None:
        known = _head_fields(head)
        if len(head) <= _HEAD_MAX:
            if len(_HEADS) >= _HEADS_MAX:
                _HEADS.clear()
            _HEADS[head] = known
    return known + extra if extra else known


def _head_fields(head: bytes) -> Fields:
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)[1]
    fields: list[tuple[bytes, bytes]] = [(b":status", status)]
    cache = _LINES
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        if line in cache:
            field = cache[line]
        else:
            field = _line_field(line)
            if len(line) <= _LINE_MAX:
                if len(cache) >= _LINES_MAX:
                    cache.clear()
                cache[line] = field
        if field is not None:
            fields.append(field)
    return tuple(fields)


def dos_reason(message: str) -> str:
    """The refusal reason (metric label) for the engine's own denial-of-service verdict (pure)."""
    text = message.lower()
    if "continuation" in text:
        return "continuation_flood"
    if "header" in text:
        return "header_list_size"
    if "reset" in text or "rst_stream" in text:
        return "rapid_reset"
    return "control_flood"


# RFC 9113 7 error codes (ngh2.ErrorCode's values, as plain ints for the compiled code)
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
ENHANCE_YOUR_CALM: Final = 0xB


# What a reset the engine sent by itself refused (any other code: a stream-level protocol error,
# e.g. a flow-control violation on that stream).
_RESET_REASONS: Final = {REFUSED_STREAM: "max_concurrent_streams", PROTOCOL_ERROR: "malformed_request"}


class _Stream(Downstream):
    """One HTTP/2 stream as ``ports.Downstream`` of its exchange."""

    __slots__ = (
        "blocked_since",
        "body_window",
        "conn",
        "ended",
        "exchange",
        "fields",
        "finished",
        "head",
        "head_sent",
        "out",
        "paused",
        "response_headers",
        "stream_id",
        "unacked",
        "upstream_paused",
    )

    def __init__(self, conn: H2ClientConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.exchange: Exchange | None = None
        self.response_headers = b""  # added by response_fields instead (HTTP/2 fields)
        self.head = b""
        self.head_sent = False  # the response head was taken (and its fields queued in ``fields``)
        self.fields: Fields | None = None  # the response's HEADERS, not handed to the engine yet
        self.out = bytearray()  # body bytes of this loop iteration, handed over at its end
        self.ended = False  # the exchange finished: end the stream once ``out`` is handed over
        self.finished = False  # END_STREAM handed to the engine, or RST_STREAM sent
        self.paused = 0
        self.unacked = 0  # request body bytes received while paused, acknowledged on resume
        self.blocked_since: float | None = None
        self.upstream_paused = False  # the engine holds _STREAM_BUFFER of ours or more
        # Request body deadlines, as on HTTP/1.1 (Exchange.check_body)
        self.body_window = BodyWindow(conn.engine.clock.now)

    # --- ports.Downstream ----------------------------------------------------------------------
    def send_blocked(self) -> bool:
        return self.upstream_paused or len(self.out) >= _STREAM_BUFFER or self.conn.writing_paused

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
            self.fields = response_fields(head, self.conn.response_fields)
            data = body
        self.out += data
        # Handed over at the end of this loop iteration: a body that ends in the same iteration
        # (most do) goes out with END_STREAM on its last DATA frame, or on HEADERS when it is empty.
        self.conn.mark(self)

    def cork(self) -> None:
        return None  # the connection writes once per loop iteration anyway

    def uncork(self) -> None:
        return None

    def set_paused(self, reason: int, on: bool) -> None:
        self.paused = self.paused | reason if on else self.paused & ~reason
        if not self.paused and self.unacked:
            unacked, self.unacked = self.unacked, 0
            self.conn.acknowledge(self.stream_id, unacked)

    def abort(self) -> None:
        self.conn.reset(self, INTERNAL_ERROR)

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
        self.response_fields = head_fields(response_headers)
        self.transport: asyncio.Transport | None = None
        self.ng = ngh2.Connection(ngh2.Role.SERVER, engine_configuration(settings))
        self.frames = InboundFrames(settings.max_header_frames, settings.max_header_list_bytes)
        self.usable = True  # False once the engine found a connection error (it sends nothing more)
        self.streams: dict[int, _Stream] = {}
        self.last_stream_id = 0  # the highest stream the client opened (for our own GOAWAY)
        self.own_resets: set[int] = set()  # streams we reset: the engine's other resets are its own
        self.goaway_ours = False  # a GOAWAY the engine sends is its own verdict unless we asked
        self.closing = False
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
        self._dirty: dict[int, _Stream] = {}  # streams with output to hand over at the next write
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
        self.ng.initiate_connection(
            {
                ngh2.Setting.MAX_CONCURRENT_STREAMS: s.max_concurrent_streams,
                ngh2.Setting.MAX_HEADER_LIST_SIZE: s.max_header_list_bytes,
                ngh2.Setting.INITIAL_WINDOW_SIZE: s.initial_window_bytes,
            }
        )
        if s.initial_window_bytes > 65535:
            self.ng.set_local_window_size(s.initial_window_bytes)  # the connection's, as a stream's
        engine.metrics.active_connections.inc()
        self.metrics.connections.inc()
        self._write_out()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        now = self.engine.clock.now
        self.last_active = now
        frames = self.frames
        before = frames.controls
        frames.feed(data)
        if frames.oversized:
            # Judged on frame headers, before the engine decodes a byte of the block.
            self._refuse("continuation_flood", ENHANCE_YOUR_CALM)
            return
        if frames.controls != before and self._control(now, frames.controls - before):
            return
        try:
            self.ng.receive_data(data)
        except ngh2.DenialOfServiceError as exc:
            self.usable = False
            self._refuse(dos_reason(str(exc)), ENHANCE_YOUR_CALM)
            return
        except ngh2.NGH2Error as exc:
            self.usable = False
            log.info("HTTP/2 protocol error from %s: %s", self.peer, exc)
            self._refuse("protocol_error", PROTOCOL_ERROR)
            return
        self._events(now)
        if self.closed:
            return
        if frames.in_block:
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
        self._write_out()

    def _set_reading(self, on: bool) -> None:
        if self.transport is None or self.closed or self.reading_paused == (not on):
            return
        self.reading_paused = not on
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    # --- events ----------------------------------------------------------------------------------
    def _events(self, now: float) -> None:
        """What the engine found in the bytes it was given, or did while sending."""
        for event in self.ng.events():
            if self.closed:
                return
            kind = type(event)
            if kind is ngh2.RequestReceived:
                request = cast(ngh2.RequestReceived, event)
                self._request(request.stream_id, request.headers, request.end_stream)
            elif kind is ngh2.DataReceived:
                self._data(cast(ngh2.DataReceived, event), now)
            elif kind is ngh2.StreamClosed:
                self._stream_closed(cast(ngh2.StreamClosed, event).stream_id)
            elif kind is ngh2.StreamReset:
                self._client_reset(cast(ngh2.StreamReset, event).stream_id, now)
            elif kind is ngh2.WindowUpdated:
                for stream in list(self.streams.values()):
                    if stream.upstream_paused:
                        self._pace_upstream(stream)
            elif kind is ngh2.TrailersReceived:
                # Trailers end the request (END_STREAM rides on them); the backend's HTTP/1.1
                # request does not carry them, as before.
                trailed = self.streams.get(cast(ngh2.TrailersReceived, event).stream_id)
                if trailed is not None and trailed.exchange is not None and not trailed.exchange.done:
                    trailed.exchange.complete()
            elif kind is ngh2.ConnectionClosed:
                # The engine is done (a GOAWAY either way and no stream left). A client's GOAWAY
                # alone lets the streams it already opened finish: the engine says when.
                self.close()
                return

    def _request(self, stream_id: int, headers: Sequence[tuple[bytes, bytes]], ended: bool) -> None:
        stream = _Stream(self, stream_id)
        self.streams[stream_id] = stream
        self.streams_opened += 1
        self.last_stream_id = max(self.last_stream_id, stream_id)
        head = request_head(headers, ended=ended)
        if isinstance(head, str):
            self.metrics.refusals.labels("malformed_request").inc()
            log.info("HTTP/2 stream %d from %s reset: malformed request: %s", stream_id, self.peer, head)
            self.reset(stream, PROTOCOL_ERROR)
            self._count_reset(self.engine.clock.now)  # counts against max_resets
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
        if ended and not exchange.done:
            exchange.complete()

    def _data(self, event: ngh2.DataReceived, now: float) -> None:
        data = event.data
        size = len(data)  # padding the engine acknowledges itself
        sid = event.stream_id
        stream = self.streams.get(sid)
        if stream is None or stream.exchange is None or stream.exchange.done:
            if size:
                self.acknowledge(sid, size)
            return
        exchange = stream.exchange
        stream.body_window.active = now
        try:
            if data:
                exchange.body(data)
        except BodyTooLarge:
            self.acknowledge(sid, size)
            exchange.fail(413, "request body too large")
            return
        if stream.paused:
            stream.unacked += size
        elif size:
            self.acknowledge(sid, size)
        if event.end_stream and not exchange.done:
            exchange.complete()

    def _stream_closed(self, stream_id: int) -> None:
        self.own_resets.discard(stream_id)
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        self._dirty.pop(stream_id, None)
        stream.finished = True
        if stream.unacked:
            unacked, stream.unacked = stream.unacked, 0
            self.acknowledge(stream_id, unacked)  # the connection's window, which outlives it
        exchange = stream.exchange
        if exchange is not None and not exchange.done:
            exchange.abandon()
        if self.engine.registry.draining and not self.streams:
            self.close()

    def _client_reset(self, stream_id: int, now: float) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.finished = True
            self._stream_closed(stream_id)
        self._count_reset(now)

    def _count_reset(self, now: float) -> None:
        """Rapid reset (CVE-2023-44487): a client reset, or a stream we had to refuse."""
        window = self.settings.reset_window
        resets = self.resets
        resets.append(now)
        while resets and now - resets[0] > window:
            resets.popleft()
        if len(resets) > self.settings.max_resets:
            self._refuse("rapid_reset", ENHANCE_YOUR_CALM)

    def _control(self, now: float, count: int) -> bool:
        """``count`` more control frames (``InboundFrames.controls``); True if that ended the
        connection."""
        controls = self.controls
        for _ in range(min(count, self.settings.max_control_frames + 1)):
            controls.append(now)
        while controls and now - controls[0] > self.settings.control_window:
            controls.popleft()
        if len(controls) > self.settings.max_control_frames:
            self._refuse("control_flood", ENHANCE_YOUR_CALM)
            return True
        return False

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
        """``stream`` has output: handed over by the next ``_write_out`` (this iteration's end)."""
        self._dirty[stream.stream_id] = stream
        self._schedule_write()

    def respond_local(
        self, stream: _Stream, status: int, detail: str = "", *, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer a stream ourselves (a rejection; an HTTPRoute redirect carries its Location)."""
        phrase = HTTPStatus(status).phrase
        body = f"{status} {phrase}{': ' + detail if detail else ''}\n".encode()
        self.engine.tallies.count_request("", status)
        stream.head_sent = True
        stream.fields = (
            (b":status", b"%d" % status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            *((name.lower(), value) for name, value in headers),
        )
        stream.out += body
        stream.ended = True
        self.flush(stream)

    def flush(self, stream: _Stream) -> None:
        """Hand ``stream``'s head and body so far to the engine, which sends them as the client's
        windows allow; END_STREAM rides on the last frame that carries something."""
        if stream.finished or self.closed or not self.usable:
            return
        ng = self.ng
        sid = stream.stream_id
        try:
            fields = stream.fields
            if fields is not None:
                stream.fields = None
                empty = stream.ended and not stream.out
                ng.send_response(sid, fields, end_stream=empty)
                if empty:
                    stream.finished = True
                    self._schedule_write()
                    return
            out = stream.out
            if out:
                data = bytes(out)
                out.clear()
                ng.send_data(sid, data, end_stream=stream.ended)
                stream.finished = stream.ended
            elif stream.ended and stream.head_sent:
                ng.end_stream(sid)
                stream.finished = True
        except ngh2.NGH2Error as exc:
            # The client reset the stream, or the connection is ending: nothing more to send on it.
            log.debug("HTTP/2 stream %d from %s: output dropped: %s", sid, self.peer, exc)
            stream.finished = True
            return
        self._pace_upstream(stream)
        self._schedule_write()

    def _pace_upstream(self, stream: _Stream) -> None:
        """Pause the backend while the engine holds ``_STREAM_BUFFER`` of this stream's body (the
        client's window is shut, or it reads slowly), resume it once the engine sent most."""
        exchange = stream.exchange
        upstream = exchange.upstream if exchange is not None else None
        if upstream is None:
            return
        try:
            queued = self.ng.queued_body_size(stream.stream_id)
        except ngh2.NGH2Error:
            queued = 0
        full = queued >= _STREAM_BUFFER
        if full != stream.upstream_paused:
            stream.upstream_paused = full
            upstream.set_reading(not full)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Request body bytes consumed: the client may send as many more (WINDOW_UPDATE, which the
        engine batches). Also for a stream gone: the connection's window outlives it."""
        if self.closed or not self.usable:
            return
        try:
            self.ng.acknowledge_received_data(size, stream_id)
        except (ngh2.NGH2Error, ValueError) as exc:
            log.debug("HTTP/2 acknowledgement of %d bytes on stream %d not taken: %s", size, stream_id, exc)
            return
        self._schedule_write()

    def reset(self, stream: _Stream, code: int) -> None:
        if stream.finished or self.closed:
            return
        stream.finished = True
        sid = stream.stream_id
        self.streams.pop(sid, None)
        self._dirty.pop(sid, None)
        if stream.unacked:
            unacked, stream.unacked = stream.unacked, 0
            self.acknowledge(sid, unacked)  # before the reset: the stream's bytes stay counted
        exchange = stream.exchange
        if exchange is not None and not exchange.done:
            exchange.abandon()
        if not self.usable:
            return
        self.own_resets.add(sid)
        try:
            self.ng.reset_stream(sid, code)
        except ngh2.NGH2Error as exc:
            self.own_resets.discard(sid)
            log.debug("HTTP/2 stream %d from %s: reset not sent: %s", sid, self.peer, exc)
        self._schedule_write()

    def _schedule_write(self) -> None:
        if not self._write_soon and not self.closed:
            self._write_soon = True
            self._loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        if self.transport is None or self.closed or not self.usable:
            self._write_soon = False
            return
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            self._write_soon = True  # what the flushes queue goes out just below
            for stream in dirty.values():
                self.flush(stream)
        self._write_soon = False
        if self.writing_paused:
            return  # the engine keeps it until resume_writing: the client is not reading
        try:
            data = self.ng.data_to_send()
        except ngh2.NGH2Error as exc:
            log.info("HTTP/2 connection from %s: engine stopped: %s", self.peer, exc)
            self.usable = False
            self.close()
            return
        if data:
            self._engine_refusals(data)
            self.transport.write(data)
        # Sending ends streams (StreamClosed), and the engine reports it at its next events().
        self._events(self.engine.clock.now)
        if not self.closed and not self.ng.want_read and not self.ng.want_write:
            self.closed = True  # the engine is done with the connection (a GOAWAY sent and answered)
            self.transport.close()

    def _engine_refusals(self, data: bytes) -> None:
        """Count what the engine refused by itself (it raises no event for it), from its RST_STREAM
        and GOAWAY frames: a stream over SETTINGS_MAX_CONCURRENT_STREAMS (REFUSED_STREAM while our
        SETTINGS are unacknowledged, then the connection, RFC 9113 5.1.2), a request it found
        malformed (PROTOCOL_ERROR: RFC 9113 8.1.1, 8.2, 8.3, before ``request_head`` sees it), any
        other stream or connection error (``protocol_error``)."""
        found = sent(data)
        if found is None:
            return
        now = self.engine.clock.now
        own = self.own_resets
        for sid, code in found.resets:
            if sid in own:
                own.discard(sid)
                continue
            reason = _RESET_REASONS.get(code, "protocol_error")
            self.metrics.refusals.labels(reason).inc()
            log.info("HTTP/2 stream %d from %s reset by the protocol engine: %s", sid, self.peer, reason)
            self._count_reset(now)
            if self.closed:
                return
        if found.goaway_code > 0 and not self.goaway_ours:
            detail = found.debug.decode("ascii", "replace")
            reason = "max_concurrent_streams" if "concurrent streams" in detail else "protocol_error"
            self.metrics.refusals.labels(reason).inc()
            log.warning(
                "HTTP/2 connection from %s closed by the protocol engine: %s (%s)",
                self.peer,
                reason,
                detail,
                extra={"reason": reason},
            )

    # --- endings ---------------------------------------------------------------------------------
    def _refuse(self, reason: str, code: int) -> None:
        """A protection tripped: GOAWAY with ``code``, then close."""
        self.metrics.refusals.labels(reason).inc()
        log.warning("HTTP/2 connection from %s closed: %s", self.peer, reason, extra={"reason": reason})
        if self.transport is None or self.closed:
            return
        sent = False
        self.goaway_ours = True
        if self.usable:
            try:
                self.ng.terminate_connection(code, last_stream_id=self.last_stream_id)
                self.transport.write(self.ng.data_to_send())
                sent = True
            except ngh2.NGH2Error:
                pass
        if not sent:
            self.transport.write(goaway(self.last_stream_id, code))
        self.usable = False
        self.closed = True
        self.transport.close()

    def close(self) -> None:
        """Ask the client to stop (GOAWAY NO_ERROR), send what is queued and close."""
        if self.transport is None or self.closed or self.closing:
            return
        self.closing = True  # the write-out below reads events, which may ask to close again
        self.goaway_ours = True
        if self.usable:
            with contextlib.suppress(ngh2.NGH2Error):
                self.ng.send_goaway(NO_ERROR)
            self._write_out()
        self.closed = True
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def _stalled(self, stream: _Stream, now: float) -> bool:
        """The engine holds body bytes of ``stream`` the client's windows leave no room for."""
        if not stream.head_sent or not self.usable:
            return False
        ng = self.ng
        try:
            if not ng.queued_body_size(stream.stream_id):
                return False
            room = min(ng.remote_window_size, ng.stream_remote_window_size(stream.stream_id))
        except ngh2.NGH2Error:
            return False
        return room <= 0

    def check_timeouts(self, now: float) -> None:
        if self.closed:
            return
        timeouts = self.engine.settings.timeouts
        for stream in list(self.streams.values()):
            exchange = stream.exchange
            if self._stalled(stream, now):
                if stream.blocked_since is None:
                    stream.blocked_since = now
                elif now - stream.blocked_since > self.settings.stall_timeout:
                    self.metrics.refusals.labels("stalled_window").inc()
                    log.info(
                        "HTTP/2 stream %d from %s reset: window shut too long", stream.stream_id, self.peer
                    )
                    self.reset(stream, CANCEL)
                    continue
            else:
                stream.blocked_since = None
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
            self._refuse("request_head_timeout", NO_ERROR)
            return
        if head_since is not None and self.reading_paused:
            self.head_since = now  # our flow control, not the client
        draining = self.engine.registry.draining
        if not self.streams and (draining or now - self.last_active > timeouts.idle):
            self.close()


def engine_configuration(settings: Http2Settings) -> ngh2.Configuration:
    """libnghttp2's own limits, set from ours and never tighter where ours count and name what they
    refuse (resets, control frames, header blocks): the engine's stay as a second line."""
    resets_per_second = max(33, int(settings.max_resets / max(settings.reset_window, 0.001)) * 2)
    return ngh2.Configuration(
        auto_window_update=False,  # request bodies are acknowledged as the backend takes them
        max_continuations=max(8, settings.max_header_frames),
        max_inbound_header_list_size=settings.max_header_list_bytes,
        stream_reset_rate_limit=(max(1000, settings.max_resets * 2), resets_per_second),
        max_outbound_ack=max(1000, settings.max_control_frames),
    )
