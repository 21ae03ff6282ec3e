"""The certificate book: best candidate per host, last good kept on refusal, exact before wildcard."""

from __future__ import annotations

import datetime

import pytest

from ingressfed.tls.authority import Issued, LocalAuthority
from ingressfed.tls.book import Candidate, CertificateBook, Offer, reconcile, statuses
from ingressfed.tls.certificate import CertificateError, PrivateKey, Problem, parse_pair

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> LocalAuthority:
    return LocalAuthority(now=NOW - 10 * DAY)


def issue(ca: LocalAuthority, *names: str, **kw: datetime.datetime) -> Issued:
    kw.setdefault("not_before", NOW - DAY)
    return ca.issue(*names, **kw)


def candidate(issued: Issued, source: str, *hosts: str) -> Candidate:
    try:
        parsed: object = parse_pair(issued.cert_pem, issued.key_pem)
    except CertificateError as exc:
        parsed = exc
    offer = Offer(source=source, cert_pem=issued.cert_pem, key=PrivateKey(issued.key_pem), hosts=hosts)
    return Candidate(offer, parsed)  # type: ignore[arg-type]


def test_exact_names_win_over_wildcards_and_unknown_names_get_the_default_or_none(ca: LocalAuthority) -> None:
    exact = candidate(issue(ca, "a.example.com"), "file a")
    wild = candidate(issue(ca, "*.example.com"), "file wild")
    book = reconcile(CertificateBook(), [wild, exact], now=NOW)
    assert book.select("a.example.com") == exact.parsed
    assert book.select("B.example.com") == wild.parsed
    assert book.select("x.b.example.com") is None
    assert book.select("example.com") is None
    assert book.select(None) is None
    fallback = issue(ca, "default.invalid")
    default = parse_pair(fallback.cert_pem, fallback.key_pem)
    with_default = reconcile(CertificateBook(), [exact], now=NOW, default=default)
    assert with_default.select("other.org") == default
    assert with_default.select("a.example.com") == exact.parsed


def test_an_ingress_entry_never_serves_a_certificate_for_a_name_it_does_not_cover(ca: LocalAuthority) -> None:
    # A tenant lists a host its certificate does not carry: refused, never served for that host.
    tenant = candidate(
        issue(ca, "mine.example.com"), "secret us/t1/tls", "mine.example.com", "yours.example.com"
    )
    book = reconcile(CertificateBook(), [tenant], now=NOW)
    assert set(book.entries) == {"mine.example.com"}
    assert book.select("yours.example.com") is None
    [refusal] = book.refused
    assert refusal.hosts == ("yours.example.com",)
    assert refusal.error.problem is Problem.HOST_NOT_COVERED


def test_a_refused_update_keeps_the_last_good_certificate(ca: LocalAuthority) -> None:
    good = candidate(issue(ca, "a.example.com"), "secret us/default/a", "a.example.com")
    book = reconcile(CertificateBook(), [good], now=NOW)
    one, other = issue(ca, "a.example.com"), issue(ca, "a.example.com")
    mismatched = candidate(Issued(one.cert_pem, other.key_pem), "secret us/default/a", "a.example.com")
    after = reconcile(book, [mismatched], now=NOW)
    served = after.entries["a.example.com"]
    assert served.certificate == good.parsed
    assert served.stale is not None and served.stale.problem is Problem.KEY_MISMATCH
    [line] = statuses(after, now=NOW, expiring_within=30 * DAY)
    assert (line.host, line.status) == ("a.example.com", "Stale:KeyMismatch")
    # Idempotent: the same inputs give the same book.
    assert reconcile(after, [mismatched], now=NOW) == after


def test_an_expired_last_good_certificate_is_not_kept(ca: LocalAuthority) -> None:
    short = candidate(
        issue(ca, "a.example.com", not_before=NOW - DAY, not_after=NOW + DAY), "s", "a.example.com"
    )
    book = reconcile(CertificateBook(), [short], now=NOW)
    broken = candidate(Issued(b"garbage", b"garbage"), "s", "a.example.com")
    later = reconcile(book, [broken], now=NOW + 2 * DAY)
    assert later.entries == {}
    assert [s.status for s in statuses(later, now=NOW, expiring_within=DAY)] == [
        "Refused:MalformedCertificate"
    ]


def test_the_latest_expiry_wins_and_removed_offers_drop_their_hosts(ca: LocalAuthority) -> None:
    old = candidate(
        issue(ca, "a.example.com", not_after=NOW + 5 * DAY), "secret eu/default/a", "a.example.com"
    )
    new = candidate(
        issue(ca, "a.example.com", not_after=NOW + 80 * DAY), "secret us/default/a", "a.example.com"
    )
    book = reconcile(CertificateBook(), [old, new], now=NOW)
    assert book.entries["a.example.com"].certificate == new.parsed
    assert reconcile(CertificateBook(), [new, old], now=NOW) == book
    assert reconcile(book, [], now=NOW).entries == {}
    [line] = statuses(reconcile(CertificateBook(), [old], now=NOW), now=NOW, expiring_within=30 * DAY)
    assert line.status == "ExpiringSoon"


def test_not_yet_valid_and_expired_offers_are_refused(ca: LocalAuthority) -> None:
    future = candidate(issue(ca, "f.example.com", not_before=NOW + DAY), "s1", "f.example.com")
    past = candidate(
        issue(ca, "p.example.com", not_before=NOW - 9 * DAY, not_after=NOW - DAY), "s2", "p.example.com"
    )
    book = reconcile(CertificateBook(), [future, past], now=NOW)
    assert book.entries == {}
    assert sorted(r.reason for r in book.refused) == ["Expired", "NotYetValid"]
