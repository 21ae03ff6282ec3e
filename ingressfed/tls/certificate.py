"""One TLS certificate and its private key, parsed and checked without I/O or a clock.

``parse_pair`` turns PEM bytes into a ``Certificate`` or raises ``CertificateError`` naming one
``Problem``; ``check`` says whether a parsed certificate may serve a set of hosts at ``now``.
Private key bytes live only inside ``PrivateKey``, whose ``repr``/``str`` never show them, and no
error message built here quotes PEM input.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ingressfed.errors import IngressfedError

__all__ = [
    "Certificate",
    "CertificateError",
    "PrivateKey",
    "Problem",
    "check",
    "covers",
    "name_matches",
    "parse_pair",
]

_MIN_RSA_BITS = 2048


class Problem(enum.Enum):
    """Why a certificate cannot serve; the value is the short reason shown in Events and metrics."""

    MALFORMED_CERTIFICATE = "MalformedCertificate"
    MALFORMED_KEY = "MalformedKey"
    KEY_MISMATCH = "KeyMismatch"
    WEAK_KEY = "WeakKey"
    NO_DNS_NAMES = "NoDNSNames"
    NOT_YET_VALID = "NotYetValid"
    EXPIRED = "Expired"
    HOST_NOT_COVERED = "HostNotCovered"
    MISSING_DATA = "MissingData"


class CertificateError(IngressfedError):
    """A certificate/key pair was refused; ``problem`` is the reason, ``detail`` says what to fix."""

    def __init__(self, problem: Problem, detail: str) -> None:
        self.problem = problem
        self.detail = detail
        super().__init__(f"{problem.value}: {detail}")


class PrivateKey:
    """PEM bytes of a private key; printing it, logging it or putting it in an f-string shows nothing."""

    __slots__ = ("_pem",)

    def __init__(self, pem: bytes) -> None:
        self._pem = pem

    def reveal(self) -> bytes:
        """The PEM bytes, for handing to OpenSSL; never for logs, metrics or error messages."""
        return self._pem

    def __repr__(self) -> str:
        return "PrivateKey(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PrivateKey)
            and hashlib.sha256(self._pem).digest() == hashlib.sha256(other._pem).digest()
        )

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._pem).digest())

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("PrivateKey is not picklable")


@dataclass(frozen=True, slots=True)
class Certificate:
    """A parsed leaf certificate with its chain and key. ``names`` are its subjectAltName DNS names,
    lower-case, wildcards as written (``*.example.com``)."""

    names: tuple[str, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str  # SHA-256 of the leaf's DER, hex: names this certificate in logs and status
    issuer: str
    chain_pem: bytes = field(repr=False)  # leaf first, then intermediates
    key: PrivateKey = field(repr=False, compare=False)

    def covers(self, host: str) -> bool:
        return covers(self.names, host)


def name_matches(pattern: str, host: str) -> bool:
    """Does one certificate name cover ``host``? ``*.`` stands for exactly one whole left-most label
    (RFC 6125 6.4.3 as browsers apply it): ``*.example.com`` covers ``a.example.com`` and the Ingress
    host ``*.example.com``, but neither ``example.com`` nor ``a.b.example.com``."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    if host.startswith("*."):
        return False  # only the identical wildcard covers a wildcard host (handled above)
    first, dot, rest = host.partition(".")
    return bool(first) and bool(dot) and rest == pattern[2:]


def covers(names: Iterable[str], host: str) -> bool:
    return any(name_matches(n, host) for n in names)


def parse_pair(cert_pem: bytes, key_pem: bytes) -> Certificate:
    """Parse a PEM chain (leaf first) and an unencrypted PEM private key and check they belong
    together. Raises ``CertificateError``; its message never contains the input bytes."""
    if not cert_pem.strip() or not key_pem.strip():
        missing = "certificate" if not cert_pem.strip() else "private key"
        raise CertificateError(Problem.MISSING_DATA, f"the {missing} is empty")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise CertificateError(
            Problem.MALFORMED_CERTIFICATE, "the certificate is not valid PEM (expected BEGIN CERTIFICATE)"
        ) from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError as exc:
        raise CertificateError(
            Problem.MALFORMED_KEY, "the private key is encrypted; store it without a passphrase"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(
            Problem.MALFORMED_KEY, "the private key is not valid PEM (expected BEGIN PRIVATE KEY)"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        kind = "Ed448" if isinstance(key, ed448.Ed448PrivateKey) else type(key).__name__
        raise CertificateError(Problem.WEAK_KEY, f"{kind} keys are not served; use RSA >= 2048 or ECDSA")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < _MIN_RSA_BITS:
        raise CertificateError(
            Problem.WEAK_KEY, f"the RSA key has {key.key_size} bits; at least {_MIN_RSA_BITS} are needed"
        )
    leaf = chain[0]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise CertificateError(
            Problem.KEY_MISMATCH, "the private key does not belong to the first certificate of the chain"
        )
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(dict.fromkeys(n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)))
    except x509.ExtensionNotFound:
        names = ()
    if not names:
        # Browsers and Go ignore the subject CN; a certificate without SAN DNS names serves nobody.
        raise CertificateError(Problem.NO_DNS_NAMES, "the certificate has no DNS names in subjectAltName")
    return Certificate(
        names=names,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        issuer=leaf.issuer.rfc4514_string(),
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        key=PrivateKey(key_pem),
    )


def check(cert: Certificate, *, hosts: Iterable[str], now: datetime.datetime) -> CertificateError | None:
    """The first reason ``cert`` may not serve ``hosts`` at ``now``, or None."""
    if now < cert.not_before:
        return CertificateError(
            Problem.NOT_YET_VALID, f"the certificate is valid only from {cert.not_before.isoformat()}"
        )
    if now >= cert.not_after:
        return CertificateError(Problem.EXPIRED, f"the certificate expired at {cert.not_after.isoformat()}")
    uncovered = [h for h in hosts if not cert.covers(h)]
    if uncovered:
        return CertificateError(
            Problem.HOST_NOT_COVERED,
            f"the certificate names {', '.join(cert.names)} but not {', '.join(sorted(uncovered))}",
        )
    return None
