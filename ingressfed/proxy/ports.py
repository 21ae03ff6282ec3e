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

from typing import Final

from mypy_extensions import trait

__all__ = ["Corkable", "Downstream", "Pause", "TunnelPeer", "UpstreamListener"]


class Pause:
    """Why a client's reading is paused (bits of an int); reading resumes when no reason is left.

    Plain int constants, not an ``IntFlag``: every request clears a reason, and enum arithmetic
    cost more than the rest of that bookkeeping."""

    PIPELINE: Final = 1  # a later pipelined request waits for the earlier response
    UPSTREAM: Final = 2  # the backend's socket buffer is full
    PENDING: Final = 4  # the body held before the upstream connection is ready hit its limit


# The interfaces are mypyc traits, not typing.Protocols: compiled, a call through a Protocol is a
# Python method call (attribute lookup, argument tuple, argument parsing: 600-1,000 instructions),
# through a trait a C call by table. Implementations name the trait they implement as a base.


@trait
class TunnelPeer:
    """The other end of an upgraded (WebSocket) connection: raw bytes both ways."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def set_paused(self, reason: int, on: bool) -> None:
        raise NotImplementedError


@trait
class Corkable:
    def cork(self) -> None:
        raise NotImplementedError

    def uncork(self) -> None:
        raise NotImplementedError


@trait
class Downstream(TunnelPeer, Corkable):
    """What an exchange needs from the client side of its request (one HTTP/1.1 connection, or one
    HTTP/2 stream). ``write`` takes HTTP/1.1 response bytes as the exchange renders them; an HTTP/2
    codec re-frames them (or, better, a second ``Exchange.render_head`` is added beside it)."""

    # Extra response header lines (e.g. Strict-Transport-Security on HTTPS), b"" for none.
    response_headers: bytes

    def send_blocked(self) -> bool:
        """The client reads slower than the response arrives (its buffer is full)."""
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def exchange_finished(self, exchange: object) -> None:
        raise NotImplementedError

    def start_tunnel(self, conn: TunnelPeer, tail: bytes, exchange: object) -> None:
        raise NotImplementedError


@trait
class UpstreamListener:
    """What an upstream connection reports to the exchange using it (``exchange.Exchange``)."""

    # The client side the response goes to: its writes are held while one backend read is parsed.
    downstream: Corkable

    def upstream_read(self, now: float) -> None:
        """The backend sent something (its silence is what the read timeout measures)."""
        raise NotImplementedError

    def pause_client(self, on: bool) -> None:
        raise NotImplementedError

    def response_head(self, status: int, reason: bytes, headers: list[bytes]) -> None:
        """``headers``: name, value, name, value, ... as received (flat: no tuple per header)."""
        raise NotImplementedError

    def response_body(self, data: bytes) -> None:
        raise NotImplementedError

    def response_complete(self, keep_alive: bool) -> None:
        raise NotImplementedError

    def upstream_upgraded(self, tail: bytes) -> None:
        raise NotImplementedError

    def upstream_lost(self) -> None:
        raise NotImplementedError

    def upstream_failed(self, detail: str) -> None:
        raise NotImplementedError
