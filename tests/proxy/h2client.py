"""A small HTTP/2 client on the h2 library for crafted (and ordinary) requests to the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass
class Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.responses: dict[int, Response] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.remote_settings: dict[int, int] = {}
        self.closed = False

    def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())

    def raw(self, data: bytes) -> None:
        """Bytes straight onto the wire, past the h2 state machine (for crafted frames)."""
        self.writer.write(data)

    def request(
        self,
        host: str,
        path: str = "/",
        *,
        method: str = "GET",
        end: bool = True,
        extra: list[tuple[str, str]] | None = None,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", "https"),
            (":authority", host),
            (":path", path),
            *(extra or []),
        ]
        self.conn.send_headers(sid, [(k.encode(), v.encode()) for k, v in headers], end_stream=end)
        self.responses[sid] = Response()
        self.flush()
        return sid

    async def pump(self, timeout: float = 5.0) -> bool:
        """Read once and process; False when the server closed."""
        try:
            async with asyncio.timeout(timeout):
                data = await self.reader.read(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                r = self.responses.setdefault(event.stream_id, Response())
                fields = dict(event.headers)
                r.status = int(fields.pop(b":status"))
                r.headers = fields
            elif isinstance(event, h2.events.DataReceived):
                self.responses[event.stream_id].body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.responses[event.stream_id].ended = True
            elif isinstance(event, h2.events.StreamReset):
                self.responses.setdefault(event.stream_id, Response()).reset = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = event
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.remote_settings.update({int(k): v.new_value for k, v in event.changed_settings.items()})
        self.flush()
        return True

    async def until(self, predicate: object, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                if not await self.pump(timeout):
                    return

    async def get(self, host: str, path: str = "/", **kw: object) -> Response:
        sid = self.request(host, path, **kw)  # type: ignore[arg-type]
        await self.until(
            lambda: self.responses[sid].ended or self.responses[sid].reset is not None or self.closed
        )
        return self.responses[sid]


@contextlib.asynccontextmanager
async def h2_client(
    port: int, server_name: str, ctx: ssl.SSLContext, *, settings: dict[int, int] | None = None
) -> AsyncIterator[H2Client]:
    ctx.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_name)
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    client = H2Client(reader, writer)
    client.conn.initiate_connection()
    if settings:
        client.conn.update_settings(settings)
    client.flush()
    try:
        yield client
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
