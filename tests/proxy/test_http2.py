"""HTTP/2 to clients: the same request rules as HTTP/1.1, and every known attack bounded while a
second client keeps being served."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from ingressfed.proxy.exchange import Exchange
from ingressfed.proxy.http2 import H2ClientConnection, _Stream
from ingressfed.proxy.ports import Pause
from ingressfed.tls.settings import Http2Settings
from tests.proxy.conftest import BackendServer, eventually
from tests.proxy.h2client import h2_client
from tests.proxy.tlsproxy import HOST, HttpsProxy, https_proxy


def refusals(h: HttpsProxy, reason: str) -> float:
    value = h.proxy.metrics.registry.get_sample_value(
        "ingressfed_proxy_http2_refusals_total", {"reason": reason}
    )
    return value or 0.0


async def second_client_is_served(h: HttpsProxy) -> None:
    """A fresh client on a fresh connection gets its answer (curl --http2)."""
    proc = await asyncio.create_subprocess_exec(
        *h.curl("--http2", "-w", "\n%{http_version} %{http_code}", h.url("/second")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().rsplit("\n", 1)[1] == "2 200"


async def test_streams_carry_routing_headers_uploads_and_rejections(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path) as h, h2_client(h.port, HOST, h.client_context()) as c:
        first = await c.get(HOST, "/a?q=1", extra=[("cookie", "a=1"), ("cookie", "b=2"), ("te", "trailers")])
        assert first.status == 200
        seen = json.loads(first.body)
        assert seen["path"] == "/a?q=1"
        assert seen["headers"]["Cookie"] == "a=1; b=2"
        assert seen["headers"]["X-Forwarded-Proto"] == "https"
        assert "Te" not in seen["headers"]
        assert first.headers[b"via"] == b"1.1 ingressfed"
        assert b"connection" not in first.headers and b"transfer-encoding" not in first.headers
        # A body without content-length streams to the backend chunked.
        sid = c.request(HOST, "/upload", method="POST", end=False)
        for _ in range(8):
            c.conn.send_data(sid, b"z" * 10000)
        c.conn.end_stream(sid)
        c.flush()
        await c.until(lambda: c.responses[sid].ended)
        assert c.responses[sid].status == 200 and c.responses[sid].body == b"80000"
        # Trailers end a request as END_STREAM on its last DATA frame does (gRPC clients send them).
        sid = c.request(HOST, "/upload", method="POST", end=False, extra=[("te", "trailers")])
        c.conn.send_data(sid, b"t" * 5000)
        c.conn.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
        c.flush()
        await c.until(lambda: c.responses[sid].ended or c.responses[sid].reset is not None)
        assert c.responses[sid].status == 200 and c.responses[sid].body == b"5000"
        # An unknown host is answered 404 on its stream; the connection stays usable.
        missing = await c.get("nowhere.example.org", "/")
        assert missing.status == 404
        again = await c.get(HOST, "/after")
        assert again.status == 200


async def test_a_response_larger_than_the_clients_window_arrives_whole(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    for server in backends.values():
        server.release.set()
    async with https_proxy(backends, tmp_path) as h, h2_client(h.port, HOST, h.client_context()) as c:
        response = await c.get(HOST, "/stream?n=20&size=65536")
        assert response.status == 200
        assert len(response.body) == 20 * 65536


async def test_request_bodies_of_reset_and_padded_streams_keep_the_connections_window_open(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    """Bytes of a body the proxy took count against the connection's window too. A stream whose
    backend is not reading (paused, as ``Exchange.pause_client`` pauses it) holds them unacknowledged;
    reset then, they must still be acknowledged, or the connection's window shrinks for good and the
    client stalls (60 x 4 kB > the 64 kB a client starts with). Padding counts the same way."""
    small = Http2Settings(initial_window_bytes=65535, max_resets=1000)
    async with (
        https_proxy(backends, tmp_path, http2=small) as h,
        h2_client(h.port, HOST, h.client_context()) as c,
    ):
        for _ in range(60):
            sid = c.request(HOST, "/upload", method="POST", end=False, extra=[("content-length", "8000")])
            await eventually(lambda sid=sid: _server_stream(h, sid) is not None)  # type: ignore[misc]
            stream = _server_stream(h, sid)
            assert stream is not None
            stream.set_paused(Pause.UPSTREAM, True)  # the backend stopped reading
            c.conn.send_data(sid, b"u" * 4000)
            c.flush()
            await eventually(lambda stream=stream: stream.unacked == 4000)  # type: ignore[misc]
            c.conn.reset_stream(sid, ErrorCodes.CANCEL)
            c.flush()
            await c.until(lambda: c.conn.outbound_flow_control_window >= 4000, timeout=10)
        sid = c.request(HOST, "/upload", method="POST", end=False)
        for _ in range(30):
            await c.until(lambda: c.conn.local_flow_control_window(sid) >= 1300, timeout=10)
            c.conn.send_data(sid, b"p" * 1000, pad_length=255)
            c.flush()
        c.conn.end_stream(sid)
        c.flush()
        await c.until(lambda: c.responses[sid].ended, timeout=10)
        assert c.responses[sid].status == 200 and c.responses[sid].body == b"30000"
        assert refusals(h, "rapid_reset") == 0 and not c.closed


def _server_stream(h: HttpsProxy, sid: int) -> _Stream | None:
    for client in h.proxy.engine.registry.clients:
        if isinstance(client, H2ClientConnection) and sid in client.streams:
            return client.streams[sid]
    return None


async def test_rapid_reset_ends_the_connection(backends: dict[str, BackendServer], tmp_path: Path) -> None:
    async with https_proxy(backends, tmp_path, http2=Http2Settings(max_resets=20)) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            for _ in range(60):
                sid = c.request(HOST, "/reset-me", end=True)
                c.conn.reset_stream(sid, ErrorCodes.CANCEL)
            c.flush()
            await c.until(lambda: c.terminated is not None or c.closed)
            assert c.terminated is not None and c.terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert refusals(h, "rapid_reset") == 1
        await second_client_is_served(h)


async def test_a_continuation_flood_ends_the_connection(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, http2=Http2Settings(max_header_frames=8)) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            block = Encoder().encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    (b":path", b"/"),
                    (b":authority", HOST.encode()),
                ]
            )
            head = HeadersFrame(1, data=block)  # no END_HEADERS: CONTINUATION frames must follow
            frames = [head.serialize()]
            for _ in range(40):
                frames.append(ContinuationFrame(1, data=b"\x40\x01x\x01y").serialize())  # never ends
            c.raw(b"".join(frames))
            await c.until(lambda: c.closed, timeout=10)
        assert refusals(h, "continuation_flood") == 1
        await second_client_is_served(h)


async def test_an_hpack_bomb_is_refused(backends: dict[str, BackendServer], tmp_path: Path) -> None:
    async with https_proxy(backends, tmp_path) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            encoder = Encoder()
            block = encoder.encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    (b":path", b"/"),
                    (b":authority", HOST.encode()),
                    (b"x-big", b"a" * 3000),
                ]
            )
            # 2000 one-byte references to that 3 kB dynamic-table entry: 6 MB once decoded.
            index = 62  # the newest dynamic entry
            bomb = block + bytes([0x80 | index]) * 2000
            frame = HeadersFrame(1, data=bomb)
            frame.flags.add("END_HEADERS")
            frame.flags.add("END_STREAM")
            c.raw(frame.serialize())
            await c.until(lambda: c.closed or c.terminated is not None, timeout=10)
            assert c.terminated is None or c.terminated.error_code != ErrorCodes.NO_ERROR
        assert refusals(h, "header_list_size") + refusals(h, "continuation_flood") == 1
        await second_client_is_served(h)


@pytest.mark.parametrize("flood", ["settings", "ping", "priority", "window_update", "unknown", "empty_data"])
async def test_control_frame_floods_end_the_connection(
    backends: dict[str, BackendServer], tmp_path: Path, flood: str
) -> None:
    async with https_proxy(backends, tmp_path, http2=Http2Settings(max_control_frames=100)) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            frame = {
                "settings": SettingsFrame(0, settings={SettingCodes.HEADER_TABLE_SIZE: 4096}).serialize(),
                "ping": PingFrame(0, opaque_data=b"12345678").serialize(),
                # PRIORITY on idle streams and unknown frame types raise no event in the engine:
                # counted on their frame headers (proxy/h2frames).
                "priority": PriorityFrame(3, depends_on=0, stream_weight=16).serialize(),
                "window_update": WindowUpdateFrame(0, window_increment=1).serialize(),
                "unknown": b"\x00\x00\x01\xfa\x00\x00\x00\x00\x00x",
                "empty_data": DataFrame(1, data=b"").serialize(),
            }[flood]
            if flood == "empty_data":
                c.request(HOST, "/upload", method="POST", end=False)  # stream 1, its body never ends
            c.raw(frame * 500)
            await c.until(lambda: c.closed or c.terminated is not None, timeout=10)
            assert c.terminated is not None and c.terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert refusals(h, "control_flood") == 1
        await second_client_is_served(h)


async def test_more_concurrent_streams_than_advertised_are_refused(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, http2=Http2Settings(max_concurrent_streams=4)) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            await c.until(lambda: SettingCodes.MAX_CONCURRENT_STREAMS in c.remote_settings)
            assert c.remote_settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 4
            # Open streams that stay open (bodies never ended), then one more than allowed,
            # past the client library's own check.
            for _ in range(4):
                c.request(HOST, "/upload", method="POST", end=False)
            block = Encoder().encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    (b":path", b"/"),
                    (b":authority", HOST.encode()),
                ]
            )
            extra = HeadersFrame(9, data=block, flags=["END_HEADERS", "END_STREAM"])  # the fifth stream
            c.raw(extra.serialize())
            await c.until(lambda: c.closed or c.terminated is not None, timeout=10)
        assert refusals(h, "max_concurrent_streams") == 1
        await second_client_is_served(h)


async def test_a_stream_over_the_limit_before_our_settings_are_acknowledged_is_refused_alone(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    """A client may open streams before it has read our SETTINGS (RFC 9113 5.1.2): the one over the
    limit is refused (REFUSED_STREAM, so it can be retried), the others are served."""
    async with https_proxy(backends, tmp_path, http2=Http2Settings(max_concurrent_streams=4)) as h:
        async with h2_client(h.port, HOST, h.client_context()) as c:
            sids = [c.request(HOST, f"/early/{i}") for i in range(5)]  # nothing read yet: no ACK sent
            await c.until(lambda: all(c.responses[s].ended or c.responses[s].reset is not None for s in sids))
            assert [c.responses[s].status for s in sids[:4]] == [200] * 4
            assert c.responses[sids[4]].reset == ErrorCodes.REFUSED_STREAM
            again = await c.get(HOST, "/after")
            assert again.status == 200 and not c.closed
        assert refusals(h, "max_concurrent_streams") == 1


@pytest.mark.parametrize("case", ["bad_settings_frame", "stream_window_exceeded"])
async def test_protocol_errors_the_engine_finds_are_named(
    backends: dict[str, BackendServer], tmp_path: Path, case: str
) -> None:
    async with https_proxy(backends, tmp_path) as h:
        async with h2_client(h.port, HOST, h.client_context(), settings={}) as c:
            if case == "bad_settings_frame":
                c.raw(b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5)  # 5 bytes: FRAME_SIZE_ERROR
                await c.until(lambda: c.closed or c.terminated is not None, timeout=10)
                assert c.terminated is None or c.terminated.error_code != ErrorCodes.NO_ERROR
            else:
                sid = c.request(HOST, "/upload", method="POST", end=False)
                # More than the stream's 1 MiB window in DATA frames the client library won't send.
                for _ in range(70):
                    c.raw(DataFrame(sid, data=b"x" * 16384).serialize())
                await c.until(lambda: c.responses[sid].reset is not None or c.closed, timeout=10)
                assert c.responses[sid].reset == ErrorCodes.FLOW_CONTROL_ERROR or c.terminated is not None
        assert refusals(h, "protocol_error") == 1
        await second_client_is_served(h)


async def test_a_response_stalled_on_a_zero_window_is_reset_and_releases_its_backend(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    for server in backends.values():
        server.release.set()
    async with https_proxy(backends, tmp_path, http2=Http2Settings(stall_timeout=1.0)) as h:
        async with h2_client(
            h.port, HOST, h.client_context(), settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}
        ) as c:
            sid = c.request(HOST, "/stream?n=40&size=65536")
            await eventually(lambda: bool(_exchanges(h)))
            [exchange] = _exchanges(h)
            await c.until(lambda: c.responses[sid].reset is not None or c.closed, timeout=15)
            assert c.responses[sid].reset == ErrorCodes.CANCEL
            assert not c.responses[sid].body
            assert not c.closed  # only the stream, not the connection
            c.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 65535})  # the client reads again
            c.flush()
            ok = await c.get(HOST, "/small")
            assert ok.status == 200 and ok.ended and ok.reset is None
        assert refusals(h, "stalled_window") == 1
        assert exchange.done and exchange.upstream is None  # its backend connection was let go
        await second_client_is_served(h)


def _exchanges(h: HttpsProxy) -> list[Exchange]:
    out: list[Exchange] = []
    for client in h.proxy.engine.registry.clients:
        if isinstance(client, H2ClientConnection):
            out += [s.exchange for s in client.streams.values() if s.exchange is not None]
    return out


async def test_an_http2_request_is_retried_on_the_next_cluster_and_limits_apply(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path) as h, h2_client(h.port, HOST, h.client_context()) as c:
        first = await c.get(HOST, "/who")
        nearest = backends[first.headers[b"x-served-by-cluster"].decode()]
        nearest.status_override = 503
        tried = len(nearest.seen)
        for _ in range(3):
            response = await c.get(HOST, "/retry-me")
            assert response.status == 200
            assert response.headers[b"x-served-by-cluster"] != nearest.name.encode()
        assert len(nearest.seen) > tried  # it was asked first and answered 503: a real retry
        # The body limit of the HTTP/1.1 path applies to HTTP/2 streams too.
        limit = h.proxy.settings.limits.max_body_bytes
        sid = c.request(HOST, "/upload", method="POST", end=False, extra=[("content-length", str(limit + 1))])
        await c.until(lambda: c.responses[sid].status != 0 or c.responses[sid].reset is not None)
        assert c.responses[sid].status == 413


@pytest.mark.parametrize("repeat", [1, 3])  # the first time translates each line, later ones find it
@pytest.mark.parametrize("long", [400, 1200])  # a head of more than 1024 bytes is not remembered whole
def test_a_backend_head_becomes_its_http2_fields(repeat: int, long: int) -> None:
    """Status first, names lower-cased, both ends stripped, connection-specific fields dropped, the
    listener's own headers last."""
    from ingressfed.proxy.http2 import head_fields, response_fields

    head = (
        b"HTTP/1.1 404 Not Found\r\nServer: nginx\r\nContent-Type:  text/plain \r\n"
        b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n"
        b"X-Long: " + b"v" * long + b"\r\nX-Empty:\r\nContent-Length: 12"
    )
    extra = head_fields(b"Strict-Transport-Security: max-age=300\r\nUpgrade: h2c\r\n")
    fields = (
        (b":status", b"404"),
        (b"server", b"nginx"),
        (b"content-type", b"text/plain"),
        (b"x-long", b"v" * long),
        (b"x-empty", b""),
        (b"content-length", b"12"),
    )
    for _ in range(repeat):
        assert response_fields(head, extra) == (*fields, (b"strict-transport-security", b"max-age=300"))
        assert response_fields(head, ()) == fields


