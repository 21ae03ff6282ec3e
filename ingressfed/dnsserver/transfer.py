"""Zone transfers out (AXFR, and IXFR from a journal of recent versions) and NOTIFY.

So that ordinary secondaries (BIND, Knot, PowerDNS, NSD) can serve the zone:

- AXFR (RFC 5936) over TCP: SOA, every RRset, SOA, in as many messages as it takes.
- IXFR (RFC 1995) over TCP: the differences from the secondary's serial to ours,
  version by version, when the journal still holds them; otherwise the whole
  zone (which RFC 1995 allows). Over UDP only the current SOA (the secondary
  then asks again over TCP).
- Allowed only to the configured TSIG keys and/or source CIDRs; a transfer
  request from anyone else is REFUSED. Signed queries are verified (RFC 8945)
  and answered signed, every message of a transfer included.
- NOTIFY (RFC 1996) to the configured secondaries after every serial change.

Secondaries answer every client alike, so geo-dependent sets are transferred
as a client of unknown location gets them from us.

The journal and :func:`respond` do no I/O (bytes in, bytes out); :func:`notify`
sends the NOTIFY messages; :class:`~ingressfed.dnsserver.server.DnsServer`
moves the transfer bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import itertools
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

from ingressfed.dnsserver.index import ZoneIndex
from ingressfed.errors import ConfigError

__all__ = [
    "Journal",
    "TransferPolicy",
    "TsigKey",
    "Version",
    "flat_view",
    "notify",
    "policy_from_config",
    "respond",
]

log = logging.getLogger(__name__)

# Records of one version as secondaries see them: (owner, type, ttl, data), all text.
Flat = frozenset[tuple[str, int, int, str]]
_MESSAGE_BUDGET = 16000  # bytes of records per transfer message (TCP messages may reach 65535)
_AXFR = dns.rdatatype.AXFR
_IXFR = dns.rdatatype.IXFR


@dataclass(frozen=True, slots=True)
class TsigKey:
    name: str
    secret: bytes
    algorithm: str = "hmac-sha256"

    @staticmethod
    def from_base64(name: str, secret: str, algorithm: str = "hmac-sha256") -> TsigKey:
        return TsigKey(name.rstrip(".").lower(), base64.b64decode(secret, validate=True), algorithm)

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name + ".", self.secret, self.algorithm)


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """Who may transfer the zone and whom to tell when it changes."""

    allow_from: tuple[str, ...] = ()  # CIDRs allowed without a key
    keys: tuple[TsigKey, ...] = ()  # keys allowed from any address
    notify: tuple[tuple[str, int], ...] = ()  # (address, port) of secondaries
    notify_key: str | None = None  # name of the key NOTIFY messages are signed with
    journal: int = 20  # versions kept for IXFR
    _nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_nets", tuple(ipaddress.ip_network(c, strict=False) for c in self.allow_from)
        )
        if self.notify_key is not None and self.notify_key not in {k.name for k in self.keys}:
            raise ValueError(f"notify key {self.notify_key!r} is not one of the transfer keys")

    @property
    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {dns.name.from_text(k.name + "."): k.key() for k in self.keys}

    def address_allowed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._nets)


def policy_from_config(section: Any) -> TransferPolicy | None:
    """The policy for ``dnsServer.transfer`` (a ``DnsTransferSection``); None when absent.
    Reads the key files; ConfigError naming the field for what does not hold."""
    if section is None:
        return None
    from ingressfed.config import read_token_file

    problems: list[str] = []
    keys: list[TsigKey] = []
    for i, k in enumerate(section.keys):
        try:
            keys.append(TsigKey.from_base64(k.name, read_token_file(k.secret_file), k.algorithm))
        except binascii.Error:
            problems.append(f"dnsServer.transfer.keys[{i}].secretFile: not base64 (as tsig-keygen prints it)")
    targets = []
    for t in section.notify:
        host, _, port = t.rpartition(":")
        targets.append((host.strip("[]"), int(port)))
    names = {k.name for k in keys}
    notify_key = section.notify_key.rstrip(".").lower() if section.notify_key else None
    if notify_key is not None and notify_key not in names:
        problems.append(f"dnsServer.transfer.notifyKey: {notify_key!r} is not one of dnsServer.transfer.keys")
    if not keys and not section.allow_from:
        problems.append(
            "dnsServer.transfer: give allowFrom CIDRs and/or keys, or nobody may transfer the zone"
        )
    if problems:
        raise ConfigError(problems)
    return TransferPolicy(
        allow_from=tuple(section.allow_from),
        keys=tuple(keys),
        notify=tuple(targets),
        notify_key=notify_key,
        journal=section.journal,
    )


@dataclass(frozen=True, slots=True)
class Version:
    serial: int
    soa: dns.rrset.RRset
    flat: Flat


def flat_view(index: ZoneIndex, names: Iterable[str] | None = None) -> Flat:
    return frozenset(
        (rrset.name.to_text(), int(rrset.rdtype), rrset.ttl, rd.to_text())
        for rrset in index.transfer_rrsets(names)
        for rd in rrset
    )


@dataclass(frozen=True, slots=True)
class _Diff:
    old: Version
    new_serial: int
    new_soa: dns.rrset.RRset
    deleted: Flat
    added: Flat


class Journal:
    """The current version and the differences between the last ``size`` versions."""

    def __init__(self, size: int) -> None:
        self.current: Version | None = None
        self._diffs: deque[_Diff] = deque(maxlen=max(size, 0) or None)
        self.size = size

    def record(self, index: ZoneIndex) -> bool:
        """Follow a new index; True when its serial differs (secondaries should be told)."""
        version = Version(index.serial, index.soa_rrset(), flat_view(index))
        old = self.current
        self.current = version
        if old is None or old.serial == version.serial:
            return old is None
        if self.size:
            self._diffs.append(
                _Diff(old, version.serial, version.soa, old.flat - version.flat, version.flat - old.flat)
            )
        return True

    def record_delta(self, index: ZoneIndex, deleted: Flat, added: Flat) -> None:
        """Follow an index changed in place, given what the change removed and added."""
        old = self.current
        assert old is not None
        version = Version(index.serial, index.soa_rrset(), (old.flat - deleted) | added)
        self.current = version
        if self.size and old.serial != version.serial:
            self._diffs.append(_Diff(old, version.serial, version.soa, deleted - added, added - deleted))

    def since(self, serial: int) -> list[_Diff] | None:
        """The differences from ``serial`` to the current version, oldest first; None when
        the journal does not reach back that far."""
        chain = list(self._diffs)
        for i, d in enumerate(chain):
            if d.old.serial == serial:
                steps = chain[i:]
                if all(a.new_serial == b.old.serial for a, b in itertools.pairwise(steps)):
                    return steps
                return None
        return None


def _rrsets(flat: Iterable[tuple[str, int, int, str]]) -> list[dns.rrset.RRset]:
    grouped: dict[tuple[str, int, int], list[str]] = {}
    for owner, rdtype, ttl, text in sorted(flat):
        grouped.setdefault((owner, rdtype, ttl), []).append(text)
    return [
        dns.rrset.from_text_list(owner, ttl, "IN", dns.rdatatype.RdataType.make(rdtype), texts)
        for (owner, rdtype, ttl), texts in grouped.items()
    ]


def _chunks(rrsets: Sequence[dns.rrset.RRset]) -> list[list[dns.rrset.RRset]]:
    """Split into message-sized runs (an RRset is split record by record when large)."""
    out: list[list[dns.rrset.RRset]] = [[]]
    size = 0
    for rrset in rrsets:
        for rd in rrset:
            one = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            one.update_ttl(rrset.ttl)
            one.add(rd)
            cost = len(rrset.name.to_wire() or b"") + 10 + len(rd.to_wire() or b"")
            if size + cost > _MESSAGE_BUDGET and out[-1]:
                out.append([])
                size = 0
            out[-1].append(one)
            size += cost
    return out


def _messages(query: dns.message.Message, records: list[dns.rrset.RRset]) -> list[bytes]:
    """The transfer response: ``records`` over one or more messages, each signed when the
    query was (the MAC of each message covers the ones before it, RFC 8945 section 5.3.1)."""
    wires: list[bytes] = []
    ctx = None
    for i, chunk in enumerate(_chunks(records)):
        r = dns.message.make_response(query)
        r.flags |= dns.flags.AA
        if i > 0:
            r.question = []
        r.answer = chunk
        signed = query.had_tsig
        wires.append(r.to_wire(max_size=65535, multi=signed, tsig_ctx=ctx))
        ctx = r.tsig_ctx if signed else None
    return wires


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> list[bytes]:
    r = dns.message.make_response(query)
    r.set_rcode(rcode)
    return [r.to_wire()]


def respond(
    journal: Journal, policy: TransferPolicy, wire: bytes, client_ip: str, *, origin: dns.name.Name, tcp: bool
) -> list[bytes] | None:
    """The messages answering a zone transfer request or a TSIG-signed query; None when
    ``wire`` is neither (the ordinary answering path handles it)."""
    keyring = policy.keyring
    try:
        query = dns.message.from_wire(wire, keyring=keyring or None)
    except dns.message.UnknownTSIGKey:
        return [_tsig_error(wire)]
    except dns.tsig.BadSignature:
        return [_tsig_error(wire)]
    except dns.tsig.BadTime:
        return [_tsig_error(wire)]
    except Exception:
        return None  # malformed: FORMERR from the ordinary path
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1 or query.flags & dns.flags.QR:
        return None
    q = query.question[0]
    if q.rdtype not in (_AXFR, _IXFR) and not query.had_tsig:
        return None
    current = journal.current
    if current is None or q.rdclass != dns.rdataclass.IN or q.name != origin:
        return _error(query, dns.rcode.REFUSED if q.name != origin else dns.rcode.SERVFAIL)
    if q.rdtype not in (_AXFR, _IXFR):
        # A signed ordinary query (a secondary checking our SOA with its key): answer it signed.
        r = dns.message.make_response(query)
        r.flags |= dns.flags.AA
        if q.rdtype == dns.rdatatype.SOA:
            r.answer = [current.soa]
        else:
            r.authority = [current.soa]
        return [r.to_wire()]
    signed_ok = query.had_tsig and query.keyname is not None
    if not (signed_ok or policy.address_allowed(client_ip)):
        log.warning(
            "zone transfer of %s refused for %s (no allowed key or address)",
            origin,
            client_ip,
            extra={"zone": str(origin), "client": client_ip},
        )
        return _error(query, dns.rcode.REFUSED)
    if q.rdtype == _AXFR:
        if not tcp:
            return _error(query, dns.rcode.FORMERR)  # RFC 5936 section 4.2: AXFR is TCP only
        log.info("AXFR of %s serial %d to %s", origin, current.serial, client_ip)
        return _messages(query, [current.soa, *_rrsets(current.flat), current.soa])
    their = _ixfr_serial(query)
    if (their is not None and their == current.serial) or not tcp:
        r = dns.message.make_response(query)
        r.flags |= dns.flags.AA
        r.answer = [current.soa]
        return [r.to_wire()]
    steps = journal.since(their) if their is not None else None
    if steps is None:
        log.info(
            "IXFR of %s from serial %s to %s: journal too short, sending the whole zone",
            origin,
            their,
            client_ip,
        )
        return _messages(query, [current.soa, *_rrsets(current.flat), current.soa])
    log.info(
        "IXFR of %s from serial %d to %d (%d versions) to %s",
        origin,
        their,
        current.serial,
        len(steps),
        client_ip,
    )
    records: list[dns.rrset.RRset] = [current.soa]
    for step in steps:
        records += [step.old.soa, *_rrsets(step.deleted), step.new_soa, *_rrsets(step.added)]
    records.append(current.soa)
    return _messages(query, records)


def _ixfr_serial(query: dns.message.Message) -> int | None:
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return int(rrset[0].serial)
    return None


def _tsig_error(wire: bytes) -> bytes:
    """An unsigned NOTAUTH reply, no sections, for a query whose TSIG we cannot verify
    (unknown key, bad MAC, clock skew; RFC 8945 section 5.2)."""
    return wire[:2] + bytes((0x80 | (wire[2] & 0x79), dns.rcode.NOTAUTH)) + b"\x00" * 8


async def notify(
    policy: TransferPolicy,
    origin: dns.name.Name,
    soa: dns.rrset.RRset,
    *,
    wait: float = 2.0,
    attempts: int = 3,
) -> dict[tuple[str, int], bool]:
    """Send NOTIFY to every configured secondary, waiting ``wait`` seconds per attempt and
    retrying unanswered ones; returns which answered."""
    keyring = policy.keyring
    results: dict[tuple[str, int], bool] = {}

    async def one(target: tuple[str, int]) -> None:
        host, port = target
        for _ in range(attempts):
            msg = dns.message.make_query(origin, dns.rdatatype.SOA)
            msg.flags = dns.flags.AA  # and no RD; the opcode lives in the same word, so set it after
            msg.set_opcode(dns.opcode.NOTIFY)
            msg.answer = [soa]
            if policy.notify_key is not None:
                name = dns.name.from_text(policy.notify_key + ".")
                msg.use_tsig(keyring, keyname=name, algorithm=keyring[name].algorithm)
            try:
                reply = await dns.asyncquery.udp(msg, host, port=port, timeout=wait, ignore_unexpected=True)
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("NOTIFY %s to %s:%d: %s", origin, host, port, exc)
                continue
            results[target] = reply.rcode() == dns.rcode.NOERROR
            log.info(
                "NOTIFY %s serial %d to %s:%d: %s",
                origin,
                soa[0].serial,
                host,
                port,
                dns.rcode.to_text(reply.rcode()),
            )
            if not results[target]:
                log.warning(
                    "secondary %s:%d answered NOTIFY for %s with %s",
                    host,
                    port,
                    origin,
                    dns.rcode.to_text(reply.rcode()),
                )
            return
        results[target] = False
        log.warning("secondary %s:%d did not answer NOTIFY for %s", host, port, origin)

    await asyncio.gather(*(one(t) for t in policy.notify))
    return results
