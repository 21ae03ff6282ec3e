"""``ingressfed get certificates``: every host's certificate as this controller sees it.

Items come from the in-process proxy's catalogue when there is one (directory, Ingress and ACME
certificates alike), else from a catalogue the controller keeps of the Ingress TLS and ACME offers
it hands to remote proxies; the same pure rules decide both. Hosts a source manages that have no
certificate yet (``waiting``: ACME hosts being ordered) are listed too. Items carry no key material.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

from ingressfed.tls.book import Offer, statuses
from ingressfed.tls.catalog import CertificateCatalog

__all__ = ["EXPIRING_WITHIN", "CertificateStatus"]

EXPIRING_WITHIN = datetime.timedelta(days=30)  # the renewal window of ACME clients


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class CertificateStatus:
    def __init__(
        self,
        *,
        catalog: CertificateCatalog | None = None,
        touch: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        """``catalog``: the in-process proxy's (read only here); None keeps one of our own."""
        self._own = catalog is None
        self.catalog = catalog or CertificateCatalog()
        self._touch = touch
        self._clock = clock
        # Each returns (host, source, status) for hosts it manages that have no certificate yet.
        self.waiting: list[Callable[[], list[tuple[str, str, str]]]] = []

    def offer(self, offers: Sequence[Offer], group: str = "ingress") -> None:
        if self._own:
            self.catalog.offer(group, offers)
            self.catalog.refresh(self._clock())
        self._touch()

    def items(self) -> list[dict[str, Any]]:
        now = self._clock()
        items = [
            {
                "host": s.host,
                "source": s.source,
                "notAfter": s.not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if s.not_after else None,
                "status": s.status,
                "fingerprint": s.fingerprint,
            }
            for s in statuses(self.catalog.book, now=now, expiring_within=EXPIRING_WITHIN)
        ]
        served = {item["host"] for item in items}
        for waiting in self.waiting:
            for host, source, status in waiting():
                if host not in served:
                    items.append(
                        {
                            "host": host,
                            "source": source,
                            "notAfter": None,
                            "status": status,
                            "fingerprint": "",
                        }
                    )
        return sorted(items, key=lambda item: (item["host"], item["source"]))
