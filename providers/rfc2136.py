"""RFC 2136 dynamic-update provider (dnspython, native asyncio), signed with TSIG (RFC 8945).

Reads the zone by AXFR over TCP and writes it with UPDATE messages. Every
change carries a prerequisite stating what it was planned against, so a
concurrent writer is detected by the server instead of being overwritten:

- CREATE: the set must not exist (NXRRSET prerequisite on name and type);
- UPDATE and DELETE: the old set must exist with exactly the planned data
  (value-dependent prerequisite, RFC 2136 section 2.4.2).

A failed prerequisite (rcode NXRRSET/YXRRSET/NXDOMAIN/YXDOMAIN) is transient:
the next reconcile re-reads the zone and plans again. Within a message all
deletions come before all additions, so an A->CNAME swap never meets the
"CNAME and other data" rule the server enforces silently (RFC 2136 3.4.2.2).
A message is applied atomically by the server; a batch too large for one
message is split (keeping each name's changes together).

Only standard RFC 2136/2845/8945 features are used, so BIND9, Knot DNS and
PowerDNS (with dnsupdate enabled) all work.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.xfr
import dns.zone
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    ProviderError,
)
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import BatchLimits, Cost, apply_in_batches
from providers.errortable import ErrorTable, Rule, Scope

__all__ = ["ALGORITHMS", "RFC2136Options", "RFC2136Provider", "build_update", "wire_cost"]

log = logging.getLogger(__name__)

# Accepted spellings -> the algorithm name on the wire.
ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-md5.sig-alg.reg.int": dns.tsig.HMAC_MD5,
}
_PREREQUISITE_FAILED = {dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN}
_T = Rule(Scope.TRANSIENT)
# What a server's refusal of an update means (codes: RCODE names, plus our own for local failures).
ERRORS = ErrorTable(
    provider="rfc2136",
    codes={
        # A prerequisite failed: the zone changed since it was read; the next cycle re-reads.
        **dict.fromkeys(("NXRRSET", "YXRRSET", "NXDOMAIN", "YXDOMAIN"), _T),
        "SERVFAIL": _T,
        "unreachable": _T,
        "dns": _T,
        # Nothing to do with any record: a wrong key, a server not authoritative for the zone.
        "tsig": Rule(Scope.BATCH),
        "NOTAUTH": Rule(Scope.BATCH),
        "NOTIMP": Rule(Scope.BATCH),
        "xfr-refused": Rule(Scope.BATCH),
        # update-policy may refuse single names: the record at fault is found by isolation.
        "REFUSED": Rule(Scope.RECORD),
        "NOTZONE": Rule(Scope.RECORD, error=InvalidRecordError),
        "FORMERR": Rule(Scope.RECORD, error=InvalidRecordError),
    },
    default=Rule(Scope.BATCH),
)
_TSIG_ERRORS = (
    dns.tsig.PeerBadKey,
    dns.tsig.PeerBadSignature,
    dns.tsig.PeerBadTime,
    dns.tsig.PeerBadTruncation,
    dns.tsig.BadSignature,
    dns.tsig.BadTime,
    dns.tsig.BadAlgorithm,
)
_KEYFILE_SECRET = re.compile(r'secret\s+"([^"]+)"')
_KEYFILE_ALGORITHM = re.compile(r"algorithm\s+([A-Za-z0-9.-]+)")
_KEYFILE_NAME = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{')
# Header and zone section (counted in full), plus room for the TSIG record.
_MESSAGE_OVERHEAD = 12 + 260 + 300


class RFC2136Options(BaseModel):
    """``dns.options`` for ``provider: rfc2136``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    server: str = Field(min_length=1)
    port: int = Field(default=53, ge=1, le=65535)
    zone: str | None = Field(default=None, min_length=1)
    tsig_key_name: str | None = Field(default=None, alias="tsigKeyName", min_length=1)
    tsig_secret: str | None = Field(default=None, alias="tsigSecret", min_length=1)
    tsig_secret_file: str | None = Field(default=None, alias="tsigSecretFile", min_length=1)
    tsig_algorithm: str = Field(default="hmac-sha256", alias="tsigAlgorithm")
    transport: Literal["udp", "tcp"] = "udp"
    timeout: float = Field(default=5.0, gt=0, le=300)
    udp_size: int = Field(default=1232, alias="udpSize", ge=512, le=65535)
    max_message_size: int = Field(default=16384, alias="maxMessageSize", ge=1024, le=65535)
    min_ttl: int = Field(default=0, alias="minTtl", ge=0)
    max_batch: int = Field(default=1000, alias="maxBatch", ge=1, le=100000)

    @field_validator("tsig_algorithm")
    @classmethod
    def _known_algorithm(cls, v: str) -> str:
        if v.lower() not in ALGORITHMS:
            raise ValueError(f"unknown TSIG algorithm {v!r}; use one of {', '.join(sorted(ALGORITHMS))}")
        return v.lower()


