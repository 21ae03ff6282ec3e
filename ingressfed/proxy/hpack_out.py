"""A stateless HPACK encoder (RFC 7541) for the HTTP/2 codec's response heads (pure).

hpack's ``Encoder`` searches its static and dynamic tables linearly for every field, which cost more
than the rest of an HTTP/2 response on this proxy. Response heads here are small and vary per
response (Date, Content-Length), so the dynamic table buys little: this encoder never uses it.
Each block starts with a dynamic table size update to 0 (valid whatever SETTINGS_HEADER_TABLE_SIZE
the client sends); a field whose name and value are a static entry is one indexed byte; other
fields are literals "without indexing", with the static name index where there is one. Strings go
out raw (no Huffman): fewer CPU cycles for a few more bytes.

``StatelessEncoder`` has the two members h2 uses of ``hpack.Encoder`` (``encode``, ``header_table_size``).
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack.table import HeaderTable

__all__ = ["SIZE_ZERO", "StatelessEncoder", "encode_block", "encode_cached", "encode_field"]

_STATIC_NAMES: dict[bytes, int] = {}
_STATIC_PAIRS: dict[tuple[bytes, bytes], int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_NAMES.setdefault(_name, _index)
    _STATIC_PAIRS.setdefault((_name, _value), _index)

SIZE_ZERO = b"\x20"  # dynamic table size update: 0 (what every block starts with)


def _integer(value: int, prefix_bits: int, flags: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = bytearray((flags | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes) -> bytes:
    return _integer(len(data), 7, 0) + data


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def encode_field(name: bytes, value: bytes) -> bytes:
    """One field, as this encoder always writes it (no state: the same field, the same bytes)."""
    pair = _STATIC_PAIRS.get((name, value))
    if pair is not None:
        return _integer(pair, 7, 0x80)
    index = _STATIC_NAMES.get(name)
    if index is not None:
        return _integer(index, 4, 0x00) + _string(value)
    return b"\x00" + _string(name) + _string(value)


# Encoded fields by (name, value). Most of a response head repeats from response to response
# (Server, Content-Type, the cluster header, Content-Length of same-sized bodies, the Date of this
# second), so a lookup replaces the encoding; emptied when full, so hostile variety costs nothing.
_CACHE: dict[tuple[bytes, bytes], bytes] = {}
_CACHE_MAX = 4096
_CACHE_VALUE_MAX = 256  # long values (cookies, URLs) are rarely repeated: encoded, not kept


def encode_cached(name: bytes, value: bytes) -> bytes:
    """``encode_field``, looked up in the cache first (and kept there when the value is short)."""
    field = (name, value)
    encoded = _CACHE.get(field)
    if encoded is None:
        encoded = encode_field(name, value)
        if len(value) <= _CACHE_VALUE_MAX:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[field] = encoded
    return encoded


def encode_block(headers: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
    parts = [SIZE_ZERO]
    for raw_name, raw_value in headers:
        parts.append(encode_cached(_as_bytes(raw_name), _as_bytes(raw_value)))
    return b"".join(parts)


class StatelessEncoder:
    """Drop-in for the ``hpack.Encoder`` an ``h2.connection.H2Connection`` holds.

    ``block``: a header block the caller encoded already (``encode_block``, or ``SIZE_ZERO``
    followed by ``encode_cached`` fields), returned by the next ``encode`` whatever fields h2 hands
    it. The HTTP/2 codec sets it just before ``send_headers`` and passes h2 only ``:status``
    (all h2 reads of a response's fields when its own validation is off), so h2 does not copy and
    re-encode every field of every response (``utf8_encode_headers``, ``extract_method_header``).
    """

    def __init__(self) -> None:
        self.header_table_size = 4096  # h2 sets the peer's SETTINGS value here; we never index
        self.block: bytes | None = None

    def encode(self, headers: Iterable[tuple[bytes | str, bytes | str]], huffman: bool = True) -> bytes:
        block = self.block
        if block is not None:
            self.block = None
            return block
        return encode_block(headers)