GOOD = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.example.com"), (b":path", b"/")]


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (GOOD, None),
        ([*GOOD, (b"host", b"a.example.com"), (b"te", b"Trailers"), (b"x-e", b"")], None),
        ([*GOOD, (b"X-Upper", b"1")], "upper case"),
        ([*GOOD, (b"x-a", b"1\r\nx-injected: 1")], "NUL, CR, LF"),
        ([*GOOD, (b"x-a", b"nul\x00")], "NUL, CR, LF"),
        ([*GOOD, (b"x-a", b" padded")], "surrounding whitespace"),
        ([*GOOD, (b"x-a", b"\tpadded")], "surrounding whitespace"),
        ([*GOOD, (b"x-a", b"padded ")], "surrounding whitespace"),
        ([*GOOD, (b"x-a", b"padded\t")], "surrounding whitespace"),
        ([*GOOD, (b"x-a", b"\t")], "surrounding whitespace"),
        ([*GOOD, (b"x-a", b"a\nb")], "NUL, CR, LF"),
        ([*GOOD, (b"x-a", b"a\rb")], "NUL, CR, LF"),
        ([*GOOD, (b"x-a", b"inner space\tand tab")], None),
        ([*GOOD, (b"x a", b"1")], "not a token"),
        ([*GOOD, (b"", b"1")], "empty"),
        ([*GOOD, (b"connection", b"close")], "connection-specific"),
        ([*GOOD, (b"transfer-encoding", b"chunked")], "connection-specific"),
        ([*GOOD, (b"te", b"gzip")], "te other than trailers"),
        ([*GOOD, (b"host", b"a.example.com"), (b"host", b"b.example.com")], "host twice"),
        ([*GOOD, (b"host", b"b.example.com")], ":authority and host differ"),
        ([*GOOD[:3], (b"x-a", b"1"), GOOD[3]], "after a regular field"),
        ([*GOOD, (b":status", b"200")], "not one of a request's"),
        ([*GOOD, (b":path", b"/again")], "twice"),
        (GOOD[1:], "no :method"),
        (GOOD[:3], "no :scheme or :path"),
        ([*GOOD[:3], (b":path", b"")], "empty :path"),
        ([GOOD[0], GOOD[1], GOOD[3]], "neither :authority nor host"),
        ([(b":method", b"CONNECT"), (b":authority", b"a.example.com:443")], "CONNECT"),
    ],
)
def test_malformed_requests_are_named(fields: list[tuple[bytes, bytes]], why: str | None) -> None:
    from ingressfed.proxy.http2 import malformed

    found = malformed(fields)
    assert (found is None) if why is None else (found is not None and why in found), found


