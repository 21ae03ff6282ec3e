"""The ACME state directory: the account key and the certificates ordered, kept across restarts.

Layout: ``account.key`` (PEM, 0600), ``certs/HOST.crt`` (chain) + ``certs/HOST.key`` (0600);
a wildcard ``*.example.com`` is kept as ``_wildcard.example.com``.
Files are written beside their final name and renamed, so a crash never leaves a half pair that
looks complete; the key is renamed in before the certificate (a new key with an old certificate
is refused by the catalogue, which keeps the last good pair, and the next order repairs it).
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ingressfed import durable
from ingressfed.acme.hosts import host_of_state_name, state_name
from ingressfed.tls.authority import key_pem
from ingressfed.tls.book import Offer
from ingressfed.tls.certificate import PrivateKey

__all__ = ["AcmeState"]

log = logging.getLogger(__name__)


def _write(path: Path, data: bytes, mode: int) -> None:
    # A key is never readable beyond ``mode`` (the temporary file starts 0o600), and a crash
    # leaves the old pair or the new one, with the rename itself on disk.
    durable.replace(path, data, mode=mode)


class AcmeState:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.certs = self.root / "certs"

    def _ensure(self) -> None:
        self.certs.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def account_key(self) -> ec.EllipticCurvePrivateKey:
        """The account key, created (P-256, mode 0600) on first use."""
        self._ensure()
        path = self.root / "account.key"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path}: the ACME account key must be an EC (P-256) key")
            return key
        key = ec.generate_private_key(ec.SECP256R1())
        _write(path, key_pem(key), 0o600)
        log.info("acme: created account key %s", path)
        return key

    def save(self, host: str, chain_pem: bytes, key: bytes) -> None:
        self._ensure()
        _write(self.certs / f"{state_name(host)}.key", key, 0o600)
        _write(self.certs / f"{state_name(host)}.crt", chain_pem, 0o644)

    def not_after(self, host: str) -> datetime.datetime | None:
        try:
            cert = x509.load_pem_x509_certificate((self.certs / f"{state_name(host)}.crt").read_bytes())
        except (OSError, ValueError):
            return None
        return cert.not_valid_after_utc

    def offers(self) -> list[Offer]:
        out: list[Offer] = []
        if not self.certs.is_dir():
            return out
        for crt in sorted(self.certs.glob("*.crt")):
            try:
                chain, key = crt.read_bytes(), crt.with_suffix(".key").read_bytes()
            except OSError as exc:
                log.error("acme: certificate %s cannot be read: %s", crt, exc)
                continue
            out.append(
                Offer(source=f"acme:{host_of_state_name(crt.stem)}", cert_pem=chain, key=PrivateKey(key))
            )
        return out
