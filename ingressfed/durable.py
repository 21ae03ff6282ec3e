"""Files that survive a crash: replaced whole or not at all, or appended to a line at a time.

The embedded provider's zone file and journal, a feed follower's state and journal, and the ACME
state all need the same three steps in the same order, so they are written once here:
- ``write_temp``: the new content in a temporary file beside the target, on disk (fsync);
- ``replace``: that, then a rename over the target, then the directory synced so the rename
  itself survives;
- ``append``: bytes added to the end, on disk before it returns; on failure the file is cut back
  to where it was, so a torn tail never outlives the call that wrote it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["append", "replace", "sync_dir", "write_temp"]


def write_temp(beside: Path, data: bytes, *, mode: int | None = None) -> str:
    """A temporary file in ``beside``'s directory holding ``data``, fsynced; its path. ``mode``:
    its permissions (the default is mkstemp's 0o600)."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=".tmp", dir=beside.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def replace(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """``path`` holds ``data`` after this returns, and either its old or its new content after a
    crash at any point, never a mix."""
    tmp = write_temp(path, data, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    sync_dir(path.parent)


def append(path: Path, data: bytes) -> int:
    """Add ``data`` at the end of ``path`` (created 0o644 when missing), on disk before returning;
    the file's size before. On failure the file is cut back to that size and the error raised."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                os.fsync(fd)
            raise
    finally:
        os.close(fd)
    if created:
        sync_dir(path.parent)
    return size


def sync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` survive a crash (where the OS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
