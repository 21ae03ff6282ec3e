"""The proxy's HTTPS listener: TLS with SNI certificates, then HTTP/1.1 or HTTP/2 by ALPN.

``HttpsListener`` owns what HTTPS adds to a proxy: the certificate catalogue (fed by the
certificate directory here, and by the controller's feed or ACME through ``catalog.offer``), the
SNI contexts it swaps in on every change, and the TLS server. After the handshake a connection
becomes an ``http1.ClientConnection`` (scheme https, HSTS) or an ``http2.H2ClientConnection``.
It also decides the plain listener's redirects to HTTPS (``redirect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from prometheus_client import CollectorRegistry

from ingressfed.proxy.engine import Engine
from ingressfed.proxy.http1 import ClientConnection
from ingressfed.proxy.http2 import H2ClientConnection, H2Metrics
from ingressfed.proxy.request import Forward, RequestHead
from ingressfed.proxy.table import normalize_host
from ingressfed.tls.book import CertificateBook, Offer
from ingressfed.tls.catalog import CertificateCatalog, TlsMetrics
from ingressfed.tls.contexts import SniContexts
from ingressfed.tls.directory import DirectorySource
from ingressfed.tls.settings import TlsSettings

__all__ = ["HttpsListener"]

log = logging.getLogger(__name__)

_REFRESH_SECONDS = 60.0  # re-check expiry even when no source changed


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class _Negotiated(asyncio.Protocol):
    """Placeholder protocol until the handshake is done; then hands the transport to the codec the
    client chose by ALPN."""

    def __init__(self, listener: HttpsListener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        codec = self.listener.codec(alpn)
        transport.set_protocol(codec)
        codec.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        return None


class HttpsListener:
    def __init__(
        self,
        engine: Engine,
        settings: TlsSettings,
        *,
        registry: CollectorRegistry,
        clock: Callable[[], datetime.datetime] = _utcnow,
        reuse_port: bool = False,
    ) -> None:
        """``reuse_port``: SO_REUSEPORT, so that worker processes accept on the same port."""
        self.engine = engine
        self.reuse_port = reuse_port
        # A worker process serves its primary's book as it is sent (``adopt``), with no sources.
        self.adopted = False
        self.settings = settings
        self._clock = clock
        self.tls_metrics = TlsMetrics(registry)
        self.h2_metrics = H2Metrics(registry)
        self.catalog = CertificateCatalog(metrics=self.tls_metrics)
        alpn = ("h2", "http/1.1") if settings.http2.enabled else ("http/1.1",)
        self.contexts = SniContexts(alpn=alpn, on_unknown_name=self._unknown_name)
        self.catalog.listeners.append(self.contexts.swap)
        self.source: DirectorySource | None = None
        if settings.certificate_dir:
            self.source = DirectorySource(
                settings.certificate_dir,
                self.catalog,
                default_name=settings.default_certificate,
                clock=clock,
            )
        self._hsts = settings.hsts.header()
        if settings.http2.enabled:
            # Each stream of an HTTP/2 connection holds its own HTTP/1.1 backend connection, so one
            # client can keep max_concurrent_streams of them busy at once: an idle cap below the
            # streams in flight closes the surplus after each burst and the next one connects again
            # (a third of the requests under h2load -c16 -m16 with the default cap of 128).
            pool = engine.pool
            pool.max_idle = max(pool.max_idle, 4 * settings.http2.max_concurrent_streams)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = settings.port

    def offer(self, group: str, offers: list[Offer]) -> None:
        """Certificates from another source (``"ingress"``: Ingress TLS Secrets, the feed): they
        replace that group's previous offers and apply to new handshakes at once."""
        self.catalog.offer(group, offers)
        self.catalog.refresh(self._clock())

    def adopt(self, book: CertificateBook) -> None:
        """Serve ``book`` exactly (a worker process: the primary's catalogue decided it)."""
        self.adopted = True
        self.catalog.book = book
        self.contexts.swap(book)

    def _unknown_name(self, name: str | None) -> None:
        self.tls_metrics.unknown_names.inc()
        log.info("TLS handshake refused: no certificate for server name %r", name)

    def codec(self, alpn: str | None) -> asyncio.Protocol:
        if alpn == "h2":
            return H2ClientConnection(
                self.engine, self.settings.http2, metrics=self.h2_metrics, response_headers=self._hsts
            )
        return ClientConnection(self.engine, scheme=b"https", response_headers=self._hsts)

    async def __aenter__(self) -> HttpsListener:
        if self.source is not None:
            self.source.load()
            if self.settings.default_certificate:
                self.catalog.set_default(DirectorySource.DEFAULT_GROUP)
        if not self.adopted:  # an adopted book is served as it is; this catalogue has no offers
            self.catalog.refresh(self._clock())
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Negotiated(self),
            self.settings.host,
            self.settings.port,
            ssl=self.contexts.context,
            ssl_handshake_timeout=self.settings.handshake_timeout,
            reuse_address=True,
            reuse_port=self.reuse_port,
            backlog=1024,
        )
        # uvloop's ``sockets`` is a list where typeshed says tuple: compiled (mypyc) code checks
        # declared types, so it is read untyped.
        self.port = int(cast(Any, self._server).sockets[0].getsockname()[1])
        self._tasks.append(loop.create_task(self._refresh()))
        log.info(
            "HTTPS listening on %s:%s (%d certificates)",
            self.settings.host,
            self.port,
            len(self.catalog.book.entries),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop accepting and the certificate refresh; open connections belong to the registry."""
        self.stop_accepting()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _refresh(self) -> None:
        source = self.source
        interval = source.interval if source is not None else _REFRESH_SECONDS
        while True:
            await asyncio.sleep(interval)
            if self.adopted:
                continue  # the primary refreshes; an empty catalogue here must not unserve its book
            try:
                if source is not None:
                    source.load()
                self.catalog.refresh(self._clock())
            except Exception:
                # One bad reload must not end certificate updates for the life of the proxy.
                log.exception("certificate refresh failed")

    # --- the plain listener's redirect to HTTPS ------------------------------------------------
    def redirect(self, head: RequestHead, forward: Forward) -> bytes | None:
        """308 target for a plain request whose host has a certificate here, when redirects are on
        for its route (the Ingress's ssl-redirect annotation, else ``proxy.tls.redirectHttp``)."""
        wanted = forward.entry.https_redirect
        if not (self.settings.redirect_http if wanted is None else wanted):
            return None
        host = _host_of(head)
        if host is None:
            return None
        name = normalize_host(host.decode("latin-1"))
        if not self.catalog.book.covers(name):
            return None
        port = self.settings.redirect_port
        authority = name.encode() if port == 443 else b"%b:%d" % (name.encode(), port)
        target = head.target if head.target.startswith(b"/") else _path_of(head.target)
        return b"https://" + authority + target


def _host_of(head: RequestHead) -> bytes | None:
    target = head.target
    if not target.startswith(b"/"):
        rest = target.split(b"//", 1)[-1]
        return rest.split(b"/", 1)[0].split(b"?", 1)[0]
    for name, value in head.headers:
        if name.lower() == b"host":
            return value
    return None


def _path_of(absolute: bytes) -> bytes:
    rest = absolute.split(b"//", 1)[-1]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return path if path.startswith(b"/") else b"/" + path
