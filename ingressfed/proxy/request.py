"""The sans-I/O request step: a parsed request head in, a ``Forward`` (the request as the backend
will see it, and the route it matched) or a ``Rejection`` out. No sockets, no clock, no state:
tests feed heads and check the outcome, in the manner of h11.

Codecs (HTTP/1.1 in ``http1``; HTTP/2 beside it) build a ``RequestHead``; routing goes through a
``RouteMatcher`` (the routing table today; a Gateway API HTTPRoute matcher on method, headers and
query can take its place, since it receives the whole head). The upstream side always speaks
HTTP/1.1, so ``Forward.head`` is an HTTP/1.1 request head whatever the client spoke.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from librt.strings import BytesWriter

from ingressfed.gateway.resources import HeaderModifier
from ingressfed.proxy.gateway import GatewayHop, modified_headers, redirect_for, rewrite_target
from ingressfed.proxy.table import RouteEntry, normalize_host

__all__ = [
    "IDEMPOTENT",
    "Forward",
    "Peer",
    "Rejection",
    "RequestHead",
    "RequestRules",
    "RouteMatcher",
    "prepare",
    "websocket_accept",
]

# Hop-by-hop headers (RFC 9110 7.6.1) plus legacy ones; Proxy-* are matched by prefix.
HOP_BY_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection"}
)
_SPECIAL: Final = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"forwarded",
    b"via",
}
_WEBSOCKET_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_DOT_SEGMENT: Final = frozenset({".", "..", "%2e", "%2e%2e", ".%2e", "%2e."})
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


# The values below are built once per request and never changed afterwards. They are not
# Plain classes, not dataclasses: a frozen dataclass sets each field through object.__setattr__
# (a tenth of the proxy's Python time per request, bench/proxy/micro.py), and mypyc compiles an
# explicit __init__ to C but leaves a dataclass's generated one to the interpreter (ADR 0016).


class RequestHead:
    """A request head as a codec parsed it (names and values as received, in order)."""

    __slots__ = ("headers", "http11", "keep_alive", "method", "target", "upgrade")

    def __init__(  # noqa: PLR0917  built per request, positionally (keywords cost more there)
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],  # a list: compiled, iterated by index
        http11: bool = True,
        keep_alive: bool = True,  # the codec's reading of version and Connection: close / keep-alive
        upgrade: bool = False,  # the codec saw an upgrade request (Connection: upgrade with Upgrade)
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.http11 = http11
        self.keep_alive = keep_alive
        self.upgrade = upgrade


class Peer:
    """Who sent the request: the socket peer, and whether it is a trusted proxy."""

    __slots__ = ("address", "node", "scheme", "trusted")

    def __init__(self, address: str, trusted: bool = False, scheme: bytes = b"http") -> None:
        self.address = address
        self.trusted = trusted
        self.scheme = scheme  # what the client spoke to us: "https" behind a TLS listener
        # The address as it goes into X-Forwarded-For / Forwarded (encoded once per connection)
        self.node = address.encode()


@dataclass(frozen=True, slots=True)
class RequestRules:
    """What one proxy's configuration says about every request."""

    max_body_bytes: int = 10 * 1024 * 1024
    via: bytes = b"1.1 ingressfed"
    # The one forwarding header believed from trusted peers and extended with our hop; the other
    # one is removed, so that the backend and the cluster choice read the same chain.
    forwarded_header: bool = False  # True: RFC 7239 Forwarded; False: X-Forwarded-For


class Forward:
    """A request the proxy forwards: its head for the backend and what the exchange needs to know."""

    __slots__ = (
        "affinity",
        "chunked",
        "entry",
        "forwarded_for",
        "head",
        "http11",
        "idempotent",
        "is_head",
        "keep_alive",
        "response_headers",
        "upgrade",
        "websocket_accept",
    )

    def __init__(  # noqa: PLR0917  built per request, positionally (keywords cost more there)
        self,
        head: bytes,  # the HTTP/1.1 request head for the backend, ending in an empty line
        entry: RouteEntry,
        keep_alive: bool,
        http11: bool,
        idempotent: bool,
        is_head: bool,
        chunked: bool,  # the body is chunked (the proxy re-chunks what the codec decodes)
        upgrade: bool,  # a valid WebSocket handshake: tunnelled once the backend answers 101
        # The trusted header's chain as received from a trusted peer: the client is further away.
        forwarded_for: bytes | None = None,
        websocket_accept: bytes | None = None,  # the Sec-WebSocket-Accept a 101 must carry
        affinity: str | None = None,  # the cluster named by the route's affinity cookie, if sent
        # HTTPRoute ResponseHeaderModifier filters, applied to the backend's response head
        response_headers: tuple[HeaderModifier, ...] = (),
    ) -> None:
        self.head = head
        self.entry = entry
        self.keep_alive = keep_alive
        self.http11 = http11
        self.idempotent = idempotent
        self.is_head = is_head
        self.chunked = chunked
        self.upgrade = upgrade
        self.forwarded_for = forwarded_for
        self.websocket_accept = websocket_accept
        self.affinity = affinity
        self.response_headers = response_headers


