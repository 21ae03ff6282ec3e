"""The view a feed follower holds, changed in place by each delta: O(changes), not O(zone).

A follower of a zone of 140,000 record sets that composed every one-set delta into a
new :class:`FeedView` copied and sorted the whole view each time. :class:`HeldView`
keeps the record sets in a dict by key instead: a delta replaces, adds and removes
only its own record sets and says what it did as :class:`ingressfed.model.Change`
values (each with the record set it replaced), which is what a DNS server needs to
follow it in place. :meth:`HeldView.view` builds the whole canonical view, for those
that want one (a snapshot on disk, the ``views()`` of older callers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ingressfed.feed.delta import FeedDelta
from ingressfed.feed.view import FeedFormatError, FeedView
from ingressfed.gateway.table import ServedRule
from ingressfed.model import Change, ChangeAction, Cluster, RecordKey, RecordSet, Route

__all__ = ["FeedStep", "HeldView", "changes_between"]


class HeldView:
    """One controller's view as a follower holds it; :meth:`apply` changes it in place.

    ``records`` is live: read what you need from it before the follower takes the next
    delta (or take :meth:`view`, which is a value)."""

    __slots__ = ("_records", "clusters", "epoch", "gateway_rules", "routes", "version", "zone")

    def __init__(self, view: FeedView) -> None:
        self._records: dict[RecordKey, RecordSet] = {r.key: r for r in view.records}
        self.version = view.version
        self.epoch = view.epoch
        self.zone = view.zone
        self.routes: tuple[Route, ...] = view.routes
        self.clusters: tuple[Cluster, ...] = view.clusters
        self.gateway_rules: tuple[ServedRule, ...] = view.gateway_rules

    @property
    def records(self) -> Mapping[RecordKey, RecordSet]:
        return self._records

    def newer_than(self, other: HeldView | None) -> bool:
        """Same rule as :meth:`FeedView.newer_than`: another epoch, or a later version."""
        return other is None or self.epoch != other.epoch or self.version > other.version

    def apply(self, delta: FeedDelta) -> tuple[Change, ...]:
        """Take ``delta`` in place; the record-set changes it made (unchanged sets left out).

        FeedFormatError, with nothing changed, when it is for another version or epoch."""
        if delta.epoch != self.epoch or delta.base != self.version:
            raise FeedFormatError(
                f"base: delta applies to version {delta.base} of epoch {delta.epoch!r}, "
                f"the view held is version {self.version} of epoch {self.epoch!r}"
            )
        records = self._records
        changes: list[Change] = []
        for key in delta.removed:
            old = records.pop(key, None)
            if old is not None:
                changes.append(Change(ChangeAction.DELETE, old=old))
        for new in delta.upserted:
            old = records.get(new.key)
            if old == new:
                continue
            records[new.key] = new
            action = ChangeAction.CREATE if old is None else ChangeAction.UPDATE
            changes.append(Change(action, old=old, new=new))
        self.version = delta.version
        self.zone = delta.zone
        self.routes, self.clusters, self.gateway_rules = delta.parts_after(
            self.routes, self.clusters, self.gateway_rules
        )
        return tuple(changes)

    def view(self, *, canonical: bool = True) -> FeedView:
        """The whole view as a value: in canonical order (O(zone log zone)), or in the held order
        (O(zone), in C) for a caller that sorts it elsewhere (a compaction's worker thread)."""
        view = FeedView(
            version=self.version,
            records=tuple(self._records.values()),
            routes=self.routes,
            clusters=self.clusters,
            zone=self.zone,
            epoch=self.epoch,
            gateway_rules=self.gateway_rules,
        )
        return view.canonical() if canonical else view


def changes_between(
    before: Mapping[RecordKey, RecordSet], after: Mapping[RecordKey, RecordSet]
) -> tuple[Change, ...]:
    """What turns the record sets ``before`` into ``after`` (O(both): for whole views only)."""
    out = [Change(ChangeAction.DELETE, old=rs) for k, rs in before.items() if k not in after]
    for k, rs in after.items():
        old = before.get(k)
        if old is None:
            out.append(Change(ChangeAction.CREATE, new=rs))
        elif old != rs:
            out.append(Change(ChangeAction.UPDATE, old=old, new=rs))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FeedStep:
    """What a follower yields: the view it holds now, and the record-set changes since the
    view it yielded before (None for the first: there is nothing to change from)."""

    held: HeldView
    changes: tuple[Change, ...] | None
    whole: bool = False  # a whole view came (first, restart, another epoch, too far behind)
