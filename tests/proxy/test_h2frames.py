"""h2frames: the frame headers the HTTP/2 protections count, whatever pieces the reads deliver."""

from __future__ import annotations

import pytest
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from ingressfed.proxy.h2frames import InboundFrames, goaway, sent
from ingressfed.proxy.http2 import dos_reason

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BLOCK = Encoder().encode(
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a")]
)
UNKNOWN = b"\x00\x00\x01\xfa\x00\x00\x00\x00\x00x"  # type 0xfa, one payload byte


def wire() -> bytes:
    return b"".join(
        [
            PREFACE,
            SettingsFrame(0, settings={4: 65535}).serialize(),  # control 1
            HeadersFrame(1, data=BLOCK).serialize(),  # a block opened ...
            ContinuationFrame(1, data=b"\x40\x01x\x01y").serialize(),
            ContinuationFrame(1, data=b"", flags=["END_HEADERS"]).serialize(),  # ... and closed: 3 frames
            DataFrame(1, data=b"body" * 1000).serialize(),
            DataFrame(1, data=b"").serialize(),  # control 2: empty, not the end
            PingFrame(0, opaque_data=b"12345678").serialize(),  # control 3
            PriorityFrame(3, depends_on=0, stream_weight=16).serialize(),  # control 4
            WindowUpdateFrame(0, window_increment=10).serialize(),  # control 5
            UNKNOWN,  # control 6
            RstStreamFrame(1, error_code=8).serialize(),
            DataFrame(1, data=b"", flags=["END_STREAM"]).serialize(),
            HeadersFrame(5, data=BLOCK).serialize(),  # left open
        ]
    )


@pytest.mark.parametrize("piece", [1, 2, 7, 9, 10, 100, 1 << 20])
def test_frames_are_counted_the_same_whatever_the_reads(piece: int) -> None:
    data = wire()
    frames = InboundFrames(max_frames=3, max_bytes=16384)
    for i in range(0, len(data), piece):
        frames.feed(data[i : i + piece])
    assert frames.controls == 6
    assert frames.in_block and frames.block_frames == 1  # stream 5's block, still open
    assert not frames.oversized  # stream 1's block was 3 frames: at the limit, not over it


def test_a_header_block_over_its_frames_or_bytes_is_oversized() -> None:
    frames = InboundFrames(max_frames=3, max_bytes=16384)
    frames.feed(PREFACE + HeadersFrame(1, data=BLOCK).serialize())
    for _ in range(2):
        frames.feed(ContinuationFrame(1, data=b"\x40\x01x\x01y").serialize())
    assert not frames.oversized
    frames.feed(ContinuationFrame(1, data=b"\x40\x01x\x01y").serialize()[:9])  # its header alone
    assert frames.oversized  # judged before the payload arrives

    by_bytes = InboundFrames(max_frames=16, max_bytes=100)
    by_bytes.feed(PREFACE + HeadersFrame(1, data=b"x" * 60).serialize())
    assert not by_bytes.oversized
    by_bytes.feed(ContinuationFrame(1, data=b"x" * 60).serialize())
    assert by_bytes.oversized


def test_a_continuation_without_a_block_opens_none() -> None:
    frames = InboundFrames(max_frames=3, max_bytes=16384)
    frames.feed(PREFACE + ContinuationFrame(1, data=b"abc").serialize())
    assert not frames.in_block and not frames.oversized and frames.controls == 0


def test_the_resets_and_goaway_the_engine_sends_are_found() -> None:
    data = b"".join(
        [
            SettingsFrame(0, flags=["ACK"]).serialize(),
            HeadersFrame(1, data=b"\x88", flags=["END_HEADERS"]).serialize(),
            DataFrame(1, data=b"\x00\x00\x04\x03" * 100, flags=["END_STREAM"]).serialize(),  # looks like one
            RstStreamFrame(3, error_code=7).serialize(),
            RstStreamFrame(5, error_code=1).serialize(),
            GoAwayFrame(
                0, last_stream_id=5, error_code=1, additional_data=b"max concurrent streams"
            ).serialize(),
        ]
    )
    found = sent(data)
    assert found is not None
    assert found.resets == [(3, 7), (5, 1)]
    assert found.goaway_code == 1 and found.debug == b"max concurrent streams"
    assert sent(data[:-30]) is not None  # a cut GOAWAY is not read past the end
    assert sent(SettingsFrame(0, flags=["ACK"]).serialize() + DataFrame(1, data=b"x").serialize()) is None


def test_our_goaway_frame_is_what_a_client_parses() -> None:
    frame = GoAwayFrame(0)
    frame.parse_body(memoryview(goaway(7, 11)[9:]))
    assert goaway(7, 11)[:9] == GoAwayFrame(0, last_stream_id=7, error_code=11).serialize()[:9]
    assert (frame.last_stream_id, frame.error_code) == (7, 11)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Too many CONTINUATION frames following a HEADER frame", "continuation_flood"),
        ("received header list exceeds configured size", "header_list_size"),
        ("too many RST_STREAM frames", "rapid_reset"),
        ("flooding was detected", "control_flood"),
    ],
)
def test_the_engines_verdicts_are_named(message: str, reason: str) -> None:
    assert dos_reason(message) == reason
