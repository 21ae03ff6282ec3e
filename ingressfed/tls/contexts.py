"""Server-side ``ssl.SSLContext``s chosen per connection by SNI from the current certificate book.

One base context accepts every handshake; its ``sni_callback`` looks the server name up in the book
and moves the connection to that certificate's context (built once per certificate fingerprint).
Swapping the book changes what new handshakes get; connections already open keep the context they
were given, so a rotation drops nothing. Session tickets and the session cache belong to the base
context (OpenSSL keeps the initial context as the session context), so resumption survives both
the per-name switch and rotations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from ingressfed.tls.book import CertificateBook
from ingressfed.tls.certificate import Certificate

__all__ = ["CIPHERS_TLS12", "SniContexts", "load_certificate", "single_certificate_context"]

log = logging.getLogger(__name__)

# Forward-secret AEAD suites only for TLS 1.2 (Mozilla "intermediate" minus the DHE ones); TLS 1.3
# suites are OpenSSL's defaults, all of which are modern.
CIPHERS_TLS12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


class _DirectSSLObject(ssl.SSLObject):
    """``ssl.SSLObject`` whose hot methods are the C object's own.

    The stdlib's ``SSLObject.read``/``write``/``pending`` are Python functions that only forward to
    the ``_ssl`` object; uvloop's TLS transport binds them once per connection and calls them a few
    times per record, so each TLS request paid several interpreted frames (about 5% of an HTTPS
    keep-alive request's CPU here). Binding the C methods on the instance skips those frames and
    changes nothing else: same arguments (uvloop passes them by position), same results, same
    exceptions. Anything the stdlib does not forward this way keeps its own method."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> _DirectSSLObject:
        self = cast(_DirectSSLObject, super()._create(*args, **kwargs))  # type: ignore[misc]
        inner = getattr(self, "_sslobj", None)
        if inner is not None:
            for name in _DIRECT:
                method = getattr(inner, name, None)
                if method is not None:
                    setattr(self, name, method)
        return self


# The SSLObject methods that are one-line forwards to ``_sslobj`` with the same signature.
_DIRECT = ("read", "write", "pending", "do_handshake")


def _server_context(alpn: Sequence[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.sslobject_class = _DirectSSLObject
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers(CIPHERS_TLS12)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


@contextlib.contextmanager
def _pem_paths(chain: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """Paths OpenSSL can read the PEMs from. On Linux anonymous memory files (never on disk);
    elsewhere files in a private temporary directory, removed at once."""
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create("ingressfed-cert", os.MFD_CLOEXEC), os.memfd_create("ingressfed-key")]
        try:
            for fd, data in zip(fds, (chain, key), strict=True):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ingressfed-tls-") as tmp:  # mode 0700
        cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        for path, data in ((cert_path, chain), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        yield str(cert_path), str(key_path)


def load_certificate(ctx: ssl.SSLContext, cert: Certificate) -> None:
    with _pem_paths(cert.chain_pem, cert.key.reveal()) as (cert_path, key_path):
        ctx.load_cert_chain(cert_path, key_path)


def single_certificate_context(cert: Certificate, *, alpn: Sequence[str] = ("http/1.1",)) -> ssl.SSLContext:
    """A server context with one certificate (a listener that is not per-host: the controller's),
    with the same protocol floor and suites as the proxy's HTTPS listener."""
    ctx = _server_context(alpn)
    load_certificate(ctx, cert)
    return ctx


class SniContexts:
    """The TLS side of a listener: ``context`` goes to ``create_server(ssl=...)``."""

    def __init__(
        self,
        *,
        alpn: Sequence[str] = ("http/1.1",),
        on_unknown_name: Callable[[str | None], None] | None = None,
    ) -> None:
        self._alpn = tuple(alpn)
        self._book = CertificateBook()
        self._by_fingerprint: dict[str, ssl.SSLContext] = {}
        self._on_unknown = on_unknown_name
        self.context = _server_context(self._alpn)
        self.context.sni_callback = self._select

    @property
    def book(self) -> CertificateBook:
        return self._book

    def swap(self, book: CertificateBook) -> None:
        """Serve ``book`` to new handshakes. A certificate OpenSSL refuses is skipped (logged by host
        and fingerprint); the rest still apply."""
        wanted = {s.certificate.fingerprint: s.certificate for s in book.entries.values()}
        if book.default is not None:
            wanted[book.default.fingerprint] = book.default
        contexts: dict[str, ssl.SSLContext] = {}
        for fingerprint, cert in wanted.items():
            ctx = self._by_fingerprint.get(fingerprint)
            if ctx is None:
                ctx = _server_context(self._alpn)
                try:
                    load_certificate(ctx, cert)
                except ssl.SSLError as exc:
                    log.error(
                        "certificate %s for %s refused by OpenSSL: %s",
                        fingerprint[:16],
                        ", ".join(cert.names),
                        exc.reason or type(exc).__name__,
                    )
                    continue
            contexts[fingerprint] = ctx
        self._by_fingerprint = contexts
        self._book = book

    def _select(
        self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        cert = self._book.select(server_name)
        ctx = self._by_fingerprint.get(cert.fingerprint) if cert is not None else None
        if ctx is None:
            if self._on_unknown is not None:
                self._on_unknown(server_name)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = ctx
        return None
