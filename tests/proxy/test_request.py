"""The sans-I/O request step: heads in, Forward or Rejection out; no sockets, no event loop."""

from __future__ import annotations

import pytest

from ingressfed.model import Backend, Cluster, Location, Route
from ingressfed.proxy.exchange import _RESPONSE_NAMES
from ingressfed.proxy.request import (
    _REQUEST_NAMES,
    DROP,
    PASS,
    Forward,
    HeaderActions,
    Peer,
    Rejection,
    RequestHead,
    RequestRules,
    prepare,
)
from ingressfed.proxy.table import RouteEntry, RoutingTable, build_table

CLUSTER = Cluster(name="c1", region="r", zone="z", location=Location(0.0, 0.0))
TABLE = build_table(
    [
        Route(host="app.example.com", path="/", backends=(Backend("c1", "10.0.0.1", 80),)),
        Route(host="app.example.com", path="/api", backends=(Backend("c1", "10.0.0.2", 80),)),
    ],
    [CLUSTER],
    version=1,
    locate=lambda c: c.location,
)
RULES = RequestRules(max_body_bytes=1000)
PEER = Peer(address="192.0.2.7")
TRUSTED = Peer(address="10.1.1.1", trusted=True)


def head(
    target: bytes = b"/", *headers: tuple[bytes, bytes], method: bytes = b"GET", **kw: bool
) -> RequestHead:
    return RequestHead(method=method, target=target, headers=[(b"Host", b"app.example.com"), *headers], **kw)


def forward(request: RequestHead, peer: Peer = PEER, table: RoutingTable = TABLE) -> Forward:
    outcome = prepare(request, peer=peer, matcher=table, rules=RULES)
    assert isinstance(outcome, Forward), outcome
    return outcome


def header_lines(outcome: Forward) -> list[bytes]:
    return outcome.head.split(b"\r\n")[1:-2]


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (head(method=b"CONNECT"), 405),
        (RequestHead(method=b"GET", target=b"/", headers=[]), 400),
        (head(b"/", (b"Host", b"other.example.com")), 400),
        (head(b"/", (b"Transfer-Encoding", b"gzip, chunked")), 400),
        (head(b"/", (b"Transfer-Encoding", b"chunked"), http11=False), 400),
        (head(b"/", (b"Content-Length", b"1001")), 413),
        (head(b"/", (b"Content-Length", b"+5")), 400),
        (head(b"/api/../admin"), 400),
        (head(b"/api/%2E%2e/admin"), 400),
        (head(b"http://user@app.example.com/"), 400),
        (head(b"example.com:80"), 400),
        (RequestHead(method=b"GET", target=b"/", headers=[(b"Host", b"unknown.example.org")]), 404),
        (head(b"http://evil.example.org/"), 404),
        (RequestHead(method=b"GET", target=b"/", headers=[(b"Host", b"bad:port")]), 400),
    ],
)
def test_rejections(request_head: RequestHead, status: int) -> None:
    outcome = prepare(request_head, peer=PEER, matcher=TABLE, rules=RULES)
    assert isinstance(outcome, Rejection)
    assert outcome.status == status


def test_longest_prefix_route_and_flags() -> None:
    outcome = forward(head(b"/api/x?y=1", method=b"HEAD"))
    assert outcome.entry.route.path == "/api"
    assert outcome.is_head and outcome.idempotent and not outcome.chunked and not outcome.upgrade
    assert outcome.head.startswith(b"HEAD /api/x?y=1 HTTP/1.1\r\nHost: app.example.com\r\n")
    assert forward(head(b"/", method=b"POST")).idempotent is False


def test_absolute_form_authority_replaces_host() -> None:
    outcome = forward(
        RequestHead(method=b"GET", target=b"http://APP.example.com:8080/a", headers=[(b"Host", b"x")])
    )
    assert outcome.head.startswith(b"GET /a HTTP/1.1\r\nHost: APP.example.com:8080\r\n")


