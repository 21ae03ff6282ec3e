"""A strict in-memory provider: the reference every other provider is tested against.

It rejects what a careful authoritative backend rejects, with the error naming
the record: CREATE of a set that exists (RecordConflictError), DELETE or UPDATE
of a set that is missing or differs from ``old`` (RecordNotFoundError), a CNAME
beside other data at one name (RecordConflictError), malformed names, values
or TTLs (InvalidRecordError). A batch is validated whole against a copy of the
zone and only then applied, so a rejected batch changes nothing. ``apply``
splits changes by ``capabilities.max_batch`` and isolates a bad record so the
others still apply (see ``providers.batching``).

Tests drive it through ``calls`` (how many ``records``/``apply``/batch calls
were made), ``batch_sizes`` and two fault injections: ``fail_next`` (transient
errors on the next N backend calls) and ``reject`` (a named record is refused).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    PermanentProviderError,
    TransientProviderError,
)
from ingressfed.model import Changes, RecordKey, RecordSet, RecordType
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import BatchLimits, apply_in_batches
from providers.staging import stage

__all__ = ["MAX_TTL", "InMemoryProvider", "record_problem"]

log = logging.getLogger(__name__)

MAX_TTL = 2**31 - 1  # RFC 2181 section 8
MAX_NAME = 253
MAX_LABEL = 63
MAX_TXT_STRING = 255
# Letters, digits, hyphen; '_' for service/companion labels; a lone '*' as the first label.
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_TXT_STRINGS = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _name_problem(name: str, zone: str | None) -> str | None:
    if not name:
        return "name is empty"
    if len(name) > MAX_NAME:
        return f"name is {len(name)} characters long; DNS allows at most {MAX_NAME}"
    if zone is not None and name != zone and not name.endswith("." + zone):
        return f"name is outside the zone {zone}"
    labels = name.split(".")
    for i, label in enumerate(labels):
        if not label:
            return "name has an empty label"
        if len(label) > MAX_LABEL:
            return f"label {label[:20]!r}... is {len(label)} characters long; DNS allows at most {MAX_LABEL}"
        if label == "*" and i == 0:
            continue
        if not _LABEL.match(label):
            return f"label {label!r} has characters other than letters, digits, '-' and '_'"
    return None


def _txt_problem(value: str) -> str | None:
    stripped = value.strip()
    if not stripped.startswith('"') or not stripped.endswith('"'):
        return f"TXT value {value!r} must be one or more quoted strings"
    strings = _TXT_STRINGS.findall(stripped)
    if _TXT_STRINGS.sub("", stripped).strip():
        return f"TXT value {value!r} has text outside quotes"
    for s in strings:
        if len(s) > MAX_TXT_STRING:
            return f"TXT string of {len(s)} characters; at most {MAX_TXT_STRING} per string"
    return None


def _value_problem(rs: RecordSet, value: str) -> str | None:
    if rs.type is RecordType.A:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return f"A value {value!r} is not an IPv4 address"
        return None
    if rs.type is RecordType.AAAA:
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return f"AAAA value {value!r} is not an IPv6 address"
        return None
    if rs.type in (RecordType.CNAME, RecordType.NS):
        # Targets may lie outside the zone; check the form only.
        problem = _name_problem(value, None)
        return f"{rs.type} target {value!r}: {problem}" if problem else None
    if rs.type is RecordType.TXT:
        return _txt_problem(value)
    return None


def record_problem(rs: RecordSet, zone: str, *, routing: bool = False) -> str | None:
    """Why a backend would refuse ``rs`` in ``zone``, or None. Pure."""
    problem = _name_problem(rs.name, zone)
    if problem:
        return problem
    if not 0 <= rs.ttl <= MAX_TTL:
        return f"TTL {rs.ttl} is out of range 0..{MAX_TTL}"
    if not rs.values:
        return "record set has no values"
    if rs.type is RecordType.CNAME and len(rs.values) != 1:
        return f"CNAME must have exactly one target, got {len(rs.values)}"
    for value in rs.values:
        problem = _value_problem(rs, value)
        if problem:
            return problem
    if (rs.set_identifier is None) != (rs.routing is None):
        return "set_identifier and routing must be given together"
    if rs.set_identifier is not None and not routing:
        return "this provider does not support routed record sets (set_identifier)"
    return None


def _int_option(options: Mapping[str, Any], key: str, default: int, *, low: int) -> int:
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError([f"dns.options.{key}: expected an integer >= {low}, got {value!r}"])
    return value


class InMemoryProvider(BaseProvider):
    """Entry point ``inmemory``. Options: ``maxBatch`` (int), ``routing`` (bool), ``minTtl`` (int)."""

    name = "inmemory"

    def __init__(self, *, zone: str, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        unknown = set(options) - {"maxBatch", "routing", "minTtl"}
        if unknown:
            raise ConfigError(
                [
                    f"dns.options.{k}: unknown option for provider inmemory "
                    "(known: maxBatch, routing, minTtl)"
                    for k in sorted(unknown)
                ]
            )
        routing = options.get("routing", False)
        if not isinstance(routing, bool):
            raise ConfigError([f"dns.options.routing: expected true or false, got {routing!r}"])
        self.zone = zone.rstrip(".").lower()
        self.capabilities = Capabilities(
            routing=routing,
            max_batch=_int_option(options, "maxBatch", 1000, low=1),
            min_ttl=_int_option(options, "minTtl", 0, low=0),
        )
        self._sets: dict[RecordKey, RecordSet] = {}
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[int] = []
        self._transient_left = 0
        self._rejected: dict[str, str] = {}
        self._refusal: str | None = None

    # --- test hooks -------------------------------------------------------------------------

    def seed(self, records: Iterable[RecordSet]) -> None:
        """Put sets in place as if someone else had written them (no validation, not counted)."""
        for rs in records:
            self._sets[rs.key] = rs

    def fail_next(self, count: int) -> None:
        """The next ``count`` backend calls (records or a batch) fail with a transient error."""
        self._transient_left = count

    def reject(self, name: str, reason: str = "rejected by fault injection") -> None:
        """Any batch touching ``name`` is refused as invalid, naming it."""
        self._rejected[name.rstrip(".").lower()] = reason

    def refuse_all(self, reason: str = "refused by fault injection") -> None:
        """Every further backend call is refused as a real backend refuses bad credentials:
        permanently, and for the whole batch (no record is to blame)."""
        self._refusal = reason

    # --- Provider ---------------------------------------------------------------------------

    async def records(self) -> list[RecordSet]:
        self.calls["records"] += 1
        self._maybe_fail()
        return sorted(self._sets.values(), key=lambda rs: (rs.name, rs.type, rs.set_identifier or ""))

    async def apply(self, changes: Changes) -> ApplyResult:
        self.calls["apply"] += 1
        return await apply_in_batches(
            self.apply_batch, changes, BatchLimits(max_changes=self.capabilities.max_batch)
        )

    async def apply_batch(self, changes: Changes) -> None:
        """Apply one batch atomically or raise naming the first bad record."""
        self.calls["batch"] += 1
        self._maybe_fail()
        self.batch_sizes.append(len(changes))
        for change in changes.items:
            refused = self._rejected.get(change.record.name)
            if refused is not None:
                raise InvalidRecordError(refused, provider=self.name, record=change.record.name)
        routing = self.capabilities.routing
        self._sets = stage(
            self._sets,
            changes,
            provider=self.name,
            problem=lambda rs: record_problem(rs, self.zone, routing=routing),
        )

    # --- internals --------------------------------------------------------------------------

    def _maybe_fail(self) -> None:
        if self._refusal is not None:
            raise PermanentProviderError(self._refusal, provider=self.name, batch_wide=True)
        if self._transient_left > 0:
            self._transient_left -= 1
            raise TransientProviderError("injected transient failure", provider=self.name)
