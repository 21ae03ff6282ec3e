"""A provider that keeps the zone in a JSON file, as careful as a real DNS backend.

It shows everything a plugin needs: options validated with errors that name the
field, capabilities, atomic batches, refusing what a backend refuses with the
error naming the record (so ingressfed isolates it), and ingressfed's batching
helpers doing the splitting and isolation.

File format: ``{"zone": "example.com", "records": [{"name", "type", "ttl", "values"}]}``.
A batch is checked whole against the file's content, then written to a temporary
file and renamed over the old one, so a reader never sees half a batch.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    PermanentProviderError,
    RecordConflictError,
    RecordNotFoundError,
)
from ingressfed.model import Changes, RecordSet, RecordType
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import BatchLimits, apply_in_batches

__all__ = ["FileProvider"]

log = logging.getLogger(__name__)

Key = tuple[str, RecordType, str | None]


class _Record(TypedDict):
    name: str
    type: str
    ttl: int
    values: list[str]


class FileProvider(BaseProvider):
    """Entry point ``example-file``. Options: ``path`` (required), ``maxBatch`` (default 100)."""

    name = "example-file"

    def __init__(self, *, zone: str, options: Mapping[str, Any]) -> None:
        problems: list[str] = []
        unknown = sorted(set(options) - {"path", "maxBatch"})
        problems += [
            f"dns.options.{k}: unknown option for provider example-file (known: path, maxBatch)"
            for k in unknown
        ]
        path = options.get("path")
        if not isinstance(path, str) or not path:
            problems.append("dns.options.path: required, the JSON file that holds the zone")
        max_batch = options.get("maxBatch", 100)
        if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
            problems.append(f"dns.options.maxBatch: expected an integer >= 1, got {max_batch!r}")
        if problems:
            raise ConfigError(problems)
        assert isinstance(path, str) and isinstance(max_batch, int)
        self.zone = zone.rstrip(".").lower()
        self.path = Path(path)
        self.capabilities = Capabilities(max_batch=max_batch)
        self._lock = asyncio.Lock()  # one writer at a time within this process

    # -- file I/O, off the event loop ---------------------------------------------------------------

    def _read(self) -> dict[Key, RecordSet]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise PermanentProviderError(f"cannot read {self.path}: {e}", provider=self.name) from e
        if (
            not isinstance(raw, dict)
            or raw.get("zone") != self.zone
            or not isinstance(raw.get("records"), list)
        ):
            raise PermanentProviderError(
                f"{self.path} does not hold zone {self.zone!r}; point dns.options.path at this zone's file",
                provider=self.name,
            )
        out: dict[Key, RecordSet] = {}
        for r in raw["records"]:
            rs = RecordSet(r["name"], RecordType(r["type"]), int(r["ttl"]), tuple(r["values"]))
            out[rs.key] = rs
        return out

    def _write(self, sets: Mapping[Key, RecordSet]) -> None:
        records: list[_Record] = [
            {"name": rs.name, "type": rs.type.value, "ttl": rs.ttl, "values": list(rs.values)}
            for rs in sorted(sets.values(), key=lambda r: (r.name, r.type.value))
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".zone-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"zone": self.zone, "records": records}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- the provider protocol ---------------------------------------------------------------------

    async def records(self) -> list[RecordSet]:
        return list((await asyncio.to_thread(self._read)).values())

    async def apply(self, changes: Changes) -> ApplyResult:
        async with self._lock:
            # ingressfed's helper splits by maxBatch and, when a batch is refused for one
            # record, isolates it so every other change still applies.
            return await apply_in_batches(
                self._apply_batch, changes, BatchLimits(max_changes=self.capabilities.max_batch)
            )

    async def _apply_batch(self, changes: Changes) -> None:
        await asyncio.to_thread(self._apply_sync, changes)

    def _apply_sync(self, changes: Changes) -> None:
        sets = self._read()
        for c in changes.items:
            if c.old is not None:
                if sets.get(c.old.key) != c.old:
                    raise RecordNotFoundError(
                        f"{c.old.name} {c.old.type} is not in the zone as planned",
                        provider=self.name,
                        record=c.old.name,
                    )
                del sets[c.old.key]
        for c in changes.items:
            if c.new is None:
                continue
            problem = _problem(c.new, self.zone)
            if problem:
                raise InvalidRecordError(f"{c.new.name}: {problem}", provider=self.name, record=c.new.name)
            if c.new.key in sets:
                raise RecordConflictError(
                    f"{c.new.name} {c.new.type} already exists", provider=self.name, record=c.new.name
                )
            sets[c.new.key] = c.new
        _check_cname(sets.values(), self.name)
        self._write(sets)
        log.debug("wrote %d changes to %s", len(changes), self.path)


def _problem(rs: RecordSet, zone: str) -> str | None:
    if rs.name != zone and not rs.name.endswith("." + zone):
        return f"outside the zone {zone}"
    if not rs.values:
        return "no values"
    for v in rs.values:
        try:
            if rs.type is RecordType.A:
                ipaddress.IPv4Address(v)
            elif rs.type is RecordType.AAAA:
                ipaddress.IPv6Address(v)
        except ValueError:
            return f"{v!r} is not a valid {rs.type} value"
    if rs.type is RecordType.CNAME and len(rs.values) != 1:
        return "a CNAME has exactly one target"
    return None


def _check_cname(sets: Iterable[RecordSet], provider: str) -> None:
    types: dict[str, set[RecordType]] = {}
    for rs in sets:
        types.setdefault(rs.name, set()).add(rs.type)
    for name, at in types.items():
        if RecordType.CNAME in at and len(at) > 1:
            raise RecordConflictError(
                f"{name}: a CNAME cannot sit beside other data", provider=provider, record=name
            )