@dataclass(frozen=True, slots=True)
class Rejection:
    """Answered by the proxy itself, then the connection is closed."""

    status: int
    detail: str = ""
    headers: tuple[tuple[bytes, bytes], ...] = ()  # e.g. the Location of an HTTPRoute redirect


class RouteMatcher(Protocol):
    """Host (normalised) and path (without the query) to a route; ``head`` is there for matchers
    that look at the method, headers or query string."""

    def match(self, host: str, path: str, head: RequestHead) -> RouteEntry | None: ...


class _Refuse(Exception):
    def __init__(self, status: int, detail: str = "", headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(status, detail)
        self.rejection = Rejection(status, detail, headers)


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


_NAMED: Final[dict[bytes, frozenset[bytes]]] = {}  # Connection header value -> the names it adds
_KEEP_ALIVE: Final = frozenset({b"keep-alive"})
_CLOSE: Final = frozenset({b"close"})
_NO_NAMES: Final[frozenset[bytes]] = frozenset()


def connection_names(value: bytes) -> frozenset[bytes]:
    """The header names a Connection header makes hop-by-hop, beyond those always removed
    ("keep-alive" and "close" name nothing more to remove). Memoised: a few values recur."""
    if value == b"keep-alive":  # what most clients and backends send: no hash of a new value
        return _KEEP_ALIVE
    if value == b"close":
        return _CLOSE
    try:
        return _NAMED[value]
    except KeyError:
        pass
    names = frozenset(_tokens(value))
    if len(_NAMED) >= 1024:
        _NAMED.clear()
    _NAMED[value] = names
    return names


def websocket_accept(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip() + _WEBSOCKET_GUID, usedforsecurity=False).digest())


def prepare(
    head: RequestHead, *, peer: Peer, matcher: RouteMatcher, rules: RequestRules
) -> Forward | Rejection:
    """Validate a request head, route it and render the head the backend receives (pure)."""
    try:
        return _prepare(head, peer, matcher, rules)
    except _Refuse as refused:
        return refused.rejection


