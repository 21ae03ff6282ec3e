"""The embedded provider's zone file and journal: a batch is one appended line, the journal
is folded into a new zone file now and then, and a restart after any crash point loads every
batch that was reported applied and none that was not, whole."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from ingressfed.dnsserver import zonefile
from ingressfed.dnsserver.zonefile import journal_path, load_zone_file, save_zone_file
from ingressfed.errors import ConfigError, ProviderError
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from providers import embedded
from providers.embedded import EmbeddedProvider

ZONE = "example.com"


def a(name: str, *values: str) -> RecordSet:
    return RecordSet(f"{name}.{ZONE}", RecordType.A, 30, values)


def batch(*changes: Change) -> Changes:
    return Changes(changes)


def create(rs: RecordSet) -> Change:
    return Change(ChangeAction.CREATE, new=rs)


def update(old: RecordSet, new: RecordSet) -> Change:
    return Change(ChangeAction.UPDATE, old=old, new=new)


def provider(path: Path) -> EmbeddedProvider:
    return EmbeddedProvider(zone=ZONE, options={"zoneFile": str(path)})


async def seeded(path: Path, count: int) -> EmbeddedProvider:
    p = provider(path)
    await p.apply_batch(batch(*(create(a(f"s{i}", f"10.0.{i // 250}.{i % 250 + 1}")) for i in range(count))))
    return p


async def test_a_small_batch_appends_one_line_and_leaves_the_zone_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    p = await seeded(path, 2000)  # the first batch writes the whole file: there is none yet
    assert not journal_path(path).exists()
    snapshot = path.read_bytes()
    old = a("s7", "10.0.0.8")
    new = a("s7", "192.0.2.77")
    await p.apply_batch(batch(update(old, new)))
    await p.apply_batch(batch(create(a("extra", "192.0.2.1"))))
    assert path.read_bytes() == snapshot  # the 2000-set file was not written again
    lines = journal_path(path).read_bytes().splitlines()
    assert len(lines) == 2
    assert all(len(line) < 400 for line in lines)  # the size of the change, not of the zone
    assert json.loads(lines[0])["base"] == p.zone_data.serial - 2
    # Whoever reads the zone file (a restart, dns-serve --zone-file) reads the journal too.
    loaded = load_zone_file(path)
    assert loaded is not None
    assert loaded.serial == p.zone_data.serial
    assert set(loaded.records) == set(await p.records()) == set(p.zone_data.records)
    again = provider(path)
    assert again.zone_data == p.zone_data
    # A restart that replayed a journal writes the whole file on its next batch (and drops the journal).
    await again.apply_batch(batch(create(a("after", "192.0.2.2"))))
    assert not journal_path(path).exists()
    assert provider(path).zone_data == again.zone_data


async def test_the_journal_is_folded_into_a_new_zone_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "_JOURNAL_MIN", 5)
    path = tmp_path / "zone.json"
    p = await seeded(path, 3)
    seen: list[int] = []
    for i in range(12):
        await p.apply_batch(batch(create(a(f"n{i}", "192.0.2.1"))))
        seen.append(len(journal_path(path).read_bytes().splitlines()) if journal_path(path).exists() else 0)
    # At most 5 changes in the journal; then one batch writes the whole file and starts it afresh.
    assert max(seen) == 5 and seen.count(0) == 2
    assert provider(path).zone_data == p.zone_data
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


async def test_a_line_whose_write_did_not_finish_is_left_out_whole(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    p = await seeded(path, 3)
    await p.apply_batch(batch(create(a("kept", "192.0.2.1"))))
    kept = p.zone_data
    full = (
        json.dumps(
            {
                "base": kept.serial,
                "serial": kept.serial + 1,
                "changes": [
                    {
                        "old": None,
                        "new": {"name": f"torn.{ZONE}", "type": "A", "ttl": 30, "values": ["192.0.2.9"]},
                    }
                ],
            }
        )
        + "\n"
    ).encode()
    with open(journal_path(path), "ab") as f:
        f.write(full[: len(full) // 2])  # the crash came halfway through the write
    again = provider(path)
    assert again.zone_data == kept
    assert f"torn.{ZONE}" not in {rs.name for rs in await again.records()}
    # The next batch writes a whole file: nothing is appended after the torn line.
    await again.apply_batch(batch(create(a("next", "192.0.2.3"))))
    assert not journal_path(path).exists()
    names = {rs.name for rs in await provider(path).records()}
    assert {f"kept.{ZONE}", f"next.{ZONE}"} <= names and f"torn.{ZONE}" not in names


async def test_a_crash_between_the_new_zone_file_and_removing_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    p = await seeded(path, 3)
    await p.apply_batch(batch(create(a("j1", "192.0.2.1"))))
    await p.apply_batch(batch(update(a("j1", "192.0.2.1"), a("j1", "192.0.2.2"))))
    stale = journal_path(path).read_bytes()
    save_zone_file(path, p.zone_data)  # the fold: new file, journal removed ...
    journal_path(path).write_bytes(stale)  # ... but the crash came before the removal
    again = provider(path)
    assert again.zone_data.serial == p.zone_data.serial  # the old lines are in the file already
    assert set(await again.records()) == set(await p.records())


async def test_a_failed_append_is_cut_back_and_nothing_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "zone.json"
    p = await seeded(path, 3)
    await p.apply_batch(batch(create(a("ok", "192.0.2.1"))))
    before = journal_path(path).read_bytes()
    data_before = p.zone_data
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zonefile.os, "write", half_then_full)
    with pytest.raises(ProviderError, match="No space left"):
        await p.apply_batch(batch(create(a("lost", "192.0.2.2"))))
    monkeypatch.setattr(zonefile.os, "write", real_write)
    assert journal_path(path).read_bytes() == before  # cut back to the last whole batch
    assert p.zone_data is data_before
    assert f"lost.{ZONE}" not in {rs.name for rs in await p.records()}
    assert provider(path).zone_data == data_before
    await p.apply_batch(batch(create(a("later", "192.0.2.3"))))
    assert provider(path).zone_data == p.zone_data


async def test_a_journal_that_does_not_continue_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "zone.json"
    p = await seeded(path, 3)
    await p.apply_batch(batch(create(a("j1", "192.0.2.1"))))
    lines = journal_path(path).read_bytes().splitlines()
    bad = json.loads(lines[0])
    bad["base"] += 5
    journal_path(path).write_bytes(lines[0] + b"\n" + json.dumps(bad).encode() + b"\n")
    with pytest.raises(ConfigError, match=r"journal .* line 2: continues serial"):
        provider(path)
    journal_path(path).write_bytes(lines[0] + b"\n{not json\n" + lines[0] + b"\n")
    with pytest.raises(ConfigError, match=r"line 2: not valid JSON"):
        provider(path)
    at = json.loads(path.read_text())["serial"]
    line = {"base": at, "serial": at + 1, "changes": [{"old": None, "new": {"name": 3}}]}
    journal_path(path).write_text(json.dumps(line) + "\n")
    with pytest.raises(ConfigError, match=r"line 1\[0\]\.new\.name"):
        load_zone_file(path)


async def test_without_a_zone_file_the_versions_held_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    p = EmbeddedProvider(zone=ZONE)
    await p.apply_batch(batch(create(a("x", "192.0.2.1"))))
    for i in range(1100):  # over _FOLD_MIN (1024): the chain of versions is folded once
        await p.apply_batch(
            batch(update(a("x", f"192.0.2.{i % 200 + 1}"), a("x", f"192.0.2.{(i + 1) % 200 + 1}")))
        )
    assert p.zone_data.pending < 1024
    assert p.zone_data.records == (a("x", f"192.0.2.{1100 % 200 + 1}"),)
