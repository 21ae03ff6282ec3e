"""The HTTP/1.1 codec of the client side: an asyncio protocol per client connection (httptools).

It only moves bytes and keeps order: the head it parses becomes a ``request.RequestHead``, the pure
``request.prepare`` turns it into a ``Forward`` or a ``Rejection``, and an ``exchange.Exchange``
carries each forwarded request (pipelined ones wait in order). The exchange talks back through the
``ports.Downstream`` methods below. The request parser is strict (llhttp): conflicting framing, bad
chunk sizes, obs-fold and bare LF are parse errors answered with 400 before anything is forwarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, cast

import httptools

from ingressfed.model import Location
from ingressfed.proxy.deadlines import BodyWindow
from ingressfed.proxy.engine import Engine
from ingressfed.proxy.exchange import BodyTooLarge, Exchange, local_response
from ingressfed.proxy.ports import Downstream, Pause, TunnelPeer
from ingressfed.proxy.request import Forward, Peer, Rejection, RequestHead, RouteMatcher, prepare
from ingressfed.proxy.upstream import UpstreamConnection, unconnected

__all__ = ["ClientConnection"]

log = logging.getLogger(__name__)

_CHALLENGE: Final = b"/.well-known/acme-challenge/"
_HELD_LIMIT: Final = 64 * 1024  # bytes after a WebSocket handshake held (reading paused) until the 101


class _Reject(Exception):
    """The codec's own refusals (sizes), raised inside parser callbacks."""

    def __init__(self, status: int, detail: str = "", *, extra: bytes = b"") -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.extra = extra


