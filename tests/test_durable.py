"""ingressfed.durable: whole-file replacement and appends that a failure never leaves half done."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from ingressfed import durable


def test_replace_writes_the_content_with_its_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "key.pem"
    durable.replace(target, b"old", mode=0o600)
    durable.replace(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["key.pem"]


def test_a_failed_write_keeps_the_old_content_and_removes_its_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "zone.json"
    durable.replace(target, b"old")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        durable.replace(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["zone.json"]


def test_append_returns_the_size_before_and_a_failed_append_is_cut_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "state.journal"
    assert durable.append(journal, b"one\n") == 0
    assert durable.append(journal, b"two\n") == 4
    real_write = os.write

    def torn(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[:2]))
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", torn)
    with pytest.raises(OSError, match="I/O error"):
        durable.append(journal, b"three\n")
    monkeypatch.undo()
    assert journal.read_bytes() == b"one\ntwo\n"
    assert durable.append(journal, b"four\n") == 8
