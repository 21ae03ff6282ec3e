"""The stateless HPACK encoder decodes with the hpack library's decoder, whatever the table size."""

from __future__ import annotations

import pytest
from hpack import Decoder

from ingressfed.proxy.hpack_out import encode_block

HEADS = [
    [(b":status", b"200")],
    [(b":status", b"404"), (b"content-type", b"text/plain"), (b"content-length", b"12")],
    [(b":status", b"200"), (b"x-served-by-cluster", b"cluster-europe-west1-b"), (b"via", b"1.1 ingressfed")],
    [(b":status", b"200"), (b"set-cookie", b"a=" + b"v" * 300), (b"x-" + b"n" * 200, b"")],
]


@pytest.mark.parametrize("fields", HEADS)
@pytest.mark.parametrize("table_size", [0, 4096])
def test_blocks_decode_to_the_same_fields(fields: list[tuple[bytes, bytes]], table_size: int) -> None:
    decoder = Decoder()
    decoder.max_allowed_table_size = table_size
    for _ in range(3):  # several blocks on one connection: no state may drift
        assert decoder.decode(encode_block(fields), raw=True) == fields
    assert len(decoder.header_table.dynamic_entries) == 0


def test_static_pairs_are_one_byte_and_unknown_names_are_literal() -> None:
    assert encode_block([(b":status", b"200")]) == b"\x20\x88"  # size update 0, then index 8
    block = encode_block([(b"x-a", b"b")])
    assert block == b"\x20\x00\x03x-a\x01b"


def test_the_field_cache_gives_the_same_bytes_and_stays_bounded() -> None:
    from ingressfed.proxy import hpack_out

    fields = [(b":status", b"200"), (b"server", b"nginx"), (b"content-length", b"6")]
    first = encode_block(fields)
    assert encode_block(fields) == first == b"\x20" + b"".join(hpack_out.encode_field(*f) for f in fields)
    for i in range(hpack_out._CACHE_MAX + 10):  # hostile variety: the cache is emptied, not grown
        encode_block([(b"x-n", b"%d" % i)])
    assert len(hpack_out._CACHE) <= hpack_out._CACHE_MAX
    encode_block([(b"set-cookie", b"v" * 1000)])
    assert (b"set-cookie", b"v" * 1000) not in hpack_out._CACHE  # long values are not kept
    assert Decoder().decode(encode_block(fields), raw=True) == fields


def test_a_block_set_on_the_encoder_is_what_its_next_encode_returns_once() -> None:
    from ingressfed.proxy.hpack_out import StatelessEncoder

    encoder = StatelessEncoder()
    fields = [(b":status", b"200"), (b"x-a", b"b")]
    encoder.block = encode_block(fields)
    assert Decoder().decode(encoder.encode([(b":status", b"200")]), raw=True) == fields
    assert encoder.block is None
    assert encoder.encode([(b":status", b"204")]) == encode_block([(b":status", b"204")])