class _Answer(Exception):
    """A request the proxy answers itself before routing (an ACME http-01 token)."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body


# (request head, its Forward) -> an absolute https URL to redirect to, or None (proxy/https.py)
Redirect = Callable[[RequestHead, Forward], bytes | None]


class ClientConnection(asyncio.Protocol, Downstream):
    def __init__(
        self,
        engine: Engine,
        *,
        scheme: bytes = b"http",
        redirect: Redirect | None = None,
        response_headers: bytes = b"",
        answer: Callable[[str, bytes], bytes | None] | None = None,
    ) -> None:
        """``scheme`` is what the client speaks to us (``https`` behind the TLS listener);
        ``redirect`` may answer a plain request with a 308 to HTTPS; ``response_headers`` are
        added to every forwarded response (HSTS on HTTPS)."""
        self.engine = engine
        self.scheme = scheme
        self.redirect = redirect
        self.response_headers = response_headers
        self.answer = answer  # ACME http-01 tokens, answered before routing (see ProxyServer)
        self.transport: asyncio.Transport | None = None
        # The transport's and the parser's methods called per request, bound once: compiled, a
        # method call on a third-party object looks the method up in its type each time (about a
        # tenth of the request path's data-cache misses, callgrind --cache-sim).
        self._send: Callable[[bytes], object] = unconnected
        self.parser = httptools.HttpRequestParser(self)
        self._feed: Callable[[bytes], None] = self.parser.feed_data
        self._keep_alive: Callable[[], bool] = self.parser.should_keep_alive
        self._method: Callable[[], bytes] = self.parser.get_method
        self.peer = ""
        self.identity = Peer(address="")
        self.peer_located = False
        self.peer_location: Location | None = None
        # Oldest first; a list, not a deque: compiled, its operations are C calls (a deque's are
        # Python method calls), and reading is paused while a request waits behind another, so
        # it stays as short as the pipelined requests of one read.
        self.exchanges: list[Exchange] = []
        self.parsing: Exchange | None = None
        now = engine.clock.now
        # Deadlines (see check_timeouts): a head is due request_head after head_since; a kept-alive
        # connection may idle from idle_since; a body is judged by body_window.
        self.head_since: float | None = now  # the first request's head is due from the accept
        self.head_bytes = False  # any byte of the pending head arrived
        self.idle_since = now
        self.body_window = BodyWindow(now)  # the body being received (restarted per request)
        self.admitted = False
        self.write_stalled_since = now  # when our send buffer to the client last filled up
        self.closed = False
        self.final: bytes | None = None  # a rejection waiting for earlier responses to go out
        self.paused = 0
        self.writing_paused = False
        self.tunnel: UpstreamConnection | None = None
        self.corked: list[bytes] | None = None
        self.upgrading: Exchange | None = None  # a WebSocket handshake awaiting the backend's answer
        self.held: list[bytes] = []  # what the client sent after that handshake: never parsed as HTTP
        self.held_size = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._connection_named = False  # a header of the head being parsed may be Connection
        self._upgrade_named = False  # ... or Upgrade
        self._in_head = False
        # Bytes received in chunks after the one that began the head being parsed, and the size of
        # the chunk being parsed: together an upper bound of the head's size, so that its exact
        # size is only added up when that bound is over the limit.
        self._head_raw = 0
        self._chunk = 0
        self._max_head = engine.settings.limits.max_header_bytes

    @property
    def busy(self) -> bool:
        return bool(self.exchanges) or self.tunnel is not None

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self._send = self.transport.write
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        if self.peer.startswith("::ffff:") and "." in self.peer:
            self.peer = self.peer[7:]
        engine = self.engine
        self.identity = Peer(address=self.peer, trusted=engine.router.trusts(self.peer), scheme=self.scheme)
        refused = engine.registry.admit(self, self.peer, exempt=self.identity.trusted)
        if refused is not None:
            engine.metrics.refused_connections.labels(refused).inc()
            log.info("refused a connection from %s: %s connection cap reached", self.peer, refused)
            self.closed = True
            self.transport.write(local_response(503, close=True, extra=b"Retry-After: 5\r\n"))
            self.transport.close()
            return
        self.admitted = True
        engine.metrics.active_connections.inc()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.upgrading is not None:
            self._hold(data)
            return
        if self.final is not None or self.closed:
            return
        self._chunk = len(data)
        if self._in_head:
            self._head_raw += len(data)
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_point(data[upgrade.args[0] :])
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self.reject(cause.status, cause.detail, extra=cause.extra)
                return
            if isinstance(cause, _Answer):
                self.answer_locally(cause.body)
                return
            if isinstance(cause, BodyTooLarge):
                self.reject(413)
                return
            raise
        except httptools.HttpParserError as exc:
            self.reject(400, str(exc))
            return
        if self._in_head and (self._head_raw > self._max_head or self._head_size() > self._max_head):
            self.reject(431 if len(self._url) < 8192 else 414)

    def _upgrade_point(self, tail: bytes) -> None:
        """llhttp stopped after a head with Connection: upgrade (the message is complete)."""
        exchange = self.parsing
        if exchange is not None and exchange.request.upgrade:
            # A WebSocket handshake: what follows is not HTTP, and goes nowhere before the 101.
            self.upgrading = exchange
            if tail:
                self._hold(tail)
        elif exchange is not None:
            # An upgrade token we removed (h2c and the like): the request is plain HTTP/1.1 and
            # the bytes after it are the next request, parsed afresh.
            self._new_parser()
            if tail:
                self.data_received(tail)
        else:
            self.reject(400, "unexpected protocol upgrade")

    def _new_parser(self) -> None:
        parser = self.parser = httptools.HttpRequestParser(self)
        self._feed = parser.feed_data
        self._keep_alive = parser.should_keep_alive
        self._method = parser.get_method

    def _hold(self, data: bytes) -> None:
        self.held.append(data)
        self.held_size += len(data)
        if self.held_size > _HELD_LIMIT:
            self.set_paused(Pause.PENDING, True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.admitted:
            return
        engine = self.engine
        engine.registry.remove(self, self.peer, exempt=self.identity.trusted)
        engine.metrics.active_connections.dec()
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
        self.write_stalled_since = self.engine.clock.now
        self._upstream_reading(False)

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._upstream_reading(True)

    def send_blocked(self) -> bool:
        return self.writing_paused

    def _upstream_reading(self, on: bool) -> None:
        conn = self.tunnel
        if conn is None and self.exchanges:
            conn = self.exchanges[0].upstream
        if conn is not None:
            conn.set_reading(on)

    # --- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        # _url and _headers were handed on (and emptied) by the last head's on_headers_complete
        if self._url:
            self._url = b""
        if self._headers:
            self._headers = []
        self._connection_named = False
        self._upgrade_named = False
        self._in_head = True
        self._head_raw = 0
        self.parsing = None
        self.head_bytes = True
        if self.head_since is None:
            self.head_since = self.engine.clock.now

    def on_url(self, url: bytes) -> None:
        # Usually one piece: kept as it is (compiled, ``+=`` of bytes is a generic number op)
        so_far = self._url
        self._url = so_far + url if so_far else url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        n = len(name)
        if (n == 10 and (name[0] | 0x20) == 0x63) or (n == 16 and (name[0] | 0x20) == 0x70):
            self._connection_named = True  # may be Connection or Proxy-Connection ("c", "p")
        elif n == 7 and (name[0] | 0x20) == 0x75:
            self._upgrade_named = True  # may be Upgrade ("u")

    def _head_size(self) -> int:
        """The request head parsed so far, as limits.max_header_bytes counts it."""
        return len(self._url) + sum(len(name) + len(value) + 4 for name, value in self._headers)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_raw + self._chunk > self._max_head and self._head_size() > self._max_head:
            raise _Reject(431 if len(self._url) < 8192 else 414)
        engine = self.engine
        now = engine.clock.now
        self.head_since = None
        self.head_bytes = False
        self.body_window.restart(now, 0)
        parser = self.parser
        keep_alive = self._keep_alive()
        method = self._method()
        # The head takes the parts and our fields let go of them: a request's objects are freed
        # when it is done, while they are still in the cache, not when the connection's next
        # request begins (callgrind --cache-sim: the allocator then touches cold memory), and
        # the allocator hands the next request the memory they were in.
        url = self._url
        headers = self._headers
        self._url = b""
        self._headers = []
        head = RequestHead(
            method,
            url,
            headers,
            # llhttp keeps an HTTP/1.0 connection alive only when a Connection (or
            # Proxy-Connection) header says so; without one, keep-alive means HTTP/1.1 (or a later
            # 1.x, served as 1.1, RFC 9110 2.5), and the version string, which httptools formats
            # anew per call (a twentieth of the request's instructions), is not needed.
            (keep_alive and not self._connection_named) or parser.get_http_version() == "1.1",
            keep_alive,
            # llhttp's upgrade flag needs an Upgrade header (or CONNECT): ask only then
            (self._upgrade_named or method == b"CONNECT") and parser.should_upgrade(),
        )
        if self.answer is not None and head.target.startswith(_CHALLENGE):
            host = next((v for k, v in head.headers if k.lower() == b"host"), b"")
            body = self.answer(host.decode("latin-1"), head.target)
            if body is not None:
                raise _Answer(body)
        identity = self.identity
        outcome = prepare(head, peer=identity, matcher=self.matcher(), rules=engine.rules)
        if type(outcome) is not Forward:  # compiled, a type test; __class__ is an attribute lookup
            assert isinstance(outcome, Rejection)
            extra = b"".join(b"%b: %b\r\n" % pair for pair in outcome.headers)
            raise _Reject(outcome.status, outcome.detail, extra=extra)
        assert isinstance(outcome, Forward)
        if self.redirect is not None:
            location = self.redirect(head, outcome)
            if location is not None:
                raise _Reject(308, extra=b"Location: %b\r\n" % location)
        hint = outcome.forwarded_for
        if hint is not None:
            location_of = engine.router.locate_forwarded(self.peer, hint)
        else:
            if not self.peer_located:
                self.peer_location = engine.router.locate(self.peer)
                self.peer_located = True
            location_of = self.peer_location
        exchange = Exchange(self, engine, outcome, location_of)
        self.parsing = exchange
        exchanges = self.exchanges
        exchanges.append(exchange)
        if len(exchanges) == 1:
            exchange.start()
        else:
            self.set_paused(Pause.PIPELINE, True)

    def matcher(self) -> RouteMatcher:
        """The current routing table's matcher for our scheme (the table keeps one per scheme)."""
        return self.engine.router.table.for_scheme(self.scheme)

    def on_body(self, body: bytes) -> None:
        self.body_window.active = self.engine.clock.now
        if self.parsing is not None:
            self.parsing.body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.complete()

    # --- ports.Downstream --------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        corked = self.corked
        if corked is not None:
            corked.append(data)
        elif self.transport is not None and not self.closed:
            self._send(data)

    def cork(self) -> None:
        """Hold writes until ``uncork``: a response head and a small body leave in one send()."""
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        corked = self.corked
        self.corked = None
        if corked and self.transport is not None and not self.closed:
            self._send(corked[0] if len(corked) == 1 else b"".join(corked))

    def set_paused(self, reason: int, on: bool) -> None:
        before = self.paused
        self.paused = before | reason if on else before & ~reason
        if self.transport is None or self.closed or bool(before) == bool(self.paused):
            return
        if self.paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def exchange_finished(self, exchange: object) -> None:
        if self.exchanges and self.exchanges[0] is exchange:
            del self.exchanges[0]
        assert isinstance(exchange, Exchange)
        if self.parsing is exchange and exchange.request_done:
            self.parsing = None  # freed now, while warm (see on_headers_complete)
        if exchange.close_after or self.closed or self.engine.registry.draining:
            self.close()
            return
        if self.final is not None and not self.exchanges:
            self.write(self.final)
            self.close()
            return
        if self.exchanges:
            self.set_paused(Pause.PIPELINE, len(self.exchanges) > 1)
            self.exchanges[0].start()
        else:
            if self.paused & Pause.PIPELINE:
                self.set_paused(Pause.PIPELINE, False)
            now = self.engine.clock.now
            self.idle_since = now
            if self.head_since is not None:
                self.head_since = now  # a next head begun while we answered: its time starts now

    def start_tunnel(self, conn: TunnelPeer, tail: bytes, exchange: object) -> None:
        assert isinstance(conn, UpstreamConnection)
        self.tunnel = conn
        conn.tunnel = self
        self.upgrading = None
        if self.exchanges and self.exchanges[0] is exchange:
            del self.exchanges[0]
        if tail:
            self.write(tail)
        held = self.held
        self.held = []
        self.held_size = 0
        if held:
            conn.write(b"".join(held))
        self.set_paused(Pause.PIPELINE, False)
        self.set_paused(Pause.PENDING, False)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.uncork()
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    # --- endings -----------------------------------------------------------------------------
    def answer_locally(self, body: bytes) -> None:
        """200 with ``body``, then close (challenge answers are rare: no keep-alive bookkeeping)."""
        self.engine.tallies.count_request("", 200)
        response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%b" % (len(body), body)
        )
        if self.exchanges:
            self.final = response
            self.set_paused(Pause.PIPELINE, True)
            return
        self.write(response)
        self.close()

    def reject(self, status: int, detail: str = "", *, extra: bytes = b"") -> None:
        """Answer the request being parsed ourselves, then close: after a framing error
        nothing later on this connection can be trusted."""
        self.engine.tallies.count_request("", status)
        if status == 400:
            log.info("rejected request from %s: %s", self.peer, detail)
        response = local_response(
            status, close=True, detail=detail if status != 400 else "bad request", extra=extra
        )
        parsing = self.parsing
        if parsing is not None and not parsing.done and parsing in self.exchanges:
            if parsing.response_started:
                self.abort()  # too late for a status line: the response is already on its way
                return
            self.exchanges.remove(parsing)
            parsing.abandon()
        if self.exchanges:
            self.final = response
            self.set_paused(Pause.PIPELINE, True)
            return
        self.write(response)
        self.close()

    def check_timeouts(self, now: float) -> None:
        """The client-side deadlines (run from the server's tick). Only time the client is to blame
        for counts: nothing is measured while we pause reading it."""
        if self.closed:
            return
        engine = self.engine
        timeouts = engine.settings.timeouts
        if self.writing_paused and now - self.write_stalled_since > timeouts.send:
            # A client that does not read what it asked for (slow read): it holds a backend
            # connection and our buffers; nothing more can be said to it, so the connection is cut.
            engine.metrics.client_timeouts.labels("send").inc()
            log.info("client %s read nothing for %.0fs; closing", self.peer, now - self.write_stalled_since)
            self.abort()
            return
        if self.tunnel is not None:
            return
        if self.exchanges:
            first = self.exchanges[0]
            first.check_timeout(now, timeouts.read)
            parsing = self.parsing
            if parsing is first and not parsing.request_done and not parsing.done:
                parsing.check_body(now, self.body_window, paused=bool(self.paused), peer=self.peer)
            return
        if self.head_since is not None:
            if self.paused:
                self.head_since = now
            elif now - self.head_since > timeouts.request_head:
                engine.metrics.client_timeouts.labels("head").inc()
                if self.head_bytes:
                    log.info("request head from %s not complete in time; closing", self.peer)
                    self.write(local_response(408, close=True, detail="request head not received in time"))
                self.close()
            return
        if now - self.idle_since > (timeouts.idle if not engine.registry.draining else 0):
            if not engine.registry.draining:
                engine.metrics.client_timeouts.labels("idle").inc()
            self.close()
