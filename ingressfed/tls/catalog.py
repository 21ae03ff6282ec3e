"""The live certificate catalogue: offers from every source in, one ``CertificateBook`` out.

Sources replace their own group of offers (``offer(group, offers)``); ``refresh(now)`` parses what is
new (parsing is cached by content), reconciles the book (``book.reconcile``) and hands a changed
book to the listeners (the TLS listener's ``SniContexts.swap``). Refusals are logged once per new
refusal, naming the source and the reason, and counted; key material never reaches a log line.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from ingressfed.tls.book import Candidate, CertificateBook, Offer, Refusal, reconcile
from ingressfed.tls.certificate import Certificate, CertificateError, parse_pair

__all__ = ["BookListener", "CertificateCatalog", "TlsMetrics"]

log = logging.getLogger(__name__)

BookListener = Callable[[CertificateBook], None]


class TlsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.registry = r
        self.refusals = Counter(
            "ingressfed_tls_certificate_refusals",
            "Certificates refused, by reason (MalformedCertificate, KeyMismatch, Expired, ...)",
            ["reason"],
            registry=r,
        )
        self.not_after = Gauge(
            "ingressfed_tls_certificate_not_after_seconds",
            "Expiry (Unix time) of the certificate serving each host",
            ["host"],
            registry=r,
        )
        self.stale = Gauge(
            "ingressfed_tls_certificate_stale",
            "1 when a host serves its last good certificate because the newest offer was refused",
            ["host"],
            registry=r,
        )
        self.unknown_names = Counter(
            "ingressfed_tls_unknown_server_names",
            "Handshakes refused because no certificate covers the SNI name (or none was sent)",
            registry=r,
        )


def _content_key(offer: Offer) -> bytes:
    return hashlib.sha256(offer.cert_pem + b"\0" + offer.key.reveal()).digest()


class CertificateCatalog:
    def __init__(self, *, metrics: TlsMetrics | None = None) -> None:
        self.metrics = metrics or TlsMetrics()
        self.book = CertificateBook()
        self.listeners: list[BookListener] = []
        self._groups: dict[str, tuple[Offer, ...]] = {}
        self._parsed: dict[bytes, Certificate | CertificateError] = {}
        self._default_group: str | None = None
        self._reported: set[tuple[str, str, tuple[str, ...]]] = set()

    def offer(self, group: str, offers: Iterable[Offer]) -> None:
        """Replace every offer of ``group`` (one source, e.g. ``"directory"``, ``"ingress"``)."""
        self._groups[group] = tuple(offers)

    def set_default(self, group: str | None) -> None:
        """Use the (single, valid) certificate of ``group`` for names nothing else covers."""
        self._default_group = group

    def candidates(self) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[bytes] = set()
        for group, offers in self._groups.items():
            if group == self._default_group:
                continue
            for offer in offers:
                key = _content_key(offer)
                seen.add(key)
                parsed = self._parsed.get(key)
                if parsed is None:
                    try:
                        parsed = parse_pair(offer.cert_pem, offer.key.reveal())
                    except CertificateError as exc:
                        parsed = exc
                    self._parsed[key] = parsed
                out.append(Candidate(offer, parsed))
        for key in [k for k in self._parsed if k not in seen]:
            del self._parsed[key]
        return out

    def _default(self) -> Certificate | None:
        offers: Sequence[Offer] = self._groups.get(self._default_group or "", ())
        if not offers:
            return None
        try:
            return parse_pair(offers[0].cert_pem, offers[0].key.reveal())
        except CertificateError as exc:
            log.error("default certificate %s refused: %s", offers[0].source, exc)
            return None

    def refresh(self, now: datetime.datetime) -> CertificateBook:
        book = reconcile(self.book, self.candidates(), now=now, default=self._default())
        self._report(book.refused)
        changed = book != self.book
        previous_hosts = set(self.book.entries)
        self.book = book
        if changed:
            for host in previous_hosts - set(book.entries):
                self.metrics.not_after.remove(host)
                self.metrics.stale.remove(host)
            for host, served in book.entries.items():
                self.metrics.not_after.labels(host).set(served.certificate.not_after.timestamp())
                self.metrics.stale.labels(host).set(1 if served.stale else 0)
            log.info(
                "certificate book: %d hosts (%s)",
                len(book.entries),
                ", ".join(f"{h}={s.certificate.fingerprint[:12]}" for h, s in book.entries.items()),
            )
            for listener in self.listeners:
                listener(book)
        return book

    def _report(self, refusals: Sequence[Refusal]) -> None:
        current = {(r.source, r.reason, r.hosts) for r in refusals}
        for refusal in refusals:
            key = (refusal.source, refusal.reason, refusal.hosts)
            if key in self._reported:
                continue
            self.metrics.refusals.labels(refusal.reason).inc()
            log.warning(
                "%s",
                refusal.message(),
                extra={"source": refusal.source, "reason": refusal.reason, "subject": refusal.subject},
            )
        self._reported = current
