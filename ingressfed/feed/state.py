"""A feed follower's state on disk: a snapshot of the view and a journal of the deltas since.

Rewriting the whole view on every change cost a second per change at 140,000 record
sets (20 MB). Two files instead (docs/adr/0015-feed-state-journal.md):

- ``<state>``: a snapshot, the whole view in the feed's own form (``ingressfed.feed/v1``,
  what earlier versions wrote alone, so their state files load as they are): written to
  a temporary file, flushed to disk and renamed over the old one.
- ``<state>.journal``: one line per delta taken since the snapshot,
  ``<CRC-32 of the JSON, 8 hex digits> <the delta in its wire form>\\n``, appended and
  flushed to disk before the follower serves the delta.

When the journal outgrows half the snapshot (and ``compact_min``), :meth:`compact`
writes a new snapshot of the view held and keeps in the journal only the lines appended
meanwhile; it runs in a worker thread while the follower goes on taking deltas.

Reading (:meth:`load`) replays the journal on the snapshot, and stops at the first line
that is incomplete (a write the crash cut short), fails its CRC or the strict decoding,
is of another epoch, or does not continue the version reached: that line and every
later one are dropped (and cut off the file, so new lines continue a readable journal).
Lines the snapshot already holds (a crash between a compaction's snapshot and its new
journal) are skipped. So what is loaded is always the snapshot plus a prefix of the
deltas the controller published, in order: a view the controller published.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import zlib
from pathlib import Path

from ingressfed import durable
from ingressfed.feed.delta import FeedDelta, decode_feed, encode_delta
from ingressfed.feed.held import HeldView
from ingressfed.feed.view import FeedFormatError, FeedView, decode_view, encode_view

__all__ = ["FeedStateFile", "journal_line"]

log = logging.getLogger(__name__)

COMPACT_MIN = 64 * 1024  # journal bytes below which a compaction is never due


def journal_line(delta: FeedDelta) -> bytes:
    payload = encode_delta(delta)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _journal_entry(line: bytes) -> FeedDelta:
    """One journal line (without its newline) decoded; FeedFormatError says what is wrong."""
    head, sep, payload = line.partition(b" ")
    if not sep or len(head) != 8:
        raise FeedFormatError("expected '<crc32> <delta>'")
    try:
        crc = int(head, 16)
    except ValueError:
        raise FeedFormatError(f"crc32: {head!r} is not 8 hex digits") from None
    if zlib.crc32(payload) != crc:
        raise FeedFormatError("crc32: does not match the line (a torn or damaged write)")
    delta = decode_feed(payload)
    if isinstance(delta, FeedView):
        raise FeedFormatError("format: a whole view, expected a delta")
    return delta


class FeedStateFile:
    """The snapshot at ``path`` and its journal ``<path>.journal`` (see the module doc).

    :meth:`append` and :meth:`compact` may run in different threads at once (a lock
    orders their use of the journal); :meth:`save` and :meth:`compact` must not."""

    def __init__(self, path: str | Path, *, compact_min: int = COMPACT_MIN) -> None:
        self.path = Path(path)
        self.journal = self.path.with_name(self.path.name + ".journal")
        self.compact_min = compact_min
        self.snapshot_bytes = 0
        self.journal_bytes = 0
        self._lock = threading.Lock()

    @property
    def compaction_due(self) -> bool:
        return self.journal_bytes > max(self.compact_min, self.snapshot_bytes // 2)

    # -- reading

    def load(self) -> HeldView | None:
        """The view stored, journal replayed; None when there is none or the snapshot is unreadable."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read feed state %s: %s", self.path, exc)
            return None
        try:
            held = HeldView(decode_view(data))
        except FeedFormatError as exc:
            log.warning("ignoring corrupt feed state %s: %s", self.path, exc)
            return None
        self.snapshot_bytes = len(data)
        try:
            raw = self.journal.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            log.warning(
                "cannot read feed state journal %s: %s; serving the snapshot alone", self.journal, exc
            )
            raw = b""
        good, applied = self._replay(held, raw)
        if good < len(raw):
            with contextlib.suppress(OSError):
                os.truncate(self.journal, good)
        self.journal_bytes = good
        log.info(
            "feed state %s: version %d (%d deltas replayed from %s)",
            self.path,
            held.version,
            applied,
            self.journal.name,
        )
        return held

    def _replay(self, held: HeldView, raw: bytes) -> tuple[int, int]:
        """Apply the journal's deltas to ``held``; (bytes of the lines kept, deltas applied)."""
        pos = applied = 0
        number = 0
        while pos < len(raw):
            number += 1
            end = raw.find(b"\n", pos)
            if end < 0:
                log.warning(
                    "feed state journal %s line %d: incomplete (%d bytes, a write cut short); dropped",
                    self.journal,
                    number,
                    len(raw) - pos,
                )
                break
            try:
                delta = _journal_entry(raw[pos:end])
            except FeedFormatError as exc:
                log.warning(
                    "feed state journal %s line %d: %s; dropping it and the %d bytes after it",
                    self.journal,
                    number,
                    exc,
                    len(raw) - end - 1,
                )
                break
            if delta.epoch == held.epoch and delta.version <= held.version:
                pos = end + 1  # the snapshot holds it already
                continue
            if delta.epoch != held.epoch or delta.base != held.version:
                log.warning(
                    "feed state journal %s line %d: version %d of epoch %r after version %d of epoch "
                    "%r does not continue the state; dropping it and what follows",
                    self.journal,
                    number,
                    delta.base,
                    delta.epoch,
                    held.version,
                    held.epoch,
                )
                break
            held.apply(delta)
            applied += 1
            pos = end + 1
        return pos, applied

    # -- writing

    def save(self, view: FeedView) -> None:
        """Make ``view`` the whole state: a new snapshot, and no journal."""
        data = encode_view(view)
        os.replace(durable.write_temp(self.path, data), self.path)
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal)
            self.journal_bytes = 0
        self.snapshot_bytes = len(data)
        durable.sync_dir(self.path.parent)

    def append(self, delta: FeedDelta) -> None:
        """Add ``delta`` to the journal, on disk before returning; on failure the journal is cut
        back to where it was (and OSError raised)."""
        line = journal_line(delta)
        with self._lock:
            size = durable.append(self.journal, line)
            self.journal_bytes = size + len(line)

    def compact(self, view: FeedView, *, mark: int) -> None:
        """Make ``view`` the snapshot; ``mark``: the journal's size when ``view`` was its last line
        (lines appended since stay in the journal). Sorts and encodes the whole view: run it in a
        worker thread."""
        data = encode_view(view.canonical())
        tmp = durable.write_temp(self.path, data)
        with self._lock:
            os.replace(tmp, self.path)
            self.snapshot_bytes = len(data)
            try:
                with open(self.journal, "rb") as f:
                    f.seek(mark)
                    tail = f.read()
            except FileNotFoundError:
                tail = b""
            if tail:
                os.replace(durable.write_temp(self.journal, tail), self.journal)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.journal)
            self.journal_bytes = len(tail)
        durable.sync_dir(self.path.parent)
        log.info(
            "feed state %s: compacted at version %d (%d bytes, %d journal bytes kept)",
            self.path,
            view.version,
            len(data),
            len(tail),
        )
