"""Feed deltas: what changed between two views, so a change costs bytes in proportion to it (pure).

A follower holding version ``N`` of epoch ``E`` asks ``GET /v1/feed?after=N&epoch=E&delta=1``;
when the publisher still remembers the versions since ``N`` it answers with a
:class:`FeedDelta`: the record sets removed (by key) and added or changed since
``N``, plus the small parts of the view (routes, clusters, HTTPRoute rules)
whole. Otherwise (another epoch, too far behind) it answers with the full view,
as before. Applying a delta to a view of a different version is refused, so a
follower can never end up with a mixture; it then asks for the full view.

Wire form (``format: ingressfed.feed.delta/v1``): the view's own fields
``epoch``, ``version``, ``zone``, ``routes``, ``clusters``, ``gatewayRules``,
plus ``base`` (the version it applies to), ``removed`` (``[{name, type,
setIdentifier?}]``) and ``upserted`` (records in the view's record form).

A follower that also asks ``parts=changed`` gets the small parts only when they
differ from those of version ``N``: a delta then lists the ones it leaves out in
``unchanged`` (``["routes", "clusters", "gatewayRules"]`` or part of it), so a
one-record change costs bytes for that record, whatever the number of routes.
Publishers that predate it ignore the parameter and send every part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ingressfed.feed.view import FORMAT, FeedFormatError, FeedView, view_from_wire, view_to_wire
from ingressfed.gateway.table import ServedRule
from ingressfed.model import Cluster, RecordKey, RecordSet, RecordType, Route

__all__ = [
    "DELTA_FORMAT",
    "PARTS",
    "FeedDelta",
    "apply_delta",
    "compose",
    "decode_feed",
    "delta_between",
    "encode_delta",
]

DELTA_FORMAT = "ingressfed.feed.delta/v1"
PARTS = ("routes", "clusters", "gatewayRules")  # the small parts, by their wire names


@dataclass(frozen=True, slots=True)
class FeedDelta:
    epoch: str
    base: int
    version: int
    zone: str
    removed: tuple[RecordKey, ...]
    upserted: tuple[RecordSet, ...]
    routes: tuple[Route, ...]
    clusters: tuple[Cluster, ...]
    gateway_rules: tuple[ServedRule, ...] = ()
    # Small parts (wire names, see PARTS) left as they are in the base: their fields above are empty.
    unchanged: frozenset[str] = frozenset()

    def parts_after(
        self, routes: tuple[Route, ...], clusters: tuple[Cluster, ...], gateway_rules: tuple[ServedRule, ...]
    ) -> tuple[tuple[Route, ...], tuple[Cluster, ...], tuple[ServedRule, ...]]:
        """The small parts after this delta, given those of its base."""
        kept = self.unchanged
        return (
            routes if "routes" in kept else self.routes,
            clusters if "clusters" in kept else self.clusters,
            gateway_rules if "gatewayRules" in kept else self.gateway_rules,
        )

    def without_unchanged_parts(
        self, routes: tuple[Route, ...], clusters: tuple[Cluster, ...], gateway_rules: tuple[ServedRule, ...]
    ) -> FeedDelta:
        """This delta leaving out the small parts equal to the base's (``routes``, ...)."""
        same = (self.routes == routes, self.clusters == clusters, self.gateway_rules == gateway_rules)
        kept = self.unchanged | {name for name, eq in zip(PARTS, same, strict=True) if eq}
        return replace(
            self,
            routes=() if "routes" in kept else self.routes,
            clusters=() if "clusters" in kept else self.clusters,
            gateway_rules=() if "gatewayRules" in kept else self.gateway_rules,
            unchanged=frozenset(kept),
        )


def delta_between(old: FeedView, new: FeedView) -> FeedDelta:
    """What turns ``old`` into ``new`` (same epoch)."""
    before = {r.key: r for r in old.records}
    after = {r.key: r for r in new.records}
    removed = tuple(sorted((k for k in before if k not in after), key=_key_order))
    upserted = tuple(r for k, r in after.items() if before.get(k) != r)
    return FeedDelta(
        new.epoch,
        old.version,
        new.version,
        new.zone,
        removed,
        upserted,
        new.routes,
        new.clusters,
        new.gateway_rules,
    )


def compose(deltas: Iterable[FeedDelta]) -> FeedDelta:
    """One delta doing what consecutive ``deltas`` do, in order."""
    items = list(deltas)
    if not items:
        raise ValueError("compose: no deltas")
    removed: dict[RecordKey, None] = {}
    upserted: dict[RecordKey, RecordSet] = {}
    for d in items:
        for k in d.removed:
            upserted.pop(k, None)
            removed[k] = None
        for r in d.upserted:
            removed.pop(r.key, None)
            upserted[r.key] = r
    last = items[-1]
    out = replace(last, base=items[0].base, removed=tuple(removed), upserted=tuple(upserted.values()))
    if last.unchanged:
        # A part the last delta left alone is the one the latest delta that carried it set.
        carried = {name: d for d in items for name in PARTS if name not in d.unchanged}
        kept = frozenset(name for name in PARTS if name not in carried)
        out = replace(
            out,
            routes=carried["routes"].routes if "routes" in carried else (),
            clusters=carried["clusters"].clusters if "clusters" in carried else (),
            gateway_rules=carried["gatewayRules"].gateway_rules if "gatewayRules" in carried else (),
            unchanged=kept,
        )
    return out


