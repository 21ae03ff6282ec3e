"""Parsing and checking certificate/key pairs: every refusal names its reason, never the key."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ingressfed.tls.authority import LocalAuthority
from ingressfed.tls.certificate import (
    CertificateError,
    PrivateKey,
    Problem,
    check,
    name_matches,
    parse_pair,
)

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def ca() -> LocalAuthority:
    return LocalAuthority(now=NOW)


def refused(cert_pem: bytes, key_pem: bytes) -> CertificateError:
    with pytest.raises(CertificateError) as info:
        parse_pair(cert_pem, key_pem)
    assert "-----BEGIN" not in str(info.value)
    if len(key_pem) > 80:
        assert key_pem.decode(errors="replace")[40:80] not in str(info.value)
    return info.value


def test_a_good_pair_parses_with_names_validity_and_fingerprint(ca: LocalAuthority) -> None:
    issued = ca.issue("Shop.Example.com", "*.shop.example.com", not_before=NOW)
    cert = parse_pair(issued.cert_pem, issued.key_pem)
    assert cert.names == ("shop.example.com", "*.shop.example.com")
    assert cert.not_before == NOW
    assert cert.not_after == NOW + datetime.timedelta(days=90)
    assert len(cert.fingerprint) == 64
    assert cert.chain_pem.count(b"BEGIN CERTIFICATE") == 2  # leaf and CA kept in order
    assert "ingressfed demo CA" in cert.issuer


def test_the_private_key_never_shows_in_repr_or_str(ca: LocalAuthority) -> None:
    issued = ca.issue("a.example.com")
    cert = parse_pair(issued.cert_pem, issued.key_pem)
    secret = issued.key_pem.decode()
    for text in (repr(cert), str(cert), repr(cert.key), f"{cert.key}"):
        assert "BEGIN" not in text
        assert secret[40:80] not in text
    assert cert.key.reveal() == issued.key_pem


def test_a_key_of_another_certificate_is_a_mismatch(ca: LocalAuthority) -> None:
    one, other = ca.issue("a.example.com"), ca.issue("a.example.com")
    assert refused(one.cert_pem, other.key_pem).problem is Problem.KEY_MISMATCH


@pytest.mark.parametrize(
    ("cert_pem", "problem"),
    [
        (b"", Problem.MISSING_DATA),
        (
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
            Problem.MALFORMED_CERTIFICATE,
        ),
        (b"hello", Problem.MALFORMED_CERTIFICATE),
    ],
)
def test_malformed_or_empty_certificates_are_named(
    ca: LocalAuthority, cert_pem: bytes, problem: Problem
) -> None:
    issued = ca.issue("a.example.com")
    assert refused(cert_pem, issued.key_pem).problem is problem


def test_malformed_encrypted_and_weak_keys_are_named(ca: LocalAuthority) -> None:
    issued = ca.issue("a.example.com")
    assert refused(
        issued.cert_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    ).problem is (Problem.MALFORMED_KEY)
    assert refused(issued.cert_pem, b"").problem is Problem.MISSING_DATA
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    error = refused(ca.issue("a.example.com", key=key).cert_pem, encrypted)
    assert error.problem is Problem.MALFORMED_KEY
    assert "passphrase" in error.detail
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak_pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert refused(issued.cert_pem, weak_pem).problem is Problem.WEAK_KEY


def test_a_certificate_without_dns_names_serves_nobody(ca: LocalAuthority) -> None:
    issued = ca.issue()
    assert refused(issued.cert_pem, issued.key_pem).problem is Problem.NO_DNS_NAMES


def test_validity_window_and_host_coverage_are_checked_at_now(ca: LocalAuthority) -> None:
    issued = ca.issue(
        "a.example.com", "*.b.example.com", not_before=NOW, not_after=NOW + datetime.timedelta(days=1)
    )
    cert = parse_pair(issued.cert_pem, issued.key_pem)
    assert check(cert, hosts=["a.example.com", "x.b.example.com"], now=NOW) is None
    early = check(cert, hosts=["a.example.com"], now=NOW - datetime.timedelta(seconds=1))
    assert early is not None and early.problem is Problem.NOT_YET_VALID
    late = check(cert, hosts=["a.example.com"], now=NOW + datetime.timedelta(days=1))
    assert late is not None and late.problem is Problem.EXPIRED
    uncovered = check(cert, hosts=["a.example.com", "c.example.com"], now=NOW)
    assert uncovered is not None and uncovered.problem is Problem.HOST_NOT_COVERED
    assert "c.example.com" in uncovered.detail


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("a.example.com", "A.Example.COM.", True),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "*.example.com", True),  # an Ingress wildcard host
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("a.example.com", "*.example.com", False),
        ("*.example.com", "*.b.example.com", False),
        ("*.example.com", "aexample.com", False),
    ],
)
def test_wildcards_cover_exactly_one_label(pattern: str, host: str, expected: bool) -> None:
    assert name_matches(pattern, host) is expected


def test_private_key_refuses_pickling() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(PrivateKey(b"secret"))
