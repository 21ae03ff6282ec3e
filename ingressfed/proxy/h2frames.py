"""HTTP/2 frame boundaries, as the proxy's own protections see them (RFC 9113 4.1) (pure).

libnghttp2 (through ngh2) parses and answers every frame; it does not report the ones our limits
count: PRIORITY and unknown frames raise no event, a refused or malformed stream is reset inside
it, and a header block still open across reads is invisible. ``InboundFrames`` walks the 9-byte
frame headers of what a client sends (never the payloads), so that ``http2`` can bound control
frames and header blocks with its own settings and name what it refused. ``sent`` finds the
RST_STREAM and GOAWAY frames in what the engine is about to send, so that what it refused by itself
is counted and named as well. ``goaway`` is the frame written once the engine is beyond use (after it found a
connection error, it sends nothing more).
"""

from __future__ import annotations

from typing import Final

__all__ = ["PREFACE_BYTES", "InboundFrames", "Sent", "goaway", "sent"]

PREFACE_BYTES: Final = 24  # "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 3.4)
_HEADER: Final = 9

_DATA: Final = 0x0
_HEADERS: Final = 0x1
_PRIORITY: Final = 0x2
_RST_STREAM: Final = 0x3
_SETTINGS: Final = 0x4
_PING: Final = 0x6
_GOAWAY: Final = 0x7
_WINDOW_UPDATE: Final = 0x8
_CONTINUATION: Final = 0x9

_END_STREAM: Final = 0x1
_END_HEADERS: Final = 0x4


class InboundFrames:
    """Frame headers of a client's byte stream, fed in the pieces reads deliver.

    ``controls`` counts frames that carry no request: SETTINGS, PING, WINDOW_UPDATE, PRIORITY,
    frame types this proxy does not know, and empty DATA frames that do not end their stream
    (each costs work and moves nothing). ``oversized`` becomes True, and stays so, once one header
    block (HEADERS and its CONTINUATION frames) has more than ``max_frames`` frames or more than
    ``max_bytes`` of payload; it is judged on each frame's header, before its payload arrives.
    """

    __slots__ = (
        "_header",
        "_preface",
        "_skip",
        "block_bytes",
        "block_frames",
        "controls",
        "max_bytes",
        "max_frames",
        "oversized",
    )

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._preface = PREFACE_BYTES  # bytes of the client preface still to come
        self._header = b""  # the start of a frame header split across reads
        self._skip = 0  # payload bytes of the current frame still to come
        self.block_frames = 0  # frames of the header block now open; 0 when none is
        self.block_bytes = 0
        self.controls = 0
        self.oversized = False

    @property
    def in_block(self) -> bool:
        """A header block is begun and not ended (its END_HEADERS not seen yet)."""
        return self.block_frames > 0

    def feed(self, data: bytes) -> None:
        n = len(data)
        i = 0
        if self._preface:
            i = min(self._preface, n)
            self._preface -= i
        while i < n:
            skip = self._skip
            if skip:
                step = min(skip, n - i)
                self._skip = skip - step
                i += step
                continue
            if self._header or n - i < _HEADER:
                take = min(_HEADER - len(self._header), n - i)
                self._header += data[i : i + take]
                i += take
                if len(self._header) < _HEADER:
                    return
                head = self._header
                self._header = b""
                self._frame(head, 0)
            else:
                self._frame(data, i)
                i += _HEADER

    def _frame(self, buf: bytes, at: int) -> None:
        length = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2]
        kind = buf[at + 3]
        flags = buf[at + 4]
        self._skip = length
        if kind == _DATA:
            if length == 0 and not flags & _END_STREAM:
                self.controls += 1
        elif kind in (_HEADERS, _CONTINUATION):  # a tuple: mypyc compares, no set lookup
            if kind == _HEADERS:
                self.block_frames = 1
                self.block_bytes = length
            elif self.block_frames:
                self.block_frames += 1
                self.block_bytes += length
            else:
                return  # a CONTINUATION with no block open: the engine ends the connection
            if self.block_frames > self.max_frames or self.block_bytes > self.max_bytes:
                self.oversized = True
            if flags & _END_HEADERS:
                self.block_frames = 0
                self.block_bytes = 0
        elif kind in (_PRIORITY, _SETTINGS, _PING, _WINDOW_UPDATE) or kind > _CONTINUATION:
            self.controls += 1


class Sent:
    """What ``sent`` found in a write: the RST_STREAM frames (stream id, error code), and the
    GOAWAY's error code and debug data if there is one (-1 if not)."""

    __slots__ = ("debug", "goaway_code", "resets")

    def __init__(self) -> None:
        self.resets: list[tuple[int, int]] = []
        self.goaway_code = -1
        self.debug = b""


def sent(data: bytes) -> Sent | None:
    """The RST_STREAM and GOAWAY frames in ``data``, whole frames from the start (what the engine
    hands over to be sent), or None when there is neither (most writes)."""
    found: Sent | None = None
    n = len(data)
    i = 0
    while i + _HEADER <= n:
        length = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
        kind = data[i + 3]
        body = i + _HEADER
        if kind == _RST_STREAM and length == 4 and body + 4 <= n:
            if found is None:
                found = Sent()
            sid = int.from_bytes(data[i + 5 : body], "big") & 0x7FFFFFFF
            found.resets.append((sid, int.from_bytes(data[body : body + 4], "big")))
        elif kind == _GOAWAY and length >= 8 and body + length <= n:
            if found is None:
                found = Sent()
            found.goaway_code = int.from_bytes(data[body + 4 : body + 8], "big")
            found.debug = data[body + 8 : body + length]
        i = body + length
    return found


def goaway(last_stream_id: int, code: int) -> bytes:
    """A GOAWAY frame (RFC 9113 6.8) without debug data."""
    return (
        b"\x00\x00\x08"
        + bytes((_GOAWAY, 0))
        + b"\x00\x00\x00\x00"
        + (last_stream_id & 0x7FFFFFFF).to_bytes(4, "big")
        + code.to_bytes(4, "big")
    )
