from __future__ import annotations

import pytest

from geo.clientip import TrustedProxies, client_address, parse_address

TRUSTED = TrustedProxies(["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"])


def addr(
    peer: str, *, xff: str | None = None, fwd: str | None = None, trusted: TrustedProxies = TRUSTED
) -> str:
    assert xff is None or fwd is None, "one header per call"
    if fwd is not None:
        return client_address(peer, chain=fwd, header="Forwarded", trusted=trusted)
    return client_address(peer, chain=xff, header="X-Forwarded-For", trusted=trusted)


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # untrusted peer: headers ignored whatever they say
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("2001:db8::9", "198.51.100.1", "2001:db8::9"),
        # trusted peer: rightmost untrusted hop wins, client-written entries to its left ignored
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6,198.51.100.1,10.0.0.7,10.1.2.3", "198.51.100.1"),
        # all hops trusted: the leftmost is the client
        ("10.0.0.1", "10.9.9.9, 10.0.0.7", "10.9.9.9"),
        # malformed entry stops the walk; the last good address is used
        ("10.0.0.1", "198.51.100.1, garbage", "10.0.0.1"),
        ("10.0.0.1", "garbage, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.1", "198.51.100.1, , 10.0.0.7", "10.0.0.7"),
        ("10.0.0.1", "unknown", "10.0.0.1"),
        # ports and IPv6 forms
        ("10.0.0.1", "198.51.100.1:4711", "198.51.100.1"),
        ("10.0.0.1", "[2001:db8::17]:4711", "2001:db8::17"),
        ("10.0.0.1", "2001:db8::17", "2001:db8::17"),
        ("10.0.0.1", "[2001:db8::17]", "2001:db8::17"),
        ("fd00::1", "2001:db8::17, fd00::2", "2001:db8::17"),
        # IPv4-mapped IPv6 peer counts as its IPv4 address
        ("::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("::ffff:203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # no header: the peer
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
    ],
)
def test_x_forwarded_for(peer: str, xff: str | None, expected: str) -> None:
    assert addr(peer, xff=xff) == expected


@pytest.mark.parametrize(
    ("fwd", "expected"),
    [
        ("for=198.51.100.1", "198.51.100.1"),
        ("for=198.51.100.1;proto=https;by=10.0.0.1", "198.51.100.1"),
        ("For=6.6.6.6, for=198.51.100.1", "198.51.100.1"),
        ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ('for="198.51.100.1:80", for=10.0.0.7', "198.51.100.1"),
        ("for=198.51.100.1, for=unknown", "10.0.0.1"),
        ("for=198.51.100.1, for=_hidden", "10.0.0.1"),
        ("for=198.51.100.1, proto=http", "10.0.0.1"),  # element without for=
        ('for=6.6.6.6;proto="a,b", for=198.51.100.1', "198.51.100.1"),  # comma inside quotes
    ],
)
def test_forwarded(fwd: str, expected: str) -> None:
    assert addr("10.0.0.1", fwd=fwd) == expected


def test_only_the_configured_header_is_read() -> None:
    # The case from issue 11: a trusted LB appends to X-Forwarded-For; the client adds Forwarded.
    xff, fwd = "8.8.8.8, 81.2.69.160", "for=1.0.16.1"
    by_xff = client_address("10.0.0.1", chain=xff, header="X-Forwarded-For", trusted=TRUSTED)
    by_fwd = client_address("10.0.0.1", chain=fwd, header="Forwarded", trusted=TRUSTED)
    assert (by_xff, by_fwd) == ("81.2.69.160", "1.0.16.1")


def test_forwarded_ignored_from_untrusted_peer() -> None:
    assert addr("203.0.113.9", fwd="for=198.51.100.1") == "203.0.113.9"


def test_nothing_trusted() -> None:
    assert addr("127.0.0.1", xff="198.51.100.1", trusted=TrustedProxies([])) == "127.0.0.1"
    assert not TrustedProxies([])


def test_trusts() -> None:
    assert TRUSTED.trusts("10.200.0.1")
    assert TRUSTED.trusts("::ffff:10.0.0.1")
    assert TRUSTED.trusts("fd12::1")
    assert not TRUSTED.trusts("11.0.0.1")
    assert not TRUSTED.trusts("not-an-ip")


def test_bad_cidr_names_it() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        TrustedProxies(["10.0.0.0/33"])


@pytest.mark.parametrize("text", ["", "1.2.3", "[::1", "[::1]x", "1.2.3.4:http", "::1]:80", "1.2.3.4:"])
def test_parse_address_rejects(text: str) -> None:
    assert parse_address(text) is None
