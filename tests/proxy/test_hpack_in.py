"""MemoDecoder (proxy/hpack_in) decodes every block exactly as hpack's own Decoder does, while it
remembers the blocks that leave the dynamic table unchanged."""

from __future__ import annotations

import random

import hpack
import pytest

from ingressfed.proxy.hpack_in import MEMO_BLOCKS, MemoDecoder

LIMIT = 64 * 1024


def _pair() -> tuple[hpack.Decoder, MemoDecoder]:
    return hpack.Decoder(max_header_list_size=LIMIT), MemoDecoder(max_header_list_size=LIMIT)


def test_a_random_conversation_decodes_as_hpack_does_and_repeated_heads_are_remembered() -> None:
    rng = random.Random(7)
    encoder = hpack.Encoder()
    plain, memo = _pair()
    heads = [
        [
            (":method", "GET"),
            (":path", f"/asset/{i % 5}"),
            (":scheme", "https"),
            (":authority", "a.example"),
            ("accept", "*/*"),
            ("user-agent", "test/1"),
        ]
        for i in range(10)
    ]
    for step in range(3000):
        if rng.random() < 0.05:  # a new field now and then: inserted, shifting every dynamic index
            head = [*rng.choice(heads), (f"x-new-{step}", str(step))]
        elif rng.random() < 0.02:
            encoder.header_table_size = rng.choice([0, 256, 4096])  # a size update in the next block
            plain.max_allowed_table_size = memo.max_allowed_table_size = 4096
            head = rng.choice(heads)
        else:
            head = rng.choice(heads)
        block = encoder.encode(head)
        assert list(memo.decode(block, raw=True)) == list(plain.decode(block, raw=True)), step
        assert memo.header_table.dynamic_entries == plain.header_table.dynamic_entries
    assert memo.hits > 300  # between changes of the table, the repeated heads come from the memo


def test_the_same_bytes_follow_a_change_of_the_dynamic_table() -> None:
    encoder = hpack.Encoder()
    plain, memo = _pair()
    first = encoder.encode([("x-a", "1")])
    for decoder in (plain, memo):
        decoder.decode(first, raw=True)  # now dynamic index 62
    newest = b"\xbe"  # "indexed field 62": the newest dynamic entry, whatever it is now
    assert list(memo.decode(newest, raw=True)) == [(b"x-a", b"1")]
    assert list(memo.decode(newest, raw=True)) == [(b"x-a", b"1")] and memo.hits == 1
    block = encoder.encode([("x-b", "2")])
    plain.decode(block, raw=True)
    memo.decode(block, raw=True)
    assert list(memo.decode(newest, raw=True)) == list(plain.decode(newest, raw=True)) == [(b"x-b", b"2")]


def test_limits_apply_to_remembered_blocks_and_a_failed_decode_is_not_kept() -> None:
    encoder = hpack.Encoder()
    memo = MemoDecoder(max_header_list_size=LIMIT)
    head = [(":method", "GET"), (":path", "/"), ("x-big", "v" * 200)]
    memo.decode(encoder.encode(head), raw=True)
    block = encoder.encode(head)  # now all indexed
    memo.decode(block, raw=True)
    memo.max_header_list_size = 100  # e.g. new SETTINGS: the same block is now too large
    with pytest.raises(hpack.OversizedHeaderListError):
        memo.decode(block, raw=True)
    with pytest.raises(hpack.HPACKError):
        memo.decode(b"\xff\xff\xff\xff\x7f", raw=True)  # an index far past both tables
    with pytest.raises(hpack.HPACKError):
        memo.decode(b"\xff\xff\xff\xff\x7f", raw=True)  # still refused: nothing was kept


def test_the_memo_is_bounded() -> None:
    encoder = hpack.Encoder()
    memo = MemoDecoder(max_header_list_size=LIMIT)
    for i in range(MEMO_BLOCKS * 3):
        block = encoder.encode([(":method", "GET"), (":path", f"/{i}")])
        memo.decode(block, raw=True)
        assert len(memo._memo) <= MEMO_BLOCKS