def parse_options(options: Mapping[str, Any]) -> RFC2136Options:
    try:
        opts = RFC2136Options.model_validate(dict(options))
    except ValidationError as e:
        raise ConfigError(
            [f"dns.options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        ) from e
    if opts.tsig_secret and opts.tsig_secret_file:
        raise ConfigError(["dns.options: give either tsigSecret or tsigSecretFile, not both"])
    return opts


def _load_key(opts: RFC2136Options) -> tuple[dns.name.Name, bytes, dns.name.Name] | None:
    """(key name, secret, algorithm) from the options or a key file; None when unsigned.

    The file may hold just the base64 secret or a BIND/Knot-style ``key "name" { ... }``
    clause, whose name and algorithm are used unless the options give them.
    """
    name, algorithm, secret_text = opts.tsig_key_name, opts.tsig_algorithm, opts.tsig_secret
    if opts.tsig_secret_file:
        try:
            text = Path(opts.tsig_secret_file).read_text()
        except OSError as e:
            raise ConfigError(
                [f"dns.options.tsigSecretFile: cannot read {opts.tsig_secret_file}: {e}"]
            ) from e
        m = _KEYFILE_SECRET.search(text)
        secret_text = m.group(1) if m else text.strip()
        if m and name is None and (n := _KEYFILE_NAME.search(text)):
            name = n.group(1)
        if m and "tsigAlgorithm" not in opts.model_fields_set and (alg := _KEYFILE_ALGORITHM.search(text)):
            algorithm = alg.group(1).lower()
            if algorithm not in ALGORITHMS:
                raise ConfigError([f"dns.options.tsigSecretFile: unknown TSIG algorithm {algorithm!r}"])
    if secret_text is None and name is None:
        return None
    if secret_text is None or name is None:
        raise ConfigError(
            [
                "dns.options: TSIG needs both tsigKeyName and tsigSecret (or tsigSecretFile); "
                "give both or neither"
            ]
        )
    try:
        secret = base64.b64decode(secret_text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(["dns.options.tsigSecret: not valid base64 (as tsig-keygen prints it)"]) from e
    return dns.name.from_text(name), secret, ALGORITHMS[algorithm]


def _rdatas(rs: RecordSet) -> list[dns.rdata.Rdata]:
    rdtype = dns.rdatatype.from_text(rs.type.value)
    out: list[dns.rdata.Rdata] = []
    for v in rs.values:
        # Model names are absolute without the dot; make targets absolute explicitly.
        text = v + "." if rs.type in (RecordType.CNAME, RecordType.NS) else v
        try:
            out.append(
                dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False)
            )
        except (dns.exception.DNSException, ValueError) as e:
            raise InvalidRecordError(
                f"{rs.name} {rs.type}: value {v!r} is invalid: {e}", provider="rfc2136", record=rs.name
            ) from e
    return out


def _rdataset(rs: RecordSet) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_rdata_list(rs.ttl, _rdatas(rs))


def _owner(rs: RecordSet, origin: dns.name.Name) -> dns.name.Name:
    try:
        name = dns.name.from_text(rs.name, origin=dns.name.root)
    except dns.exception.DNSException as e:
        raise InvalidRecordError(f"{rs.name}: invalid name: {e}", provider="rfc2136", record=rs.name) from e
    if not name.is_subdomain(origin):
        raise InvalidRecordError(
            f"{rs.name} is outside the zone {origin.to_text(omit_final_dot=True)}",
            provider="rfc2136",
            record=rs.name,
        )
    return name


def build_update(
    zone: dns.name.Name,
    changes: Sequence[Change],
    *,
    key: tuple[dns.name.Name, bytes, dns.name.Name] | None = None,
) -> dns.update.UpdateMessage:
    """One UPDATE message with prerequisites for ``changes`` (pure, no I/O)."""
    if key is None:
        msg = dns.update.UpdateMessage(zone)
    else:
        keyname, secret, algorithm = key
        msg = dns.update.UpdateMessage(
            zone, keyring={keyname: secret}, keyname=keyname, keyalgorithm=algorithm
        )
    deletions: list[RecordSet] = []
    additions: list[RecordSet] = []
    for c in changes:
        if c.action is ChangeAction.CREATE:
            assert c.new is not None
            msg.absent(_owner(c.new, zone), c.new.type.value)
            additions.append(c.new)
            continue
        assert c.old is not None
        # Value-dependent prerequisite: the whole set must match; TTL 0 on the wire (RFC 2136 2.4.2).
        msg.present(_owner(c.old, zone), dns.rdataset.from_rdata_list(0, _rdatas(c.old)))
        deletions.append(c.old)
        if c.new is not None:
            if c.new.type != c.old.type:
                msg.absent(_owner(c.new, zone), c.new.type.value)
            additions.append(c.new)
    for rs in deletions:
        msg.delete(_owner(rs, zone), rs.type.value)
    for rs in additions:
        msg.add(_owner(rs, zone), _rdataset(rs))
    return msg


def wire_cost(zone: dns.name.Name, change: Change) -> Cost:
    """Bytes ``change`` adds to an UPDATE for ``zone``: measured on a message of its own.

    Name compression inside a larger message can only make it smaller, so the
    sum over a batch is an upper bound of the batch's message size.
    """
    try:
        size = len(build_update(zone, (change,)).to_wire()) - len(dns.update.UpdateMessage(zone).to_wire())
    except InvalidRecordError:
        size = 0  # refused when the batch is built, for this record alone
    return Cost(changes=1, values=len(change.record.values), chars=size)


class RFC2136Provider(BaseProvider):
    """Any RFC 2136 server (BIND9, Knot, PowerDNS) holding the zone, with TSIG."""

    name = "rfc2136"

    def __init__(self, *, zone: str, options: Mapping[str, Any]) -> None:
        self.opts = parse_options(options)
        self.zone = (self.opts.zone or zone).rstrip(".").lower()
        if not self.zone:
            raise ConfigError(["dns.options.zone: the zone is required (or federation.zone)"])
        self._origin = dns.name.from_text(self.zone, origin=dns.name.root)
        self._key = _load_key(self.opts)
        self.capabilities = Capabilities(
            routing=False, max_batch=self.opts.max_batch, min_ttl=self.opts.min_ttl
        )
        self.calls: dict[str, int] = {"axfr": 0, "update": 0, "tcp": 0}
        self.message_sizes: list[int] = []  # bytes of each UPDATE sent
        self.batch_sizes: list[int] = []  # changes in each UPDATE sent

    def _fail(self, message: str, *, code: str, record: str | None = None) -> ProviderError:
        return ERRORS.error(
            f"{self.opts.server}:{self.opts.port} zone {self.zone}: {message}", code=code, record=record
        )

    def _key_hint(self) -> str:
        if self._key is None:
            return "updates are unsigned: set tsigKeyName and tsigSecret if the server requires TSIG"
        return (
            f"check that the server knows key {self._key[0].to_text(omit_final_dot=True)!r} with the same "
            f"secret and algorithm {self._key[2].to_text(omit_final_dot=True)}"
        )

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        """Values in the server's canonical text (``2001:DB8:0::1`` -> ``2001:db8::1``), so what
        AXFR returns compares equal to what was planned and the plan does not flap."""
        out: list[RecordSet] = []
        for rs in super().adjust(desired):
            try:
                values = tuple(rd.to_text() for rd in _rdatas(rs))
            except InvalidRecordError:
                out.append(rs)  # apply reports it, for this record alone
                continue
            if rs.type in (RecordType.CNAME, RecordType.NS):
                values = tuple(v.rstrip(".") for v in values)
            out.append(RecordSet(rs.name, rs.type, rs.ttl, values, rs.set_identifier, rs.routing))
        return out

    # -- read -------------------------------------------------------------------------------------

    async def records(self) -> list[RecordSet]:
        zone = dns.zone.Zone(self._origin, relativize=False)
        kwargs: dict[str, Any] = {}
        if self._key is not None:
            kwargs = {
                "keyring": {self._key[0]: self._key[1]},
                "keyname": self._key[0],
                "keyalgorithm": self._key[2],
            }
        query, _ = dns.xfr.make_query(zone, **kwargs)
        self.calls["axfr"] += 1
        try:
            await dns.asyncquery.inbound_xfr(
                self.opts.server, zone, query, port=self.opts.port, timeout=self.opts.timeout, lifetime=60.0
            )
        except _TSIG_ERRORS as e:
            raise self._fail(f"zone transfer: TSIG rejected ({e!r}); {self._key_hint()}", code="tsig") from e
        except dns.xfr.TransferError as e:
            rcode = e.rcode
            if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.NOTIMP):
                raise self._fail(
                    f"zone transfer refused ({dns.rcode.to_text(rcode)}): allow AXFR for the key "
                    f"(BIND allow-transfer, Knot acl action transfer); {self._key_hint()}",
                    code="xfr-refused",
                ) from e
            raise self._fail(f"zone transfer failed: {dns.rcode.to_text(rcode)}", code="dns") from e
        except (dns.exception.Timeout, OSError, EOFError) as e:
            raise self._fail(f"zone transfer: cannot reach the server: {e!r}", code="unreachable") from e
        except dns.exception.DNSException as e:
            raise self._fail(f"zone transfer: {e!r}", code="dns") from e
        out: list[RecordSet] = []
        for name, node in zone.nodes.items():
            owner = name.to_text(omit_final_dot=True)
            for rds in node.rdatasets:
                try:
                    rtype = RecordType(dns.rdatatype.to_text(rds.rdtype))
                except ValueError:
                    continue  # types ingressfed does not model are foreign by definition
                values = tuple(rd.to_text() for rd in rds)
                out.append(RecordSet(owner, rtype, rds.ttl, values))
        return out

    # -- write ------------------------------------------------------------------------------------

    async def apply(self, changes: Changes) -> ApplyResult:
        limits = BatchLimits(
            max_changes=self.capabilities.max_batch, max_chars=self.opts.max_message_size - _MESSAGE_OVERHEAD
        )
        return await apply_in_batches(
            self._apply_batch, changes, limits, cost=functools.partial(wire_cost, self._origin)
        )

    async def _apply_batch(self, changes: Changes) -> None:
        msg = build_update(self._origin, changes.items, key=self._key)
        wire_size = len(msg.to_wire())
        if wire_size > 65535:
            raise InvalidRecordError(
                f"update of {wire_size} bytes exceeds 65535",
                provider=self.name,
                record=changes.items[0].record.name,
            )
        self.calls["update"] += 1
        self.message_sizes.append(wire_size)
        self.batch_sizes.append(len(changes))
        try:
            response = await self._send(msg, wire_size)
        except _TSIG_ERRORS as e:
            raise self._fail(f"update: TSIG rejected ({e!r}); {self._key_hint()}", code="tsig") from e
        except (dns.exception.Timeout, OSError, EOFError) as e:
            raise self._fail(f"update: cannot reach the server: {e!r}", code="unreachable") from e
        except dns.exception.DNSException as e:
            raise self._fail(f"update: {e!r}", code="dns") from e
        self._check(response, changes)

    async def _send(self, msg: dns.message.Message, wire_size: int) -> dns.message.Message:
        kwargs = {"timeout": self.opts.timeout, "port": self.opts.port}
        if self.opts.transport == "tcp" or wire_size > self.opts.udp_size:
            self.calls["tcp"] += 1
            return await dns.asyncquery.tcp(msg, self.opts.server, **kwargs)  # type: ignore[arg-type]
        response, used_tcp = await dns.asyncquery.udp_with_fallback(msg, self.opts.server, **kwargs)  # type: ignore[arg-type]
        if used_tcp:
            self.calls["tcp"] += 1
        return response

    def _check(self, response: dns.message.Message, changes: Changes) -> None:
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        text = dns.rcode.to_text(rcode)
        only = changes.items[0].record.name if len(changes) == 1 else None
        if rcode in _PREREQUISITE_FAILED:
            message = (
                f"prerequisite failed ({text}): the zone changed since it was read; re-reading next cycle"
            )
        elif rcode == dns.rcode.SERVFAIL:
            message = "server failure (SERVFAIL)"
        elif rcode in (dns.rcode.NOTAUTH, dns.rcode.NOTIMP):
            message = (
                f"{text}: the server is not authoritative for the zone, does not implement updates "
                f"or rejected TSIG; {self._key_hint()}"
            )
        elif rcode == dns.rcode.REFUSED:
            message = (
                "REFUSED: the server does not allow this update "
                "(BIND allow-update/update-policy, Knot acl action update); " + self._key_hint()
            )
        else:
            message = f"update rejected ({text})"
        raise self._fail(message, code=text, record=only)
