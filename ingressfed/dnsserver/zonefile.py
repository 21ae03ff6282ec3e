"""Reading and writing the zone file (JSON) and its journal, so a restart serves the last state at once.

The zone file is a snapshot: written to a temporary file in the same directory,
flushed to disk and renamed over the old file, so a crash leaves either the old
or the new zone, never half of one. Writing it costs the whole zone, so a store
that changes a few record sets at a time appends each batch instead to the
*journal* beside it (``<zone file>.journal``): one JSON line per batch
(``{"base": serial before, "serial": serial after, "changes": [...]}``), flushed
to disk before the batch counts as applied, and folds the journal into a new
snapshot now and then (:func:`save_zone_file` removes the journal it folded).

Reading replays the journal on the snapshot. A last line without its newline is
a batch whose write did not finish (it was never reported applied): it is left
out, whole. Lines that do not continue the snapshot's serial were folded into it
already (a crash between the new snapshot and the journal's removal) and are
skipped; once one line applies, each next line must continue it, or the files
are refused with an error naming the line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ingressfed import durable
from ingressfed.dnsserver.zone import (
    ZoneData,
    changes_from_json,
    changes_to_json,
    zone_data_from_json,
    zone_data_to_json,
)
from ingressfed.errors import ConfigError
from ingressfed.model import Change

__all__ = ["append_journal", "journal_path", "load_zone_file", "save_zone_file"]

log = logging.getLogger(__name__)


def journal_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".journal")


def load_zone_file(path: str | Path) -> ZoneData | None:
    """The zone stored at ``path`` and its journal; None when there is no zone file yet.

    The result's :attr:`ZoneData.pending` is the number of changes replayed from the journal."""
    p = Path(path)
    # The journal is opened before the snapshot is read: if a writer folds it into a new
    # snapshot meanwhile, this still reads the old journal, whose lines the new snapshot skips.
    journal: IO[bytes] | None = None
    with contextlib.suppress(FileNotFoundError):
        journal = open(journal_path(p), "rb")  # noqa: SIM115 (closed below, on every path)
    try:
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            if journal is not None:
                log.warning("zone file %s is missing: ignoring its journal %s", p, journal_path(p))
            return None
        except OSError as exc:
            raise ConfigError(
                [f"zoneFile {p}: cannot read it ({exc.strerror}); check the path and permissions"]
            ) from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [f"zoneFile {p}: not valid JSON ({exc}); fix or remove the file to start from an empty zone"]
            ) from exc
        data = zone_data_from_json(doc, source=f"zoneFile {p}")
        if journal is not None:
            data = _replay(data, journal.read(), journal_path(p))
        return data
    finally:
        if journal is not None:
            journal.close()


def _replay(data: ZoneData, raw: bytes, where: Path) -> ZoneData:
    lines = raw.split(b"\n")
    if lines[-1]:
        log.warning(
            "zone journal %s: leaving out an incomplete last line (%d bytes; a batch whose write "
            "did not finish)",
            where,
            len(lines[-1]),
        )
    applied = False
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        source = f"zone journal {where} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [f"{source}: not valid JSON ({exc}); remove the journal to serve the zone file alone"]
            ) from exc
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool) for k in ("base", "serial")
        ):
            raise ConfigError([f"{source}: expected an object with integer base and serial, and changes"])
        if entry["base"] != data.serial:
            if applied:
                raise ConfigError(
                    [
                        f"{source}: continues serial {entry['base']}, but the zone is at serial "
                        f"{data.serial}; remove the journal to serve the zone file alone"
                    ]
                )
            continue  # folded into the snapshot already
        changes = changes_from_json(entry.get("changes"), source=source)
        data = ZoneData.following(data, changes, serial=entry["serial"])
        applied = True
    return data


def save_zone_file(path: str | Path, data: ZoneData) -> None:
    """Atomically replace the file at ``path`` with ``data``, then remove the journal it supersedes."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = zone_data_to_json(data)
    records = doc.pop("records")
    # One record per line through the C encoder: json.dump with indent is pure Python
    # and holds the GIL (and so the event loop) for seconds at 100k+ record sets.
    head = json.dumps(doc, sort_keys=True)
    body = ",\n".join(json.dumps(r, sort_keys=True) for r in records)
    text = head[:-1] + ', "records": [\n' + body + ("\n" if body else "") + "]}\n"
    durable.replace(p, text.encode())
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_path(p))
    durable.sync_dir(p.parent)


def append_journal(path: str | Path, *, base: int, serial: int, changes: Sequence[Change]) -> int:
    """Append one batch to the journal of the zone file at ``path``, on disk before it returns;
    the bytes written. On failure the journal is cut back to where it was."""
    j = journal_path(path)
    entry: dict[str, Any] = {"base": base, "serial": serial, "changes": changes_to_json(changes)}
    line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
    durable.append(j, line)
    return len(line)
