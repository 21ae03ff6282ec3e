"""Reading and writing the zone file (JSON), so a restart serves the last state at once.

Writes go to a temporary file in the same directory, are flushed to disk and
renamed over the old file: a crash leaves either the old or the new zone,
never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from ingressfed.dnsserver.zone import ZoneData, zone_data_from_json, zone_data_to_json
from ingressfed.errors import ConfigError

__all__ = ["load_zone_file", "save_zone_file"]


def load_zone_file(path: str | Path) -> ZoneData | None:
    """The zone stored at ``path``; None when there is no file yet."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
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
    return zone_data_from_json(doc, source=f"zoneFile {p}")


def save_zone_file(path: str | Path, data: ZoneData) -> None:
    """Atomically replace the file at ``path`` with ``data``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(zone_data_to_json(data), f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
