"""The interfaces between the pieces of the request path, so that each side can be replaced alone.

```
client bytes ──codec (http1; HTTP/2 beside it)──▶ RequestHead ──request.prepare (pure)──▶ Forward
   ▲                                                                                  │
   └── Downstream (codec side of one exchange) ◀── Exchange ──UpstreamListener──▶ UpstreamConnection
```

A codec (``http1.ClientConnection`` today, an HTTP/2 connection's streams tomorrow) turns bytes into a
``request.RequestHead``, asks ``request.prepare`` for a ``Forward`` or a ``Rejection``, and drives an
``exchange.Exchange`` with the body; the exchange talks back only through ``Downstream``. The upstream
side stays HTTP/1.1 and talks to the exchange only through ``UpstreamListener``.
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = ["Corkable", "Downstream", "Pause", "TunnelPeer", "UpstreamListener"]


class Pause:
    """Why a client's reading is paused (bits of an int); reading resumes when no reason is left.

    Plain int constants, not an ``IntFlag``: every request clears a reason, and enum arithmetic
    cost more than the rest of that bookkeeping."""

    PIPELINE: Final = 1  # a later pipelined request waits for the earlier response
    UPSTREAM: Final = 2  # the backend's socket buffer is full
    PENDING: Final = 4  # the body held before the upstream connection is ready hit its limit


class TunnelPeer(Protocol):
    """The other end of an upgraded (WebSocket) connection: raw bytes both ways."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def set_paused(self, reason: int, on: bool) -> None: ...


class Corkable(Protocol):
    def cork(self) -> None: ...

    def uncork(self) -> None: ...


class Downstream(TunnelPeer, Protocol):
    """What an exchange needs from the client side of its request (one HTTP/1.1 connection, or one
    HTTP/2 stream). ``write`` takes HTTP/1.1 response bytes as the exchange renders them; an HTTP/2
    codec re-frames them (or, better, a second ``Exchange.render_head`` is added beside it)."""

    # Extra response header lines (e.g. Strict-Transport-Security on HTTPS), b"" for none.
    response_headers: bytes

    @property
    def writing_paused(self) -> bool: ...

    def cork(self) -> None: ...

    def uncork(self) -> None: ...

    def abort(self) -> None: ...

    def exchange_finished(self, exchange: object) -> None: ...

    def start_tunnel(self, conn: TunnelPeer, tail: bytes, exchange: object) -> None: ...


class UpstreamListener(Protocol):
    """What an upstream connection reports to the exchange using it (``exchange.Exchange``)."""

    upstream_active: float
    # The client side the response goes to: its writes are held while one backend read is parsed.
    downstream: Corkable

    def pause_client(self, on: bool) -> None: ...

    def response_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_complete(self, keep_alive: bool) -> None: ...

    def upstream_upgraded(self, tail: bytes) -> None: ...

    def upstream_lost(self) -> None: ...

    def upstream_failed(self, detail: str) -> None: ...
