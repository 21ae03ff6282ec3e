"""The embedded provider: the zone lives in this process and is served by ingressfed's own DNS server.

It is as strict as an authoritative store: CREATE of an existing set is a
RecordConflictError, DELETE or UPDATE of a set that is missing or differs is
a RecordNotFoundError, a CNAME beside other data at one name is a
RecordConflictError, and malformed sets are InvalidRecordErrors. Each batch
is validated whole against the record sets at the names it touches and then
applied, persisted (one journal line) and published as one new immutable
:class:`~ingressfed.dnsserver.zone.ZoneData` (with the SOA serial incremented)
that holds only its changes until someone reads every record set; so a batch
costs O(changes), not O(zone). ``apply`` isolates a bad record so the rest of
the plan still applies.

DNS servers in the same process follow the zone through :meth:`subscribe`::

    provider = EmbeddedProvider(zone="example.com", options={"zoneFile": "/var/lib/ingressfed/zone.json"})
    async with DnsServer(build_index(provider.zone_data), host=..., port=...) as server:
        provider.subscribe(server.update_soon)   # re-render off the loop, swap atomically

Options (all optional): ``zoneFile`` (path of the JSON zone file, loaded at
start with its journal; each batch is appended to the journal and the file is
rewritten atomically when the journal has grown, see
:mod:`ingressfed.dnsserver.zonefile`), ``nameservers`` (list of
NS names, default ``["ns1.<zone>"]``; an entry may be
``{name: ns1.<zone>, addresses: [192.0.2.53, "2001:db8::53"]}``, and names
inside the zone get those addresses as A/AAAA glue), ``hostmaster`` (default
``hostmaster.<zone>``), ``soaRefresh``, ``soaRetry``, ``soaExpire``,
``soaMinimum`` (seconds; the last is the negative-caching TTL), ``maxBatch``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from ingressfed.dnsserver.index import record_problem as serving_problem
from ingressfed.dnsserver.zone import SoaSettings, ZoneData, next_serial, zone_data_from_records
from ingressfed.dnsserver.zonefile import append_journal, load_zone_file, save_zone_file
from ingressfed.errors import (
    ConfigError,
)
from ingressfed.model import Change, Changes, RecordKey, RecordSet, RecordType
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import BatchLimits, apply_in_batches
from providers.errortable import ErrorTable, Rule, Scope
from providers.inmemory import record_problem
from providers.staging import stage

__all__ = ["ChangeSubscriber", "EmbeddedProvider", "ZoneSubscriber", "soa_from_options", "stage"]

log = logging.getLogger(__name__)

ZoneSubscriber = Callable[[ZoneData], None]
# Also told which changes turned the previous zone into this one (the serial is the next).
ChangeSubscriber = Callable[[ZoneData, Sequence[Change]], None]

_OPTIONS = (
    "zoneFile",
    "nameservers",
    "hostmaster",
    "soaRefresh",
    "soaRetry",
    "soaExpire",
    "soaMinimum",
    "maxBatch",
)
_PROVIDER = "embedded"
# The journal is folded into a new zone file when it holds more changes than this or a quarter
# of the zone, whichever is more: writing the whole file then costs O(1) per change amortised.
_JOURNAL_MIN = 1024
_PATH_HINT = "fix dns.options.zoneFile (a writable file in an existing directory)"
# Zone file write failures by errno: a wrong path or permissions will not heal by retrying, and
# no record is to blame; a full or failing disk may.
ERRORS = ErrorTable(
    provider=_PROVIDER,
    codes={
        **dict.fromkeys(
            ("ENOENT", "ENOTDIR", "EISDIR", "EEXIST", "EACCES", "EPERM", "EROFS"),
            Rule(Scope.BATCH, _PATH_HINT),
        ),
    },
    default=Rule(Scope.TRANSIENT),
)


def soa_from_options(zone: str, options: Mapping[str, Any]) -> SoaSettings:

    return _options(zone.rstrip(".").lower(), options)[1]


def _options(zone: str, options: Mapping[str, Any]) -> tuple[Path | None, SoaSettings, int]:
    problems: list[str] = []
    for key in sorted(set(options) - set(_OPTIONS)):
        problems.append(
            f"dns.options.{key}: unknown option for provider embedded (known: {', '.join(_OPTIONS)})"
        )
    zone_file = options.get("zoneFile")
    path: Path | None = None
    if zone_file is not None:
        if not isinstance(zone_file, str) or not zone_file:
            problems.append(f"dns.options.zoneFile: expected a file path, got {zone_file!r}")
        else:
            path = Path(zone_file).expanduser()

    def name(key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            problems.append(f"dns.options.{key}: expected a DNS name, got {value!r}")
            return "invalid"
        try:
            dns.name.from_text(value.rstrip(".") + ".")
        except dns.exception.DNSException as exc:
            problems.append(f"dns.options.{key}: {value!r} is not a valid DNS name ({exc})")
        return value.rstrip(".").lower()

    def seconds(key: str, default: int, low: int) -> int:
        value = options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 0x7FFFFFFF:
            problems.append(
                f"dns.options.{key}: expected an integer number of seconds >= {low}, got {value!r}"
            )
            return default
        return value

    default = SoaSettings.default(zone)
    raw_ns = options.get("nameservers", list(default.nameservers))
    if not isinstance(raw_ns, list | tuple) or not raw_ns:
        problems.append(f"dns.options.nameservers: expected a non-empty list of DNS names, got {raw_ns!r}")
        raw_ns = list(default.nameservers)
    names: list[str] = []
    glue: list[tuple[str, tuple[str, ...]]] = []
    for i, entry in enumerate(raw_ns):
        where = f"nameservers[{i}]"
        if isinstance(entry, Mapping):
            for key in sorted(set(entry) - {"name", "addresses"}):
                problems.append(f"dns.options.{where}.{key}: unknown key (known: name, addresses)")
            ns = name(f"{where}.name", entry.get("name"))
            addresses = _addresses(f"dns.options.{where}.addresses", entry.get("addresses"), problems)
            if addresses and ns != zone and not ns.endswith("." + zone):
                problems.append(
                    f"dns.options.{where}.addresses: {ns} is outside zone {zone}; only in-zone "
                    "nameservers get glue here (an outside name's own zone publishes its addresses)"
                )
            elif addresses:
                glue.append((ns, addresses))
        else:
            ns = name(where, entry)
        names.append(ns)
    soa = SoaSettings(
        nameservers=tuple(names),
        glue=tuple(glue),
        hostmaster=name("hostmaster", _mailbox(options.get("hostmaster", default.hostmaster))),
        refresh=seconds("soaRefresh", default.refresh, 1),
        retry=seconds("soaRetry", default.retry, 1),
        expire=seconds("soaExpire", default.expire, 1),
        minimum=seconds("soaMinimum", default.minimum, 0),
    )
    max_batch = seconds("maxBatch", 1000, 1)
    if problems:
        raise ConfigError(problems)
    return path, soa, max_batch


def _addresses(where: str, value: Any, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not value:
        problems.append(f"{where}: expected a non-empty list of IP addresses, got {value!r}")
        return ()
    out = []
    for v in value:
        try:
            out.append(str(ipaddress.ip_address(str(v))))
        except ValueError:
            problems.append(f"{where}: {v!r} is not an IPv4 or IPv6 address")
    return tuple(out)


def _mailbox(value: Any) -> Any:
    """``hostmaster@example.com`` -> ``hostmaster.example.com`` (the SOA RNAME form)."""
    if isinstance(value, str) and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local.replace('.', chr(92) + '.')}.{domain}"
    return value


def _problem(zone: str) -> Callable[[RecordSet], str | None]:
    def problem(rs: RecordSet) -> str | None:
        return record_problem(rs, zone, routing=True) or serving_problem(zone, rs)

    return problem


class EmbeddedProvider(BaseProvider):
    """Entry point ``embedded``."""

    name = _PROVIDER

    def __init__(self, *, zone: str, options: Mapping[str, Any] | None = None) -> None:
        self.zone = zone.rstrip(".").lower()
        path, soa, max_batch = _options(self.zone, dict(options or {}))
        self.zone_file = path
        # Weighted shares: the DNS server draws one per query (dnsserver.index).
        self.capabilities = Capabilities(routing=True, weighted=True, max_batch=max_batch)
        self._subscribers: list[ZoneSubscriber] = []
        self._change_subscribers: list[ChangeSubscriber] = []
        self._lock = asyncio.Lock()
        self.calls: Counter[str] = Counter()  # "write": zone file writes attempted
        loaded = load_zone_file(path) if path is not None else None
        if loaded is not None and loaded.zone != self.zone:
            raise ConfigError(
                [
                    f"dns.options.zoneFile: {path} holds zone {loaded.zone}, not {self.zone}; "
                    "point zoneFile at another file or remove it"
                ]
            )
        # The zone file and the serial it ends at (with its journal): a batch that continues
        # it is appended to the journal; otherwise (no file yet, a journal replayed or cut,
        # new SOA settings) the next write is a whole new zone file.
        self._disk: tuple[Path, int] | None = None
        self._journal_changes = 0  # in the journal since the zone file was last written whole
        if loaded is None:
            self._data = zone_data_from_records(self.zone, (), serial=1, soa=soa)
        else:
            replayed = loaded.pending
            serial = loaded.serial if loaded.soa == soa else next_serial(loaded.serial)
            self._data = zone_data_from_records(self.zone, loaded.records, serial=serial, soa=soa)
            if serial == loaded.serial and not replayed and path is not None:
                self._disk = (path, serial)
            log.info(
                "loaded zone %s serial %d (%d record sets, %d changes from the journal) from %s",
                self.zone,
                serial,
                len(loaded.records),
                replayed,
                path,
                extra={"zone": self.zone},
            )
        self._sets: dict[RecordKey, RecordSet] = {rs.key: rs for rs in self._data.records}
        # The same sets by name: a batch is checked against the names it touches only.
        self._by_name: dict[str, dict[RecordKey, RecordSet]] = {}
        for rs in self._data.records:
            self._by_name.setdefault(rs.name, {})[rs.key] = rs

    @property
    def zone_data(self) -> ZoneData:
        """The current zone (immutable; a new object after every change)."""
        return self._data

    def subscribe(self, callback: ZoneSubscriber) -> Callable[[], None]:
        """Call ``callback(zone_data)`` after every change; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def subscribe_changes(self, callback: ChangeSubscriber) -> Callable[[], None]:
        """Call ``callback(zone_data, changes)`` after every change (``DnsServer.update_soon``
        follows the changes in place); returns the unsubscribe function."""
        self._change_subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._change_subscribers:
                self._change_subscribers.remove(callback)

        return unsubscribe

    async def records(self) -> list[RecordSet]:
        return list(self._sets.values())

    async def apply(self, changes: Changes) -> ApplyResult:
        return await apply_in_batches(
            self.apply_batch, changes, BatchLimits(max_changes=self.capabilities.max_batch)
        )

    async def apply_batch(self, changes: Changes) -> None:
        """Apply one batch: all of it or (raising, naming the record) none of it.

        O(changes): checked against the sets at the names it touches, persisted as one
        journal line (a whole zone file only now and then, see ``ZoneData.needs_folding``)."""
        if not changes:
            return
        async with self._lock:
            names = {rs.name for c in changes.items for rs in (c.old, c.new) if rs is not None}
            here = {k: v for n in names for k, v in self._by_name.get(n, {}).items()}
            staged = stage(here, changes, provider=_PROVIDER, problem=_problem(self.zone))
            data = ZoneData.following(self._data, changes.items, serial=next_serial(self._data.serial))
            if self.zone_file is not None:
                self.calls["write"] += 1
                try:
                    await asyncio.to_thread(self._persist, self.zone_file, data, changes.items)
                except OSError as exc:
                    raise ERRORS.error(
                        f"cannot write zone file {self.zone_file}: {exc.strerror}",
                        code=errno.errorcode.get(exc.errno or 0, ""),
                    ) from exc
            elif data.needs_folding:
                await asyncio.to_thread(lambda: data.records)  # bounds the versions held in memory
            self._commit(here, staged)
            self._data = data
        self._publish(data, changes.items)

    def _persist(self, path: Path, data: ZoneData, changes: Sequence[Change]) -> None:
        """Write a batch to disk (in a worker thread): a journal line, or a whole new zone file
        when the journal does not continue from the files or has grown to a quarter of the zone."""
        base = self._data.serial
        journal_full = self._journal_changes + len(changes) > max(_JOURNAL_MIN, len(self._sets) // 4)
        if self._disk == (path, base) and not journal_full:
            try:
                append_journal(path, base=base, serial=data.serial, changes=changes)
            except BaseException:
                self._disk = None  # whatever the journal holds now, a whole file comes next
                raise
            self._journal_changes += len(changes)
            if data.needs_folding:
                data.records  # noqa: B018 (folds the versions held in memory)
        else:
            self._disk = None
            save_zone_file(path, data)  # reads data.records: folds the versions held in memory too
            self._journal_changes = 0
        self._disk = (path, data.serial)

    def _commit(self, before: Mapping[RecordKey, RecordSet], after: Mapping[RecordKey, RecordSet]) -> None:
        for key, rs in before.items():
            if key not in after:
                del self._sets[key]
                at = self._by_name[rs.name]
                del at[key]
                if not at:
                    del self._by_name[rs.name]
        for key, rs in after.items():
            if before.get(key) is not rs:
                self._sets[key] = rs
                self._by_name.setdefault(rs.name, {})[key] = rs

    def _publish(self, data: ZoneData, changes: Sequence[Change]) -> None:
        for plain in list(self._subscribers):
            self._call(functools.partial(plain, data))
        for told in list(self._change_subscribers):
            self._call(functools.partial(told, data, changes))

    def _call(self, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:  # one broken subscriber must not stop the others or the controller
            log.exception("zone subscriber failed", extra={"zone": self.zone})

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        return super().adjust([rs for rs in desired if rs.type not in (RecordType.SOA, RecordType.NS)])