def apply_delta(view: FeedView, delta: FeedDelta) -> FeedView:
    """``view`` with ``delta`` applied; FeedFormatError when it is for another version or epoch."""
    if delta.epoch != view.epoch or delta.base != view.version:
        raise FeedFormatError(
            f"base: delta applies to version {delta.base} of epoch {delta.epoch!r}, "
            f"the view held is version {view.version} of epoch {view.epoch!r}"
        )
    records = {r.key: r for r in view.records}
    for k in delta.removed:
        records.pop(k, None)
    for r in delta.upserted:
        records[r.key] = r
    routes, clusters, gateway_rules = delta.parts_after(view.routes, view.clusters, view.gateway_rules)
    return FeedView(
        version=delta.version,
        records=tuple(records.values()),
        routes=routes,
        clusters=clusters,
        zone=delta.zone,
        epoch=delta.epoch,
        gateway_rules=gateway_rules,
    ).canonical()


def _key_order(k: RecordKey) -> tuple[str, str, str]:
    return (k[0], k[1].value, k[2] or "")


def encode_delta(delta: FeedDelta) -> bytes:
    carrier = view_to_wire(
        FeedView(
            version=delta.version,
            records=delta.upserted,
            routes=delta.routes,
            clusters=delta.clusters,
            zone=delta.zone,
            epoch=delta.epoch,
            gateway_rules=delta.gateway_rules,
        )
    )
    doc: dict[str, Any] = dict(carrier)
    doc["format"] = DELTA_FORMAT
    doc["base"] = delta.base
    doc["upserted"] = doc.pop("records")
    doc["removed"] = [
        {"name": n, "type": t.value, **({"setIdentifier": s} if s is not None else {})}
        for n, t, s in delta.removed
    ]
    if delta.unchanged:
        for name in delta.unchanged:
            doc.pop(name, None)
        doc["unchanged"] = [name for name in PARTS if name in delta.unchanged]
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _removed(doc: object) -> tuple[RecordKey, ...]:
    if not isinstance(doc, list):
        raise FeedFormatError(f"removed: expected a list, got {type(doc).__name__}")
    out: list[RecordKey] = []
    for i, item in enumerate(doc):
        if not isinstance(item, Mapping):
            raise FeedFormatError(f"removed[{i}]: expected an object")
        name, rtype, sid = item.get("name"), item.get("type"), item.get("setIdentifier")
        if not isinstance(name, str) or not name:
            raise FeedFormatError(f"removed[{i}].name: expected a non-empty string")
        try:
            t = RecordType(str(rtype))
        except ValueError:
            raise FeedFormatError(f"removed[{i}].type: {rtype!r} is not a record type") from None
        if sid is not None and not isinstance(sid, str):
            raise FeedFormatError(f"removed[{i}].setIdentifier: expected a string")
        out.append((name.rstrip(".").lower(), t, sid))
    return tuple(out)


def decode_feed(data: bytes | str) -> FeedView | FeedDelta:
    """A feed answer: a full view or a delta (strict; FeedFormatError names the field)."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise FeedFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != DELTA_FORMAT:
        return view_from_wire(doc)
    base = doc.get("base")
    if isinstance(base, bool) or not isinstance(base, int):
        raise FeedFormatError(f"base: expected an integer version, got {base!r}")
    unchanged = _unchanged(doc.get("unchanged", []))
    carrier = {k: v for k, v in doc.items() if k not in ("base", "removed", "upserted", "unchanged")}
    for name in unchanged:
        if name in carrier:
            raise FeedFormatError(f"{name}: present, and listed as unchanged")
        if name != "gatewayRules":
            carrier[name] = []
    carrier["format"] = FORMAT
    carrier["records"] = doc.get("upserted")
    view = view_from_wire(carrier)
    return FeedDelta(
        epoch=view.epoch,
        base=base,
        version=view.version,
        zone=view.zone,
        removed=_removed(doc.get("removed")),
        upserted=view.records,
        routes=view.routes,
        clusters=view.clusters,
        gateway_rules=view.gateway_rules,
        unchanged=unchanged,
    )


def _unchanged(doc: object) -> frozenset[str]:
    if not isinstance(doc, list) or not all(isinstance(x, str) and x in PARTS for x in doc):
        raise FeedFormatError(f"unchanged: expected a list of {', '.join(PARTS)}, got {doc!r}")
    return frozenset(doc)
