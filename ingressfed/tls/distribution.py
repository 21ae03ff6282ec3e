"""Ingress TLS certificates from the controller to remote proxies: ``GET /v1/feed/certificates``.

A part of the controller's feed of its own (docs/tls.md): the DNS servers that follow ``/v1/feed`` never
receive private keys, and the routes/records feed can change its shape (deltas) without this one.
It is served only when a feed token is configured (a 403 otherwise: keys are never handed out
unauthenticated) and, under the ``/v1/feed`` prefix, only by the leader. A proxy long-polls it like
the feed (``after`` = the version it holds) and keeps the certificates in memory only: keys are never
written to a proxy's disk.

Wire form (strict decoding names the bad field)::

    {"format": "ingressfed.certificates/v1", "epoch": "...", "version": 3,
     "certificates": [{"source": "secret:us/shop/shop-tls", "subject": "ingress shop/web in us",
                       "hosts": ["shop.example.com"], "certificate": "-----BEGIN ...", "key": "..."}]}
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from ingressfed.errors import IngressfedError
from ingressfed.feed.longpoll import LongPollFollower, VersionedBody, answer, bearer_refusal, poll_query
from ingressfed.tls.book import Offer
from ingressfed.tls.certificate import PrivateKey

__all__ = [
    "CERTIFICATES_PATH",
    "CertificateBundle",
    "CertificateFollower",
    "CertificateFormatError",
    "add_certificate_routes",
    "decode_bundle",
    "encode_bundle",
]

log = logging.getLogger(__name__)

CERTIFICATES_PATH = "/v1/feed/certificates"
FORMAT = "ingressfed.certificates/v1"


class CertificateFormatError(IngressfedError, ValueError):
    """A certificates document does not have the wire form; the message names the field."""


def encode_bundle(epoch: str, version: int, offers: Sequence[Offer]) -> bytes:
    doc = {
        "format": FORMAT,
        "epoch": epoch,
        "version": version,
        "certificates": [
            {
                "source": o.source,
                "subject": o.subject,
                "hosts": list(o.hosts),
                "certificate": o.cert_pem.decode("ascii", errors="replace"),
                "key": o.key.reveal().decode("ascii", errors="replace"),
            }
            for o in offers
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise CertificateFormatError(f"{where}.{key}: expected a string")
    return value


def decode_bundle(data: bytes) -> tuple[str, int, list[Offer]]:
    """(epoch, version, offers). Messages name fields, never their values (they hold keys)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CertificateFormatError("certificates: not JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CertificateFormatError(f"format: expected {FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CertificateFormatError("version: expected a non-negative integer")
    epoch = _str(doc, "epoch", "certificates")
    items = doc.get("certificates")
    if not isinstance(items, list):
        raise CertificateFormatError("certificates: expected a list")
    offers: list[Offer] = []
    for i, item in enumerate(items):
        where = f"certificates[{i}]"
        if not isinstance(item, dict):
            raise CertificateFormatError(f"{where}: expected an object")
        hosts = item.get("hosts")
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise CertificateFormatError(f"{where}.hosts: expected a list of strings")
        offers.append(
            Offer(
                source=_str(item, "source", where),
                subject=_str(item, "subject", where),
                hosts=tuple(hosts),
                cert_pem=_str(item, "certificate", where).encode(),
                key=PrivateKey(_str(item, "key", where).encode()),
            )
        )
    return epoch, version, offers


class CertificateBundle(VersionedBody):
    """The controller's current Ingress TLS offers, versioned; ``wait_newer`` for long polls."""

    def __init__(self, *, epoch: str | None = None) -> None:
        super().__init__(b"", epoch=epoch)
        self.body = encode_bundle(self.epoch, 0, [])
        self._content: tuple[tuple[str, tuple[str, ...], bytes, PrivateKey], ...] = ()

    def set(self, offers: Sequence[Offer]) -> None:
        content = tuple(sorted((o.source, o.hosts, o.cert_pem, o.key) for o in offers))
        if content == self._content:
            return
        self._content = content
        version = self.publish(encode_bundle(self.epoch, self.version + 1, offers))
        log.info("certificates for remote proxies: version %d, %d certificates", version, len(offers))


def add_certificate_routes(app: web.Application, bundle: CertificateBundle, token: str | None) -> None:
    expected = token.encode() if token is not None else None

    async def certificates(request: web.Request) -> web.StreamResponse:
        if expected is None:
            return web.json_response(
                {
                    "error": "forbidden",
                    "detail": "set controller.feedTokenFile: keys are never served without it",
                },
                status=403,
            )
        if (refused := bearer_refusal(request, expected)) is not None:
            return refused
        query = poll_query(request)
        if isinstance(query, web.Response):
            return query
        after, timeout = query
        if not await bundle.wait_newer(after, request.query.get("epoch"), timeout):
            return web.Response(status=304)
        return answer(bundle)

    app.router.add_get(CERTIFICATES_PATH, certificates)

    async def release(_: web.Application) -> None:
        bundle.close()

    app.on_shutdown.append(release)


class CertificateFollower(LongPollFollower):
    """Follows a controller's ``/v1/feed/certificates`` and hands each new set to ``on_offers``."""

    path = CERTIFICATES_PATH
    what = "certificates"
    format_error = CertificateFormatError

    def __init__(
        self,
        url: str,
        *,
        token: str,
        on_offers: Callable[[list[Offer]], None],
        ssl_context: ssl.SSLContext | None = None,
        poll_timeout: float = 30.0,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            url, token=token, ssl_context=ssl_context, poll_timeout=poll_timeout, backoff_max=backoff_max
        )
        self.on_offers = on_offers

    def take(self, body: bytes) -> None:
        epoch, version, offers = decode_bundle(body)
        self.epoch, self.version = epoch, version
        self.on_offers(offers)
