"""The certificate directory: both layouts, refusals named by file, last good kept on a bad write."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest

from ingressfed.tls.authority import LocalAuthority
from ingressfed.tls.catalog import CertificateCatalog
from ingressfed.tls.directory import DirectorySource


def now() -> datetime.datetime:
    # Read when the test runs, not at import: the module may be imported minutes before.
    return datetime.datetime.now(datetime.UTC)


def test_both_layouts_are_read_and_changes_are_noticed(ca: LocalAuthority, tmp_path: Path) -> None:
    shop, blog = ca.issue("shop.example.com"), ca.issue("*.blog.example.com")
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "tls.crt").write_bytes(shop.cert_pem)
    (tmp_path / "shop" / "tls.key").write_bytes(shop.key_pem)
    (tmp_path / "blog.crt").write_bytes(blog.cert_pem)
    (tmp_path / "blog.key").write_bytes(blog.key_pem)
    catalog = CertificateCatalog()
    source = DirectorySource(tmp_path, catalog)
    assert source.load()
    book = catalog.refresh(now())
    assert set(book.entries) == {"shop.example.com", "*.blog.example.com"}
    assert book.entries["shop.example.com"].source == f"file:{tmp_path / 'shop'}"
    assert not source.load()  # nothing changed
    (tmp_path / "blog.crt").unlink()
    (tmp_path / "blog.key").unlink()
    assert source.load()
    assert set(catalog.refresh(now()).entries) == {"shop.example.com"}


def test_a_half_written_pair_is_refused_and_the_host_keeps_its_certificate(
    ca: LocalAuthority, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = ca.issue("shop.example.com"), ca.issue("shop.example.com")
    (tmp_path / "shop.crt").write_bytes(first.cert_pem)
    (tmp_path / "shop.key").write_bytes(first.key_pem)
    catalog = CertificateCatalog()
    source = DirectorySource(tmp_path, catalog)
    source.load()
    good = catalog.refresh(now()).entries["shop.example.com"].certificate
    (tmp_path / "shop.crt").write_bytes(second.cert_pem)  # the key is not yet replaced
    source.load()
    with caplog.at_level(logging.WARNING):
        book = catalog.refresh(now())
    served = book.entries["shop.example.com"]
    assert served.certificate == good
    assert served.stale is not None
    assert "KeyMismatch" in caplog.text and str(tmp_path / "shop") in caplog.text
    assert "PRIVATE KEY" not in caplog.text
    refusals = catalog.metrics.registry.get_sample_value(
        "ingressfed_tls_certificate_refusals_total", {"reason": "KeyMismatch"}
    )
    assert refusals == 1
    (tmp_path / "shop.key").write_bytes(second.key_pem)
    source.load()
    assert catalog.refresh(now()).entries["shop.example.com"].stale is None


def test_a_lone_certificate_file_is_refused_as_missing_data(ca: LocalAuthority, tmp_path: Path) -> None:
    (tmp_path / "lonely.crt").write_bytes(ca.issue("l.example.com").cert_pem)
    catalog = CertificateCatalog()
    DirectorySource(tmp_path, catalog).load()
    book = catalog.refresh(now())
    assert book.entries == {}
    assert [r.reason for r in book.refused] == ["MissingData"]


def test_check_config_names_tls_problems(tmp_path: Path) -> None:
    from ingressfed.config import load_config
    from ingressfed.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text(
        "federation: {name: f, zone: example.com}\n"
        "proxy: {tls: {defaultCertificate: shop, http2: {maxConcurrentStreams: 0}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = "\n".join(info.value.problems)
    assert "proxy.tls.defaultCertificate: names a pair in proxy.tls.certificateDir" in problems
    assert "proxy.tls.http2.maxConcurrentStreams: 0 is out of range" in problems
