"""The certificate book: which certificate serves which host, decided from offers without I/O.

Sources (a certificate directory, Ingress TLS Secrets, ACME) make ``Offer``s; the catalogue parses
them (``Candidate``) and ``reconcile`` turns the previous book plus the candidates into the next
book and the refusals to report. Rules:

- A host is served by the valid candidate with the latest ``not_after`` (ties: source name), so
  replicas of one Secret in several clusters agree and a renewed certificate wins at once.
- A host whose every candidate is refused (a pair without host list: the hosts its source served
  before) keeps the certificate it had (its "last good") while that
  is still within its validity; a refusal never removes a working certificate.
- A host no source offers any more is dropped; the default certificate (if any) then answers it.
- ``select`` picks exact names before ``*.`` wildcards and never returns a certificate for a name it
  does not cover.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ingressfed.tls.certificate import Certificate, CertificateError, PrivateKey, check, name_matches

__all__ = [
    "Candidate",
    "CertificateBook",
    "HostStatus",
    "Offer",
    "Refusal",
    "Served",
    "normalize_host",
    "reconcile",
    "statuses",
]

EMPTY: Mapping[str, Served] = {}


def normalize_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Offer:
    """A certificate a source proposes. ``hosts`` empty: it serves the names it carries (directory
    source, ACME); otherwise exactly those hosts (an Ingress ``spec.tls`` entry). ``subject`` names
    what a refusal should be reported on (e.g. ``ingress default/shop in cluster-us``)."""

    source: str  # e.g. "secret:cluster-us/default/shop-tls", "file:/etc/ingressfed/certs/shop"
    cert_pem: bytes = field(repr=False)
    key: PrivateKey = field(repr=False)
    hosts: tuple[str, ...] = ()
    subject: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    offer: Offer
    parsed: Certificate | CertificateError

    @property
    def hosts(self) -> tuple[str, ...]:
        if self.offer.hosts:
            return tuple(normalize_host(h) for h in self.offer.hosts)
        return self.parsed.names if isinstance(self.parsed, Certificate) else ()


@dataclass(frozen=True, slots=True)
class Served:
    host: str
    certificate: Certificate
    source: str
    stale: CertificateError | None = None  # the latest offer was refused; this is the last good one


@dataclass(frozen=True, slots=True)
class Refusal:
    source: str
    subject: str
    hosts: tuple[str, ...]
    error: CertificateError

    @property
    def reason(self) -> str:
        return self.error.problem.value

    def message(self) -> str:
        hosts = ", ".join(self.hosts) if self.hosts else "its hosts"
        return f"{self.source}: certificate for {hosts} refused: {self.error}"


@dataclass(frozen=True, slots=True)
class CertificateBook:
    entries: Mapping[str, Served] = field(default_factory=dict)
    refused: tuple[Refusal, ...] = ()  # the refusals of the latest reconcile (for status)
    default: Certificate | None = None

    def select(self, server_name: str | None) -> Certificate | None:
        """The certificate for an SNI name: exact entry, else the ``*.`` entry of its parent, else
        the default. None: refuse the handshake."""
        if server_name:
            name = normalize_host(server_name)
            served = self.entries.get(name)
            if served is None:
                _, dot, parent = name.partition(".")
                if dot and parent:
                    served = self.entries.get("*." + parent)
            if served is not None and name_matches_any(served.certificate, name):
                return served.certificate
        return self.default

    def covers(self, host: str) -> bool:
        """Does the book hold a certificate of its own (not the default) for ``host``?"""
        name = normalize_host(host)
        if name in self.entries:
            return True
        _, dot, parent = name.partition(".")
        return bool(dot) and ("*." + parent) in self.entries


def name_matches_any(cert: Certificate, host: str) -> bool:
    return any(name_matches(n, host) for n in cert.names)


def reconcile(
    previous: CertificateBook,
    candidates: Iterable[Candidate],
    *,
    now: datetime.datetime,
    default: Certificate | None = None,
) -> CertificateBook:
    """The next book from the previous one and every candidate currently offered (see module doc)."""
    best: dict[str, tuple[Certificate, str]] = {}
    refused_for: dict[str, CertificateError] = {}
    refusals: list[Refusal] = []
    for candidate in sorted(candidates, key=lambda c: c.offer.source):
        offer = candidate.offer
        hosts = candidate.hosts
        parsed = candidate.parsed
        if not hosts and isinstance(parsed, CertificateError):
            # A refused pair that names no hosts itself (a directory file) stands for the hosts
            # its source served until now, so they keep their last good certificate.
            hosts = tuple(h for h, s in previous.entries.items() if s.source == offer.source)
        if isinstance(parsed, CertificateError):
            refusals.append(Refusal(offer.source, offer.subject, hosts, parsed))
            for host in hosts:
                refused_for.setdefault(host, parsed)
            continue
        bad_hosts: list[str] = []
        for host in hosts:
            problem = check(parsed, hosts=(host,), now=now)
            if problem is not None:
                refused_for.setdefault(host, problem)
                bad_hosts.append(host)
                continue
            current = best.get(host)
            if current is None or parsed.not_after > current[0].not_after:
                best[host] = (parsed, offer.source)
        if bad_hosts:
            problem = check(parsed, hosts=bad_hosts, now=now)
            assert problem is not None
            refusals.append(Refusal(offer.source, offer.subject, tuple(bad_hosts), problem))
    entries: dict[str, Served] = {}
    for host, (cert, source) in best.items():
        entries[host] = Served(host=host, certificate=cert, source=source)
    for host, error in refused_for.items():
        if host in entries:
            continue
        last = previous.entries.get(host)
        if last is not None and check(last.certificate, hosts=(host,), now=now) is None:
            entries[host] = Served(host=host, certificate=last.certificate, source=last.source, stale=error)
    if default is not None and check(default, hosts=(), now=now) is not None:
        default = None
    return CertificateBook(entries=dict(sorted(entries.items())), refused=tuple(refusals), default=default)


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One line of ``ingressfed get certificates``."""

    host: str
    source: str
    not_after: datetime.datetime | None
    status: str  # Ready | ExpiringSoon | Stale:<reason> | Refused:<reason>
    fingerprint: str = ""


def statuses(
    book: CertificateBook, *, now: datetime.datetime, expiring_within: datetime.timedelta
) -> list[HostStatus]:
    out: list[HostStatus] = []
    for host, served in book.entries.items():
        cert = served.certificate
        if served.stale is not None:
            status = f"Stale:{served.stale.problem.value}"
        elif cert.not_after - now <= expiring_within:
            status = "ExpiringSoon"
        else:
            status = "Ready"
        out.append(HostStatus(host, served.source, cert.not_after, status, cert.fingerprint))
    for refusal in book.refused:
        for host in refusal.hosts or ("",):
            if host and host in book.entries:
                continue
            out.append(HostStatus(host or "-", refusal.source, None, f"Refused:{refusal.reason}"))
    return sorted(out, key=lambda s: (s.host, s.source))