async def test_a_malformed_request_resets_its_stream_only(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path) as h, h2_client(h.port, HOST, h.client_context()) as c:
        # Past the client's own checks: the bytes a hostile client would send.
        c.conn.config.validate_outbound_headers = False
        c.conn.config.normalize_outbound_headers = False
        before = sum(len(b.seen) for b in backends.values())
        bad = await c.get(HOST, "/smuggle", extra=[("x-a", "1\r\nx-injected: yes")])
        assert bad.reset == ErrorCodes.PROTOCOL_ERROR and bad.status == 0
        upper = await c.get(HOST, "/upper", extra=[("X-Upper", "1")])
        assert upper.reset == ErrorCodes.PROTOCOL_ERROR
        assert sum(len(b.seen) for b in backends.values()) == before  # nothing reached a backend
        assert refusals(h, "malformed_request") == 2
        good = await c.get(HOST, "/after")  # the connection is still served
        assert good.status == 200 and not c.closed


async def test_end_stream_rides_on_the_last_frame(backends: dict[str, BackendServer], tmp_path: Path) -> None:
    """A response that is complete at once goes out as HEADERS + DATA(END_STREAM), and one without
    a body as HEADERS(END_STREAM): no empty DATA frame per response."""
    import h2.events

    async with https_proxy(backends, tmp_path) as h, h2_client(h.port, HOST, h.client_context()) as c:
        ends: dict[int, str] = {}
        original = c.conn.receive_data

        def receive(data: bytes) -> list[h2.events.Event]:
            events = original(data)
            for event in events:
                if isinstance(event, h2.events.ResponseReceived) and event.stream_ended is not None:
                    ends[event.stream_id] = "headers"
                elif isinstance(event, h2.events.DataReceived) and event.stream_ended is not None:
                    ends[event.stream_id] = "data" if event.data else "empty data"
            return events

        c.conn.receive_data = receive  # type: ignore[method-assign]
        full = await c.get(HOST, "/full")
        assert full.status == 200 and full.ended and json.loads(full.body)["path"] == "/full"
        head = await c.get(HOST, "/head", method="HEAD")
        assert head.status == 200 and head.body == b"" and head.ended
        missing = await c.get("nowhere.example.org", "/")  # answered by the proxy itself
        assert missing.status == 404 and missing.ended
        sids = sorted(c.responses)
        assert [ends.get(sid) for sid in sids] == ["data", "headers", "data"], ends


async def test_the_backend_pool_keeps_as_many_idle_connections_as_streams_can_use(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    streams = Http2Settings().max_concurrent_streams
    async with https_proxy(backends, tmp_path) as h:
        assert h.proxy.engine.pool.max_idle == 4 * streams
    (tmp_path / "off").mkdir()
    async with https_proxy(backends, tmp_path / "off", http2=Http2Settings(enabled=False)) as h:
        assert h.proxy.engine.pool.max_idle == 128  # HTTP/1.1 only: the pool's own default
