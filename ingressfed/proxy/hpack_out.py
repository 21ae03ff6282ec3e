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

__all__ = ["StatelessEncoder", "encode_block"]

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


def encode_block(headers: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
    parts = [_SIZE_ZERO]
    for raw_name, raw_value in headers:
        name, value = _as_bytes(raw_name), _as_bytes(raw_value)
        pair = _STATIC_PAIRS.get((name, value))
        if pair is not None:
            parts.append(_integer(pair, 7, 0x80))
            continue
        index = _STATIC_NAMES.get(name)
        if index is not None:
            parts.append(_integer(index, 4, 0x00))
        else:
            parts.append(b"\x00" + _string(name))
        parts.append(_string(value))
    return b"".join(parts)


class StatelessEncoder:
    """Drop-in for the ``hpack.Encoder`` an ``h2.connection.H2Connection`` holds."""

    def __init__(self) -> None:
        self.header_table_size = 4096  # h2 sets the peer's SETTINGS value here; we never index

    def encode(self, headers: Iterable[tuple[bytes | str, bytes | str]], huffman: bool = True) -> bytes:
        return encode_block(headers)
