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

__all__ = ["StatelessEncoder", "encode_block", "encode_field"]

_STATIC_NAMES: dict[bytes, int] = {}
_STATIC_PAIRS: dict[tuple[bytes, bytes], int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_NAMES.setdefault(_name, _index)
    _STATIC_PAIRS.setdefault((_name, _value), _index)

_SIZE_ZERO = b"\x20"  # dynamic table size update: 0


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


def encode_block(headers: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
    parts = [_SIZE_ZERO]
    cache = _CACHE
    for raw_name, raw_value in headers:
        field = (_as_bytes(raw_name), _as_bytes(raw_value))
        encoded = cache.get(field)
        if encoded is None:
            encoded = encode_field(*field)
            if len(field[1]) <= _CACHE_VALUE_MAX:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[field] = encoded
        parts.append(encoded)
    return b"".join(parts)


class StatelessEncoder:
    """Drop-in for the ``hpack.Encoder`` an ``h2.connection.H2Connection`` holds."""

    def __init__(self) -> None:
        self.header_table_size = 4096  # h2 sets the peer's SETTINGS value here; we never index

    def encode(self, headers: Iterable[tuple[bytes | str, bytes | str]], huffman: bool = True) -> bytes:
        return encode_block(headers)
