"""The HTTP/2 codec's HPACK decoder: hpack's own, remembering blocks it has decoded before.

A client sends the same request head again and again (h2load, browsers fetching assets, gRPC
clients): once its fields are in the dynamic table, each head is the same few indexed bytes, and
hpack's pure-Python decoder spent about 28 µs per head on them, a tenth of an HTTP/2 request's
CPU here. The fields a block decodes to depend only on its bytes and on the dynamic table, so a
block that leaves the table as it found it (only indexed fields and literals without indexing)
decodes the same way until the table changes. ``MemoDecoder`` keeps such blocks per connection,
valid until the next change of the table (an insertion or a resize, counted by ``_CountedTable``)
or of the limits the decoder checks.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack import Decoder
from hpack.struct import HeaderTuple
from hpack.table import HeaderTable

__all__ = ["MEMO_BLOCKS", "MemoDecoder"]

MEMO_BLOCKS = 32  # distinct heads remembered per connection (then the memo starts over)
_MEMO_BYTES = 512  # a longer block is decoded every time: repeated heads are short once indexed


class _CountedTable(HeaderTable):
    """hpack's table, counting the changes that can make a block decode differently."""

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.changes += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.changes += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class MemoDecoder(Decoder):
    def __init__(self, max_header_list_size: int) -> None:
        super().__init__(max_header_list_size=max_header_list_size)
        self.header_table = self._table = _CountedTable()
        self.max_allowed_table_size = self._table.maxsize
        self._memo: dict[bytes, tuple[tuple[int, int, int], list[HeaderTuple]]] = {}
        self.hits = 0  # observable by tests

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        if not raw or type(data) is not bytes or len(data) > _MEMO_BYTES:
            return super().decode(data, raw=raw)
        state = (self._table.changes, self.max_allowed_table_size, self.max_header_list_size)
        known = self._memo.get(data)
        if known is not None and known[0] == state:
            self.hits += 1
            return list(known[1])  # a copy: the caller may keep or change its list
        fields = list(super().decode(data, raw=True))  # raises as hpack does: nothing is kept then
        if self._table.changes == state[0]:  # the block left the table as it was
            if len(self._memo) >= MEMO_BLOCKS:
                self._memo.clear()
            self._memo[data] = (state, fields)
            return list(fields)
        return fields
