"""The publisher's record sets in canonical order, changed by what differs from the last view.

Each ``publish`` gets the controller's whole view. Sorting it and comparing it key by key
with the last one (three sorts and two dicts of 140,000 record sets) cost the controller
1.4 s per change. :class:`RecordTable` keeps the last view's record sets sorted and finds
what changed by object identity first, in C: the span between the common prefix and
suffix of the last sequence handed in and this one, then ``id``s within that span. A
controller that hands in the same :class:`RecordSet` objects for what did not change (the
model's values are immutable, so reusing them is free), in a stable order, costs Python
work for the changed ones only; new objects are compared by key and value, so a
controller that rebuilds every value still gets correct deltas, at O(zone) Python work.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Sequence

from ingressfed.model import RecordKey, RecordSet

__all__ = ["RecordTable", "changed_span", "sort_key"]

SortKey = tuple[str, str, str]


def sort_key(r: RecordSet) -> SortKey:
    """The canonical order of record sets (the one :meth:`FeedView.canonical` uses)."""
    return (r.name, r.type.value, r.set_identifier or "")


def _key_order(k: RecordKey) -> SortKey:
    return (k[0], k[1].value, k[2] or "")


def changed_span(old: Sequence[object], new: Sequence[object]) -> tuple[int, int]:
    """(p, s): ``old`` and ``new`` hold the very same objects in their first ``p`` and last ``s``
    places; what changed is in between. Object identity, compared in C: about 30 ns a place."""
    n = min(len(old), len(new))
    p = next(itertools.compress(itertools.count(), map(operator.is_not, old, new)), n)
    s = next(itertools.compress(itertools.count(), map(operator.is_not, reversed(old), reversed(new))), n)
    return p, min(s, n - p)


class RecordTable:
    """The record sets of the last view published, sorted; :meth:`update` says what changed."""

    def __init__(self) -> None:
        self._input: tuple[RecordSet, ...] = ()  # the last sequence handed in, as it was
        self._order: list[SortKey] = []
        self._sets: list[RecordSet] = []
        self._by_key: dict[RecordKey, RecordSet] = {}
        self._records: tuple[RecordSet, ...] | None = ()

    def records(self) -> tuple[RecordSet, ...]:
        if self._records is None:
            self._records = tuple(self._sets)
        return self._records

    def update(self, records: Sequence[RecordSet]) -> tuple[tuple[RecordKey, ...], tuple[RecordSet, ...]]:
        """Hold ``records`` now; (keys removed, record sets added or changed), both sorted.

        Only the span between the longest common prefix and suffix (by identity) with the
        last sequence is looked at, then by identity within it: a controller that hands in
        its record sets in a stable order, reusing the unchanged objects, costs the changes."""
        new = tuple(records)
        old, self._input = self._input, new
        p, s = changed_span(old, new)
        old_mid = {id(r): r for r in old[p : len(old) - s]}
        new_mid = {id(r): r for r in new[p : len(new) - s]}
        gone_ids = old_mid.keys() - new_mid.keys()
        fresh_ids = new_mid.keys() - old_mid.keys()
        if not fresh_ids and not gone_ids:
            return (), ()
        if len(fresh_ids) + len(gone_ids) > max(64, len(new) // 8):
            return self._rebuild(new)
        fresh = {r.key: r for r in (new_mid[i] for i in fresh_ids)}
        gone = {r.key: r for r in (old_mid[i] for i in gone_ids)}
        removed = sorted((k for k in gone if k not in fresh), key=_key_order)
        upserted = sorted((r for k, r in fresh.items() if gone.get(k) != r), key=sort_key)
        for k in removed:
            if self._by_key.pop(k, None) is not None:
                i = bisect.bisect_left(self._order, _key_order(k))
                del self._order[i], self._sets[i]
        for k, r in fresh.items():
            # Equal values too: the new object is the one the next view will hand in again.
            sk = sort_key(r)
            i = bisect.bisect_left(self._order, sk)
            if k in self._by_key:
                self._sets[i] = r
            else:
                self._order.insert(i, sk)
                self._sets.insert(i, r)
            self._by_key[k] = r
        self._records = None
        return tuple(removed), tuple(upserted)

    def _rebuild(self, records: tuple[RecordSet, ...]) -> tuple[tuple[RecordKey, ...], tuple[RecordSet, ...]]:
        before = self._by_key
        after = {r.key: r for r in records}
        removed = sorted((k for k in before if k not in after), key=_key_order)
        ordered = sorted(after.values(), key=sort_key)
        upserted = tuple(r for r in ordered if before.get(r.key) != r)
        self._sets = ordered
        self._order = [sort_key(r) for r in ordered]
        self._by_key = after
        self._records = None
        return tuple(removed), upserted
