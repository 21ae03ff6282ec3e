"""The sans-I/O request step: a parsed request head in, a ``Forward`` (the request as the backend
will see it, and the route it matched) or a ``Rejection`` out. No sockets, no clock, no state:
tests feed heads and check the outcome, in the manner of h11.

Codecs (HTTP/1.1 in ``http1``; HTTP/2 beside it) build a ``RequestHead``; routing goes through a
``RouteMatcher`` (the routing table today; a Gateway API HTTPRoute matcher on method, headers and
query can take its place, since it receives the whole head). The upstream side always speaks
HTTP/1.1, so ``Forward.head`` is an HTTP/1.1 request head whatever the client spoke.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingressfed.proxy.table import RouteEntry, normalize_host

__all__ = [
    "IDEMPOTENT",
    "Forward",
    "Peer",
    "Rejection",
    "RequestHead",
    "RouteMatcher",
    "prepare",
]

# Hop-by-hop headers (RFC 9110 7.6.1) plus legacy ones; Proxy-* are matched by prefix.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection"}
)
_SPECIAL = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"forwarded",
    b"via",
}
_DOT_SEGMENT = frozenset({b".", b"..", b"%2e", b"%2e%2e", b".%2e", b"%2e."})
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request head as a codec parsed it (names and values as received, in order)."""

    method: bytes
    target: bytes
    headers: Sequence[tuple[bytes, bytes]]
    http11: bool = True
    keep_alive: bool = True  # the codec's reading of version and Connection: close / keep-alive
    upgrade: bool = False  # the codec saw an upgrade request (Connection: upgrade with Upgrade)


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent the request: the socket peer, and whether it is a trusted proxy."""

    address: str
    trusted: bool = False
    via: bytes = b"1.1 ingressfed"
    scheme: bytes = b"http"  # what the client spoke to us: "https" behind a TLS listener


@dataclass(frozen=True, slots=True)
class Forward:
    head: bytes  # the HTTP/1.1 request head for the backend, ending in an empty line
    entry: RouteEntry
    keep_alive: bool
    http11: bool
    idempotent: bool
    is_head: bool
    chunked: bool  # the body is chunked (the proxy re-chunks what the codec decodes)
    upgrade: bool
    # (X-Forwarded-For, Forwarded) from a trusted peer: the client is further away than the peer.
    forwarded_for: tuple[bytes | None, bytes | None] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Answered by the proxy itself, then the connection is closed."""

    status: int
    detail: str = ""


class RouteMatcher(Protocol):
    """Host (normalised) and path (without the query) to a route; ``head`` is there for matchers
    that look at the method, headers or query string."""

    def match(self, host: str, path: str, head: RequestHead) -> RouteEntry | None: ...


class _Refuse(Exception):
    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(status, detail)
        self.rejection = Rejection(status, detail)


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def prepare(
    head: RequestHead, *, peer: Peer, matcher: RouteMatcher, max_body_bytes: int
) -> Forward | Rejection:
    """Validate a request head, route it and render the head the backend receives (pure)."""
    try:
        return _prepare(head, peer, matcher, max_body_bytes)
    except _Refuse as refused:
        return refused.rejection


def _prepare(head: RequestHead, peer: Peer, matcher: RouteMatcher, max_body_bytes: int) -> Forward:
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
    named: set[bytes] = set()
    out: list[bytes] = []
    for name, value in head.headers:
        lname = name.lower()
        if lname not in _SPECIAL and not lname.startswith(b"proxy-"):
            out += (name, b": ", value, b"\r\n")
            continue
        if lname == b"host":
            if host is not None:
                raise _Refuse(400, "more than one Host header")
            host = value
        elif lname == b"content-length":
            length = value
        elif lname == b"transfer-encoding":
            if te is not None:
                raise _Refuse(400, "more than one Transfer-Encoding header")
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
    hostname = normalize_host(host.decode("latin-1"))
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
        if int(length) > max_body_bytes:
            raise _Refuse(413)
    raw_path = target.split(b"?", 1)[0]
    lowered = raw_path.lower() if b"%" in raw_path else raw_path
    if (b"." in raw_path or b"%2e" in lowered) and not _DOT_SEGMENT.isdisjoint(lowered.split(b"/")):
        # "/api/../admin" would match the /api route and reach /admin behind it.
        raise _Refuse(400, "dot-segments in the request path")
    entry = matcher.match(hostname, raw_path.decode("latin-1"), head)
    if entry is None:
        raise _Refuse(404, "no route for this host and path")

    is_upgrade = head.upgrade and upgrade is not None
    address = peer.address.encode()
    out += (b"X-Forwarded-For: ", xff + b", " + address if xff else address, b"\r\n")
    trusted = peer.trusted
    out += (b"X-Forwarded-Proto: ", xfp if trusted and xfp else peer.scheme, b"\r\n")
    out += (b"X-Forwarded-Host: ", xfh if trusted and xfh else host, b"\r\n")
    out += (b"Via: ", via + b", " + peer.via if via else peer.via, b"\r\n")
    if te is not None:
        out.append(b"Transfer-Encoding: chunked\r\n")
    elif length is not None:
        out += (b"Content-Length: ", length, b"\r\n")
    if is_upgrade:
        assert upgrade is not None
        out += (b"Connection: upgrade\r\nUpgrade: ", upgrade, b"\r\n")
    rendered = b"".join((method, b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n", *out, b"\r\n"))
    return Forward(
        head=rendered,
        entry=entry,
        keep_alive=head.keep_alive and not is_upgrade,
        http11=http11,
        idempotent=method in IDEMPOTENT,
        is_head=method == b"HEAD",
        chunked=te is not None,
        upgrade=is_upgrade,
        forwarded_for=(xff, forwarded) if trusted and (xff is not None or forwarded is not None) else None,
    )