def test_hop_by_hop_and_connection_named_headers_are_removed() -> None:
    outcome = forward(
        head(
            b"/",
            (b"Connection", b"keep-alive, X-Secret"),
            (b"X-Secret", b"1"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Proxy-Authorization", b"Basic x"),
            (b"TE", b"trailers"),
            (b"Accept", b"*/*"),
        )
    )
    names = [line.split(b":")[0].lower() for line in header_lines(outcome)]
    assert b"accept" in names
    for gone in (b"connection", b"x-secret", b"keep-alive", b"proxy-authorization", b"te"):
        assert gone not in names


def test_forwarding_headers_from_an_untrusted_peer_are_not_believed() -> None:
    outcome = forward(head(b"/", (b"X-Forwarded-For", b"8.8.8.8"), (b"X-Forwarded-Proto", b"https")))
    lines = header_lines(outcome)
    assert b"X-Forwarded-For: 8.8.8.8, 192.0.2.7" in lines
    assert b"X-Forwarded-Proto: http" in lines
    assert b"X-Forwarded-Host: app.example.com" in lines
    assert b"Via: 1.1 ingressfed" in lines
    assert outcome.forwarded_for is None


def test_trusted_peer_keeps_proto_and_hands_the_forwarded_chain_to_placement() -> None:
    outcome = forward(head(b"/", (b"X-Forwarded-For", b"8.8.8.8"), (b"X-Forwarded-Proto", b"https")), TRUSTED)
    assert b"X-Forwarded-Proto: https" in header_lines(outcome)
    assert outcome.forwarded_for == b"8.8.8.8"


def test_body_framing_is_rendered_by_the_proxy() -> None:
    chunked = forward(head(b"/", (b"Transfer-Encoding", b"chunked"), method=b"POST"))
    assert chunked.chunked and b"Transfer-Encoding: chunked" in header_lines(chunked)
    sized = forward(head(b"/", (b"Content-Length", b"12"), method=b"POST"))
    assert not sized.chunked and b"Content-Length: 12" in header_lines(sized)


def test_a_custom_matcher_sees_the_whole_head() -> None:
    seen: list[tuple[str, str, bytes]] = []
    entry = TABLE.entries[0]

    class ByMethod:
        def match(self, host: str, path: str, request: RequestHead) -> RouteEntry | None:
            seen.append((host, path, request.method))
            return entry if request.method == b"GET" else None

    assert isinstance(prepare(head(b"/x?q"), peer=PEER, matcher=ByMethod(), rules=RULES), Forward)
    refused = prepare(head(b"/x", method=b"DELETE"), peer=PEER, matcher=ByMethod(), rules=RULES)
    assert refused == Rejection(404, "no route for this host and path")
    assert seen == [("app.example.com", "/x", b"GET"), ("app.example.com", "/x", b"DELETE")]


WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 example key


def websocket(*extra: tuple[bytes, bytes], method: bytes = b"GET", key: bytes = WS_KEY) -> RequestHead:
    return head(
        b"/ws",
        (b"Connection", b"keep-alive, Upgrade"),
        (b"Upgrade", b"websocket"),
        (b"Sec-WebSocket-Key", key),
        (b"Sec-WebSocket-Version", b"13"),
        *extra,
        method=method,
        upgrade=True,
    )


def test_websocket_handshake_is_passed_on_with_the_accept_it_expects() -> None:
    outcome = forward(websocket())
    assert outcome.upgrade and not outcome.keep_alive
    assert outcome.websocket_accept == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3
    lines = header_lines(outcome)
    assert b"Upgrade: websocket" in lines and b"Connection: upgrade" in lines
    assert b"Sec-WebSocket-Key: " + WS_KEY in lines


@pytest.mark.parametrize(
    ("request_head", "detail"),
    [
        (websocket(method=b"POST"), "a WebSocket handshake must be an HTTP/1.1 GET"),
        (websocket(key=b"short"), "Sec-WebSocket-Key must be 16 bytes in base64"),
        (websocket(key=b"!!notbase64!!notbase64=="), "Sec-WebSocket-Key must be 16 bytes in base64"),
        (
            head(
                b"/", (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WebSocket-Key", WS_KEY)
            ),
            "Sec-WebSocket-Version must be 13",
        ),
        (websocket((b"Content-Length", b"5")), "a request with Upgrade cannot carry a body"),
    ],
)
def test_invalid_websocket_handshakes_are_refused(request_head: RequestHead, detail: str) -> None:
    outcome = prepare(request_head, peer=PEER, matcher=TABLE, rules=RULES)
    assert outcome == Rejection(400, detail)


@pytest.mark.parametrize(
    "tokens",
    [b"h2c", b"TLS/1.0", b"websocket, h2c", b"foo"],
)
def test_other_upgrades_are_removed_and_served_as_http11(tokens: bytes) -> None:
    outcome = forward(
        head(
            b"/public",
            (b"Connection", b"Upgrade, HTTP2-Settings"),
            (b"Upgrade", tokens),
            (b"HTTP2-Settings", b"AAMAAABkAAQAAP__"),
            upgrade=True,
        )
    )
    assert not outcome.upgrade and outcome.websocket_accept is None
    names = [line.split(b":")[0].lower() for line in header_lines(outcome)]
    assert b"upgrade" not in names and b"http2-settings" not in names and b"connection" not in names


def test_h2c_upgrade_with_a_body_is_refused() -> None:
    request_head = head(
        b"/", (b"Connection", b"Upgrade"), (b"Upgrade", b"h2c"), (b"Content-Length", b"3"), upgrade=True
    )
    assert prepare(request_head, peer=PEER, matcher=TABLE, rules=RULES) == Rejection(
        400, "a request with Upgrade cannot carry a body"
    )


XFF_AND_FORWARDED = ((b"X-Forwarded-For", b"8.8.8.8, 81.2.69.160"), (b"Forwarded", b"for=1.0.16.1"))


@pytest.mark.parametrize(
    ("forwarded_header", "peer", "chain", "sent", "removed"),
    [
        # X-Forwarded-For believed: our hop appended to it, the client's Forwarded removed.
        (
            False,
            TRUSTED,
            b"8.8.8.8, 81.2.69.160",
            b"X-Forwarded-For: 8.8.8.8, 81.2.69.160, 10.1.1.1",
            b"forwarded",
        ),
        (False, PEER, None, b"X-Forwarded-For: 8.8.8.8, 81.2.69.160, 192.0.2.7", b"forwarded"),
        # Forwarded believed: our hop appended to it, X-Forwarded-For removed.
        (
            True,
            TRUSTED,
            b"for=1.0.16.1",
            b"Forwarded: for=1.0.16.1, for=10.1.1.1;proto=http",
            b"x-forwarded-for",
        ),
        (True, PEER, None, b"Forwarded: for=1.0.16.1, for=192.0.2.7;proto=http", b"x-forwarded-for"),
        (
            True,
            Peer(address="2001:db8::7"),
            None,
            b'Forwarded: for=1.0.16.1, for="[2001:db8::7]";proto=http',
            b"x-forwarded-for",
        ),
    ],
)
def test_one_forwarding_header_is_believed_and_extended(
    forwarded_header: bool, peer: Peer, chain: bytes | None, sent: bytes, removed: bytes
) -> None:
    rules = RequestRules(max_body_bytes=1000, forwarded_header=forwarded_header)
    outcome = prepare(head(b"/", *XFF_AND_FORWARDED), peer=peer, matcher=TABLE, rules=rules)
    assert isinstance(outcome, Forward)
    lines = header_lines(outcome)
    assert sent in lines
    assert removed not in [line.split(b":")[0].lower() for line in lines]
    assert outcome.forwarded_for == chain


@pytest.mark.parametrize("actions", [_REQUEST_NAMES, _RESPONSE_NAMES], ids=["request", "response"])
def test_header_shape_filter_only_passes_names_the_table_would_pass(actions: HeaderActions) -> None:
    # The data path skips the dict lookup for names whose length and first letter no special name
    # has; every such name must be one the table would pass anyway, in any spelling.
    names = [
        *actions.table,
        *(n.upper() for n in actions.table),
        *(n.title() for n in actions.table),
        b"Proxy-Authorization",
        b"PROXY-x",
        b"proxy-" + b"y" * 80,
        b"User-Agent",
        b"Accept",
        b"Content-Type",
        b"Server",
        b"Date",
        b"X-Request-Id",
        b"Hostname",
        b"Vias",
        b"x" * 70,
    ]
    skipped = [name for name in names if not actions.may_act(name)]
    assert b"User-Agent" in skipped and b"Date" in skipped  # the filter does skip common names
    for name in names:
        if not actions.may_act(name):
            assert HeaderActions(actions.table).learn(name) == PASS, name
    for name in actions.table:
        assert actions.may_act(name) and actions.may_act(name.upper())


@pytest.mark.parametrize("actions", [_REQUEST_NAMES, _RESPONSE_NAMES], ids=["request", "response"])
def test_header_actions_by_remembered_spelling_agree_with_the_table(actions: HeaderActions) -> None:
    # The last spelling of each (length, first letter) is remembered with its action: names that
    # share a shape, in turns and in any case, must each still get the table's own answer.
    fresh = HeaderActions(actions.table)
    names = [
        *actions.table,
        *(n.upper() for n in actions.table),
        *(n.title() for n in actions.table),
        b"Hose",  # the shape of Host, passes
        b"Proxy-Foo",  # dropped
        b"Cache-Control",
        b"Connectiom",  # the shape of Connection, passes
        b"proxy-" + b"z" * 70,  # longer than any shape
    ]
    expected = {name: HeaderActions(actions.table).learn(name) for name in names}
    for _ in range(3):
        for name in [*names, *reversed(names)]:
            # a new object each time, as the parser hands over
            assert fresh.action(bytes(bytearray(name))) == expected[name], name
    assert fresh.action(b"Hose") == PASS and fresh.action(b"Proxy-Foo") == DROP


@pytest.mark.parametrize(
    ("extra", "kw", "removed"),
    [
        ((), {}, set()),
        (((b"Connection", b"X-Secret, keep-alive"),), {}, {b"x-secret"}),
        (((b"Upgrade", b"h2c"), (b"Connection", b"Upgrade")), {"upgrade": True}, {b"http2-settings"}),
    ],
    ids=["plain", "connection-names-one", "h2c-settings-not-named"],
)
def test_forwarded_headers_keep_their_order_and_spelling_whatever_is_removed(
    extra: tuple[tuple[bytes, bytes], ...], kw: bool, removed: set[bytes]
) -> None:
    """The backend's head lists the client's end-to-end headers as sent, in order, on every path
    that writes it: the common one and the one that removes headers first."""
    sent = [
        (b"Accept", b"*/*"),
        (b"X-Secret", b"s3"),
        (b"HTTP2-Settings", b"AAMAAABkAAQAAP__"),
        (b"user-AGENT", b"t/1"),
        (b"Accept", b"text/html"),
    ]
    lines = header_lines(forward(head(b"/", *sent[:2], *extra, *sent[2:], **kw)))
    passed = [line for line in lines if not line.startswith((b"Host:", b"X-Forwarded-", b"Via:"))]
    assert passed == [b"%s: %s" % (n, v) for n, v in sent if n.lower() not in removed]