def _websocket_key(head: RequestHead, method: bytes, key: bytes | None, version: bytes | None) -> bytes:
    """The handshake's key when the request is a valid RFC 6455 opening handshake, else refused."""
    if method != b"GET" or not head.http11:
        raise _Refuse(400, "a WebSocket handshake must be an HTTP/1.1 GET")
    if version is None or version.strip() != b"13":
        raise _Refuse(400, "Sec-WebSocket-Version must be 13")
    try:
        raw = base64.b64decode(key.strip(), validate=True) if key is not None else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise _Refuse(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    assert key is not None
    return key.strip()


# _prepare writes the backend's head into this one buffer (ADR 0020): it runs to its end without
# yielding, the data path is single-threaded, and the buffer stays allocated between requests.
_HEAD: Final = BytesWriter()
PASS: Final = 0  # the actions every HeaderActions table has: forward the header, or remove it
DROP: Final = 1


_SHAPE_LENGTHS: Final = 64  # names this long or longer always take the dict lookup
_SHAPES: Final = _SHAPE_LENGTHS * 32


def _shape(name: bytes) -> int:
    """A header name's length and first letter, case-blind (ASCII letters share their low 5 bits)."""
    return len(name) * 32 + (name[0] & 0x1F)


class HeaderActions:
    """What a codec does with each header name, looked up on the name as it was sent ("Host",
    "HOST", ...): the lower-cased ``table`` decides, a ``Proxy-*`` name is dropped, any other
    passes. Names are learnt as they are seen, so a header costs one dict lookup on ``known``
    instead of ``lower()`` and two tests. Bounded: peers choose the names, and a flood of
    distinct ones only costs a clear."""

    __slots__ = ("known", "limit", "special", "spelled", "spelled_action", "table")

    def __init__(self, table: Mapping[bytes, int], *, limit: int = 2048) -> None:
        self.table = table
        self.limit = limit
        self.known: dict[bytes, int] = {}
        # Which (length, first letter) a name in the table (or a Proxy-* name) can have: most
        # headers have neither and pass without the hash and compare of a dict lookup on a name
        # the parser made anew (a tenth of the request path's instructions, callgrind).
        special = bytearray(_SHAPES)
        for name in [*table, *(b"proxy-" + b"x" * n for n in range(_SHAPE_LENGTHS - 6))]:
            if len(name) < _SHAPE_LENGTHS:
                special[_shape(name)] = 1
        self.special = bytes(special)
        # The last spelling seen of each shape and its action: peers spell a name the same way
        # every time ("Host", "Content-Length"), and comparing it costs a tenth of hashing it.
        self.spelled: list[bytes] = [b""] * _SHAPES
        self.spelled_action: list[int] = [PASS] * _SHAPES

    def may_act(self, name: bytes) -> bool:
        """False when ``name`` certainly passes (it cannot be one the table or Proxy-* names)."""
        return len(name) >= _SHAPE_LENGTHS or self.special[_shape(name)] != 0

    def action(self, name: bytes) -> int:
        """What to do with a header called ``name`` (as sent): PASS, DROP or the table's action."""
        n = len(name)
        if n >= _SHAPE_LENGTHS:
            found = self.known.get(name)
            return found if found is not None else self.learn(name)
        shape = n * 32 + (name[0] & 0x1F)
        if not self.special[shape]:
            return PASS  # may_act's test, without a second call: this runs for every header
        if name == self.spelled[shape]:
            return self.spelled_action[shape]
        found = self.known.get(name)
        if found is None:
            found = self.learn(name)
        self.spelled[shape] = name
        self.spelled_action[shape] = found
        return found

    def learn(self, name: bytes) -> int:
        lname = name.lower()
        action = self.table.get(lname)
        if action is None:
            action = DROP if lname.startswith(b"proxy-") else PASS
        if len(self.known) >= self.limit:
            self.known.clear()
        self.known[name] = action
        return action


# What the request header loop does with each special header name; others pass through.
# Final: mypyc folds these into the compiled comparisons instead of a module-dict lookup each.
_HOST: Final = 2
_LENGTH: Final = 3
_TE: Final = 4
_CONNECTION: Final = 5
_XFF: Final = 6
_FORWARDED: Final = 7
_XFP: Final = 8
_XFH: Final = 9
_VIA: Final = 10
_UPGRADE: Final = 11
_WS_KEY: Final = 12
_WS_VERSION: Final = 13
_H2C_SETTINGS: Final = frozenset({b"http2-settings"})
_ACTIONS: Final[dict[bytes, int]] = {
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"transfer-encoding": _TE,
    b"connection": _CONNECTION,
    b"x-forwarded-for": _XFF,
    b"forwarded": _FORWARDED,
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-host": _XFH,
    b"via": _VIA,
    b"upgrade": _UPGRADE,
    **{name: DROP for name in HOP_BY_HOP - {b"connection", b"transfer-encoding", b"upgrade"}},
}
assert set(_ACTIONS) == _SPECIAL
_GONE: Final = _SPECIAL | {b"close"}  # Connection tokens naming nothing left to remove
# Forwarded as they are, and remembered for a WebSocket handshake.
_REQUEST_NAMES: Final = HeaderActions(
    {**_ACTIONS, b"sec-websocket-key": _WS_KEY, b"sec-websocket-version": _WS_VERSION}
)


_HOSTS: Final[dict[bytes, str]] = {}  # Host header value -> normalize_host(value): a few distinct values
_HOSTS_LIMIT: Final = 4096


class _LastHost:
    """The last Host value seen and its name: a keep-alive connection names the same host again
    and again, and comparing two values costs less than hashing a new one for ``_HOSTS``."""

    def __init__(self) -> None:
        self.raw = b""
        self.name = ""  # normalize_host("")


_LAST_HOST: Final = _LastHost()


def _hostname(host: bytes) -> str:
    last = _LAST_HOST
    if host == last.raw:
        return last.name
    try:
        name = _HOSTS[host]
    except KeyError:
        name = normalize_host(host.decode("latin-1"))
        if len(_HOSTS) >= _HOSTS_LIMIT:
            _HOSTS.clear()
        _HOSTS[host] = name
    last.raw = host
    last.name = name
    return name


def _prepare(head: RequestHead, peer: Peer, matcher: RouteMatcher, rules: RequestRules) -> Forward:
    method = head.method
    if method == b"CONNECT":
        raise _Refuse(405, "CONNECT is not supported")
    http11 = head.http11
    host: bytes | None = None
    length: bytes | None = None
    te: bytes | None = None
    xff: bytes | None = None
    forwarded: bytes | None = None
    xfp: bytes | None = None
    xfh: bytes | None = None
    via: bytes | None = None
    upgrade: bytes | None = None
    ws_key: bytes | None = None
    ws_version: bytes | None = None
    named: frozenset[bytes] | None = None
    # The headers are read twice: here for what decides the request, and when the head for the
    # backend is written (at the end, once the request line is known), for the ones it forwards.
    # Asking a name's action again costs a compare; a list of the forwarded ones would cost an
    # append per part and the list's growth (callgrind).
    header_actions = _REQUEST_NAMES
    for name, value in head.headers:
        action = header_actions.action(name)
        if action == PASS:
            continue
        if action == _HOST:
            if host is not None:
                raise _Refuse(400, "more than one Host header")
            host = value
        elif action == _XFF:
            xff = value if xff is None else xff + b", " + value
        elif action == _LENGTH:
            length = value
        elif action == _CONNECTION:
            names = connection_names(value)
            named = names if named is None else named | names
        elif action == _TE:
            if te is not None:
                raise _Refuse(400, "more than one Transfer-Encoding header")
            te = value
        elif action == _FORWARDED:
            forwarded = value if forwarded is None else forwarded + b", " + value
        elif action == _XFP:
            xfp = value
        elif action == _XFH:
            xfh = value
        elif action == _VIA:
            via = value if via is None else via + b", " + value
        elif action == _UPGRADE:
            upgrade = value if upgrade is None else upgrade + b", " + value
        elif action == _WS_KEY:
            ws_key = value
        elif action == _WS_VERSION:
            ws_version = value
    # Forwarded headers the backend must not see: those Connection names (hop-by-hop, RFC 9110
    # 7.6.1) and, for a refused upgrade, HTTP2-Settings. Both are rare; so is an HTTPRoute
    # filter's edit (``edits``): each takes the slower way of a list of pairs.
    drop = _NO_NAMES
    if named is None:
        named = _NO_NAMES
    else:
        drop = named - _GONE

    url = head.target
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
                raise _Refuse(400, "userinfo in request target")
            if not target.startswith(b"/"):
                target = b"/" + target
            host = authority  # RFC 9112 3.2.2: the authority replaces Host
        else:
            raise _Refuse(400, "request target must be origin-form or absolute-form")
    if host is None:
        raise _Refuse(400, "missing Host header")
    hostname = _hostname(host)
    if not hostname:
        raise _Refuse(400, "invalid Host header")

    if te is not None:
        if not http11:
            raise _Refuse(400, "Transfer-Encoding in an HTTP/1.0 request")
        if te.strip().lower() != b"chunked":
            raise _Refuse(400, "only Transfer-Encoding: chunked is accepted")
    if length is not None:
        if not length.isdigit():
            raise _Refuse(400, "Content-Length must be one decimal number")
        if int(length) > rules.max_body_bytes:
            raise _Refuse(413)
    # Upgrades: only a WebSocket handshake is passed on (and tunnelled after the backend's 101);
    # any other token (h2c, TLS/1.0, ...) is removed and the request served as plain HTTP/1.1.
    is_upgrade = False
    accept: bytes | None = None
    if upgrade is not None:
        has_body = te is not None or (length is not None and int(length) > 0)
        if head.upgrade and has_body:
            # llhttp hands everything after such a head over as upgraded bytes: never reparse it.
            raise _Refuse(400, "a request with Upgrade cannot carry a body")
        if _tokens(upgrade) == {b"websocket"} and b"upgrade" in named:
            ws = _websocket_key(head, method, ws_key, ws_version)
            is_upgrade = True
            accept = websocket_accept(ws)
        else:
            # HTTP2-Settings belongs to h2c; it is named by Connection and gone already when the
            # client followed RFC 7540, and dropped here when it did not.
            drop = drop | _H2C_SETTINGS
    # The path is tested as text (latin-1, byte for byte): bytes.__contains__ first tries its
    # argument as an int and builds (then drops) a TypeError, and bytes.find() parses a tuple of
    # arguments (about 800 instructions a call, callgrind); str's "in" and find() are compiled
    # primitives (ADR 0016).
    text = target.decode("latin-1")
    query = text.find("?")
    path = text if query < 0 else text[:query]
    folded = path.lower() if "%" in path else path
    if ("." in path or "%2e" in folded) and not _DOT_SEGMENT.isdisjoint(folded.split("/")):
        # "/api/../admin" would match the /api route and reach /admin behind it.
        raise _Refuse(400, "dot-segments in the request path")
    entry = matcher.match(hostname, path, head)
    if entry is None:
        raise _Refuse(404, "no route for this host and path")
    upstream_host = host
    response_headers: tuple[HeaderModifier, ...] = ()
    edits: tuple[HeaderModifier, ...] = ()
    if entry.hop is not None:
        # An HTTPRoute rule: a redirect or a 500 answered here, else its filters edit the request.
        hop = entry.hop
        assert isinstance(hop, GatewayHop)
        redirect = redirect_for(
            hop,
            scheme=peer.scheme.decode("latin-1"),
            host=hostname,
            path=path,
            query=text.partition("?")[2],
        )
        if redirect is not None:
            raise _Refuse(redirect.status, "", ((b"Location", redirect.location.encode("latin-1")),))
        if hop.backend is None:
            raise _Refuse(500, "every backendRef of this rule has weight 0")
        if hop.backend.error is not None:
            raise _Refuse(500, "the backendRef picked for this request is invalid")
        edits = hop.request_headers
        rewrite = hop.action.rewrite
        if rewrite is not None:
            target = rewrite_target(hop, target)
            if rewrite.hostname is not None:
                upstream_host = rewrite.hostname.encode("latin-1")
        response_headers = hop.response_headers

    cookie = entry.affinity_cookie
    affinity = _cookie(head.headers, cookie) if cookie else None
    address = peer.node
    trusted = peer.trusted
    proto = xfp if trusted and xfp else peer.scheme

    out = _HEAD
    out.truncate(0)
    out.write(method)
    out.write(b" ")
    out.write(target)
    out.write(b" HTTP/1.1\r\nHost: ")
    out.write(upstream_host)
    out.write(b"\r\n")
    if drop or edits:
        for name, value in _forwarded_pairs(head, drop, edits):
            out.write(name)
            out.write(b": ")
            out.write(value)
            out.write(b"\r\n")
    else:
        for name, value in head.headers:
            if _forwards(header_actions.action(name)):
                out.write(name)
                out.write(b": ")
                out.write(value)
                out.write(b"\r\n")
    if rules.forwarded_header:
        chain = forwarded
        node = b'"[%b]"' % address if b":" in address else address
        hop = b"for=%b;proto=%b" % (node, proto)
        out.write(b"Forwarded: ")
        out.write(forwarded + b", " + hop if forwarded else hop)
    else:
        chain = xff
        out.write(b"X-Forwarded-For: ")
        out.write(xff + b", " + address if xff else address)
    # Each line's CRLF is written with the constant that follows it: fewer calls.
    out.write(b"\r\nX-Forwarded-Proto: ")
    out.write(proto)
    out.write(b"\r\nX-Forwarded-Host: ")
    out.write(xfh if trusted and xfh else host)
    out.write(b"\r\nVia: ")
    out.write(via + b", " + rules.via if via else rules.via)
    if te is not None:
        out.write(b"\r\nTransfer-Encoding: chunked")
    elif length is not None:
        out.write(b"\r\nContent-Length: ")
        out.write(length)
    out.write(b"\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n" if is_upgrade else b"\r\n\r\n")
    rendered = out.getvalue()
    # Positional: this runs for every request, and keywords cost a third more here.
    return Forward(
        rendered,
        entry,
        head.keep_alive and not is_upgrade,
        http11,
        method == b"GET" or method in IDEMPOTENT,  # GET first: a compare, not a hash
        method == b"HEAD",
        te is not None,
        is_upgrade,
        chain if trusted else None,
        accept,
        affinity,
        response_headers,
    )


def _forwards(action: int) -> bool:
    """Whether ``_prepare`` writes a client header with this action on to the backend as it came."""
    return action in (PASS, _WS_KEY, _WS_VERSION)


def _forwarded_pairs(
    head: RequestHead, drop: frozenset[bytes], edits: tuple[HeaderModifier, ...]
) -> list[tuple[bytes, bytes]]:
    """The headers ``_prepare`` forwards, in order, less those named in ``drop`` (lower-case), then
    edited by an HTTPRoute rule's RequestHeaderModifier filters."""
    actions = _REQUEST_NAMES
    forwarded = [
        (name, value)
        for name, value in head.headers
        if _forwards(actions.action(name)) and (not drop or name.lower() not in drop)
    ]
    return modified_headers(forwarded, edits) if edits else forwarded


def _cookie(headers: Sequence[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of cookie ``name`` (RFC 6265 Cookie header syntax), None when absent."""
    wanted = name.encode()
    for header, value in headers:
        if header.lower() != b"cookie":
            continue
        for pair in value.split(b";"):
            key, eq, found = pair.strip().partition(b"=")
            if eq and key == wanted:
                return found.strip().strip(b'"').decode("latin-1") or None
    return None
