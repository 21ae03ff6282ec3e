"""The publisher's record table: what changed, found by identity first, equals a key-by-key diff."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

from ingressfed.feed.delta import delta_between
from ingressfed.feed.publisher import FeedPublisher
from ingressfed.feed.records import RecordTable
from ingressfed.feed.view import FeedView
from ingressfed.model import RecordSet, RecordType

ZONE = "example.com"


def view_of(records: list[RecordSet]) -> FeedView:
    return FeedView(version=0, records=tuple(records), routes=(), clusters=(), zone=ZONE)


def test_random_changes_with_reused_and_rebuilt_objects_match_a_full_diff() -> None:
    rng = random.Random(12)
    records = [RecordSet(f"s{i}.{ZONE}", RecordType.A, 30, (f"10.0.0.{i % 250 + 1}",)) for i in range(300)]
    table = RecordTable()
    fresh = itertools.count()  # names never used before: a view holds each key once
    before = view_of([]).canonical()
    for step in range(60):
        for _ in range(rng.choice([0, 1, 3, 80])):  # 80: past the table's threshold, a rebuild
            i = rng.randrange(len(records))
            roll = rng.random()
            if roll < 0.3:
                records.pop(i)
            elif roll < 0.6:
                records[i] = replace(records[i], values=(f"192.0.2.{rng.randrange(1, 250)}",))
            elif roll < 0.8:
                records.append(
                    RecordSet(
                        f"n{next(fresh)}.{ZONE}", rng.choice([RecordType.A, RecordType.TXT]), 30, ("x",)
                    )
                )
            else:
                records[i] = replace(records[i])  # an equal value, another object: no change
        rng.shuffle(records)  # the order handed in does not matter
        after = view_of(records).canonical()
        removed, upserted = table.update(records)
        expected = delta_between(before, after)
        assert (set(removed), set(upserted)) == (set(expected.removed), set(expected.upserted)), step
        assert table.records() == after.records
        before = after


def test_publish_numbers_only_changed_content_and_its_delta_holds_the_change() -> None:
    publisher = FeedPublisher(epoch="e", initial_version=1)
    records = [RecordSet(f"s{i}.{ZONE}", RecordType.A, 30, ("10.0.0.1",)) for i in range(50)]
    first = publisher.publish(view_of(records))
    assert publisher.publish(view_of(list(reversed(records)))) is first  # same content
    records[7] = replace(records[7], values=("192.0.2.7",))
    second = publisher.publish(view_of(records))
    assert second.version == first.version + 1
    assert second.records == view_of(records).canonical().records
    body = publisher.delta_body(first.version, "e")
    assert body is not None and b"192.0.2.7" in body and len(body) < 600
