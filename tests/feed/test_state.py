"""The follower's state file: a snapshot and a journal of deltas; torn or foreign lines dropped."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from pathlib import Path

from ingressfed.feed.delta import FeedDelta, delta_between
from ingressfed.feed.follower import FeedFollower
from ingressfed.feed.held import HeldView
from ingressfed.feed.publisher import FeedPublisher
from ingressfed.feed.state import FeedStateFile, journal_line
from ingressfed.feed.view import FeedView, decode_view, encode_view
from ingressfed.model import ChangeAction, RecordSet, RecordType
from tests.feed.conftest import sample_view, start_server

ZONE = "example.com"


def versions(n: int, *, epoch: str = "e") -> list[FeedView]:
    """``n`` consecutive views of one epoch, each changing, adding or removing one record set."""
    out = []
    records = list(sample_view(1).records)
    for v in range(1, n + 1):
        if v % 3 == 0:
            records.pop(0)
        else:
            records.append(RecordSet(f"s{v}.{ZONE}", RecordType.A, 30, (f"192.0.2.{v}",)))
        out.append(replace(sample_view(1), records=tuple(records), version=v, epoch=epoch).canonical())
    return out


def deltas(views: list[FeedView]) -> list[FeedDelta]:
    return [delta_between(a, b) for a, b in itertools.pairwise(views)]


def test_held_view_takes_a_delta_in_place_and_says_what_changed() -> None:
    a, b, c = versions(3)
    held = HeldView(a)
    changes = held.apply(delta_between(a, b))
    assert [(ch.action, ch.new.name if ch.new else None) for ch in changes] == [
        (ChangeAction.CREATE, f"s2.{ZONE}")
    ]
    changes = held.apply(delta_between(b, c))
    assert [ch.action for ch in changes] == [ChangeAction.DELETE]
    assert changes[0].old == sample_view(1).records[0]
    assert held.view() == c


def test_snapshot_plus_journal_loads_and_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    views = versions(5)
    state = FeedStateFile(tmp_path / "s.json")
    state.save(views[0])
    for d in deltas(views):
        state.append(d)
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[-1]
    # A crash in the middle of the last append: that line is dropped, the rest is served.
    raw = state.journal.read_bytes()
    cut = raw.rstrip(b"\n").rfind(b"\n") + 1
    state.journal.write_bytes(raw[: cut + 20])
    again = FeedStateFile(state.path)
    loaded = again.load()
    assert loaded is not None and loaded.view() == views[-2]
    assert state.journal.read_bytes() == raw[:cut]  # cut off: new lines continue a readable journal
    again.append(deltas(views)[-1])
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[-1]


def test_a_damaged_line_drops_itself_and_what_follows(tmp_path: Path) -> None:
    views = versions(4)
    state = FeedStateFile(tmp_path / "s.json")
    state.save(views[0])
    lines = [journal_line(d) for d in deltas(views)]
    # A line whose JSON still parses but whose bytes are not what was written (CRC), then a good one.
    damaged = lines[1].replace(b"example.com", b"example.org")
    assert damaged != lines[1]
    state.journal.write_bytes(lines[0] + damaged + lines[2])
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[1]
    # A line of another epoch or that skips a version does not continue the state either.
    other = deltas(versions(4, epoch="other"))
    state.journal.write_bytes(lines[0] + journal_line(other[1]))
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[1]
    state.journal.write_bytes(lines[0] + lines[2])
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[1]


def test_compaction_keeps_the_lines_appended_meanwhile(tmp_path: Path) -> None:
    views = versions(6)
    ds = deltas(views)
    state = FeedStateFile(tmp_path / "s.json")
    state.save(views[0])
    for d in ds[:3]:
        state.append(d)
    mark = state.journal_bytes  # the compaction is taken at views[3] ...
    state.append(ds[3])  # ... while the follower goes on appending
    state.compact(views[3], mark=mark)
    assert decode_view(state.path.read_bytes()) == views[3]
    assert state.journal.read_bytes() == journal_line(ds[3])
    state.append(ds[4])
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[5]


def test_crash_between_a_new_snapshot_and_its_journal_skips_what_it_holds(tmp_path: Path) -> None:
    views = versions(5)
    state = FeedStateFile(tmp_path / "s.json")
    state.save(views[0])
    for d in deltas(views):
        state.append(d)
    state.path.write_bytes(encode_view(views[2]))  # the new snapshot landed, the old journal stayed
    loaded = FeedStateFile(state.path).load()
    assert loaded is not None and loaded.view() == views[-1]


def test_a_state_file_of_an_earlier_version_loads_as_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(encode_view(versions(2)[1]))  # what earlier followers wrote: the view alone
    loaded = FeedStateFile(path).load()
    assert loaded is not None and loaded.view() == versions(2)[1]


async def test_follower_journals_deltas_and_compacts(tmp_path: Path) -> None:
    publisher = FeedPublisher(epoch="e1", initial_version=10)
    srv = await start_server(publisher)
    path = tmp_path / "feed.json"
    try:
        follower = FeedFollower(srv.url, token=None, state_file=path, poll_timeout=2.0)
        assert follower.state is not None
        follower.state.compact_min = 2000  # a compaction every few deltas
        last = publisher.publish(versions(1)[0])
        async with follower:
            steps = follower.steps()
            first = await anext(steps)
            assert first.changes is None and first.whole
            first_version = first.held.version
            for view in versions(12)[1:]:
                last = publisher.publish(view)
                step = await anext(steps)
                assert not step.whole and step.changes is not None and len(step.changes) == 1
                assert step.held.version == last.version
            await steps.aclose()
        # A compaction ran (the snapshot moved on) and what is stored is the last view.
        assert decode_view(path.read_bytes()).version > first_version
        loaded = FeedStateFile(path).load()
        assert loaded is not None and loaded.view() == last
        assert follower.state.journal_bytes < 4000
    finally:
        await srv.runner.cleanup()
        await asyncio.sleep(0)
