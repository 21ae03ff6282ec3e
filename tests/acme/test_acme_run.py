"""ACME end to end: ``ingressfed run`` orders from the fake CA (tests/fakes/acme_server.py), which
validates dns-01 against the embedded DNS server over UDP and http-01 through the real proxy; the
certificate is then served by SNI on the HTTPS listener and checked by Python's ssl."""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest
import yaml
from cryptography import x509

from ingressfed.app import start
from ingressfed.config import load_config, parse_config
from ingressfed.errors import ConfigError
from tests.fakes.acme_server import FakeAcme
from tests.fakes.ports import free_ports
from tests.kube.conftest import eventually

HOST = "shop.example.com"


def _config(tmp: Path, acme: FakeAcme, *, challenge: str, dns_port: int, proxy_port: int) -> Path:
    (tmp / "objects.yaml").write_text(yaml.safe_dump({"services": []}))
    # Distinct from each other and from the two given: a port picked alone may be one of those
    # again (each is released once picked), and the DNS server then finds its port taken.
    admin, tls, controller = [p for p in free_ports(5) if p not in (dns_port, proxy_port)][:3]
    doc: dict[str, Any] = {
        "federation": {"name": "federation", "zone": "example.com"},
        "dns": {"provider": "embedded"},
        "clusters": [{"name": "us", "region": "us-east1", "zone": "us-east1-b"}],
        "source": {"kind": "static", "file": "objects.yaml"},
        "proxy": {
            "listen": f"127.0.0.1:{proxy_port}",
            "adminListen": f"127.0.0.1:{admin}",
            "tls": {"listen": f"127.0.0.1:{tls}"},
        },
        "dnsServer": {"listen": f"127.0.0.1:{dns_port}", "answers": "all"},
        "controller": {"listen": f"127.0.0.1:{controller}", "debounce": 0.05},
        "tls": {
            "acme": {
                "directoryUrl": acme.directory_url,
                "email": "ops@example.com",
                "challenge": challenge,
                "hosts": [HOST],
                "stateDir": str(tmp / "acme"),
                "checkInterval": 0.2,
                "propagationNameservers": [f"127.0.0.1:{dns_port}"],
                "propagationTimeout": 20,
            }
        },
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def _served_certificate(port: int, ca_pem: bytes) -> x509.Certificate:
    """The leaf the HTTPS listener presents for HOST, verified against the fake CA's root."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=HOST)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der)


async def _txt(name: str, port: int) -> list[str]:
    answer = await dns.asyncquery.udp(
        dns.message.make_query(name, dns.rdatatype.TXT), "127.0.0.1", port=port, timeout=2
    )
    return [b"".join(r.strings).decode() for rrset in answer.answer for r in rrset]


async def _wait_served(
    port: int, ca_pem: bytes, *, after: datetime.datetime | None = None
) -> x509.Certificate:
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    last: Exception | None = None
    while loop.time() < end:
        try:
            cert = await _served_certificate(port, ca_pem)
            if after is None or cert.not_valid_after_utc > after:
                return cert
        except (ssl.SSLError, OSError) as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"no ACME certificate served for {HOST}: {last}")


@pytest.mark.parametrize("challenge", ["dns-01", "http-01"])
async def test_run_orders_a_certificate_and_serves_it_by_sni(tmp_path: Path, challenge: str) -> None:
    dns_port, proxy_port = free_ports(2)
    async with FakeAcme(dns_address=("127.0.0.1", dns_port), http_address=("127.0.0.1", proxy_port)) as acme:
        config = load_config(
            _config(tmp_path, acme, challenge=challenge, dns_port=dns_port, proxy_port=proxy_port)
        )
        async with start(config):
            https_port = int(config.proxy.tls.listen.rsplit(":", 1)[1])  # type: ignore[union-attr]
            cert = await _wait_served(https_port, acme.authority.ca_pem)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert san.get_values_for_type(x509.DNSName) == [HOST]
            assert acme.validations == [(challenge, HOST, True)]
            if challenge == "dns-01":
                # The challenge TXT (and its ownership companion) is removed once the order ends.
                name = f"_acme-challenge.{HOST}."
                loop = asyncio.get_running_loop()
                end = loop.time() + 10
                while await _txt(name, dns_port):
                    assert loop.time() < end, "the dns-01 TXT record was never removed"
                    await asyncio.sleep(0.1)
        state = tmp_path / "acme"
        assert stat.S_IMODE(os.stat(state / "account.key").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(state / "certs" / f"{HOST}.key").st_mode) == 0o600
        assert acme.requests["new-order"] == 1  # issued once, nothing re-ordered while valid


async def test_a_kept_certificate_is_served_at_start_and_renewed_near_expiry(tmp_path: Path) -> None:
    dns_port, proxy_port = free_ports(2)
    async with FakeAcme(dns_address=("127.0.0.1", dns_port)) as acme:
        now = datetime.datetime.now(datetime.UTC)
        old = acme.authority.issue(
            HOST, not_before=now - datetime.timedelta(days=80), not_after=now + datetime.timedelta(days=3)
        )
        certs = tmp_path / "acme" / "certs"
        certs.mkdir(parents=True)
        (certs / f"{HOST}.crt").write_bytes(old.cert_pem)
        (certs / f"{HOST}.key").write_bytes(old.key_pem)
        acme.rate_limit = 3600.0  # hold the renewal back until the kept certificate was seen
        config = load_config(
            _config(tmp_path, acme, challenge="dns-01", dns_port=dns_port, proxy_port=proxy_port)
        )
        async with start(config):
            https_port = int(config.proxy.tls.listen.rsplit(":", 1)[1])  # type: ignore[union-attr]
            first = await _wait_served(https_port, acme.authority.ca_pem)
            assert first.not_valid_after_utc < now + datetime.timedelta(days=4)
            await eventually(lambda: acme.requests["new-order"] >= 1, timeout=20, what="a renewal order")
            await asyncio.sleep(1.0)  # several check intervals: the rate limit must hold them back
            assert acme.requests["new-order"] == 1, acme.requests
        # Restarted with the limit lifted: the renewal goes through and is served at once.
        acme.rate_limit = None
        async with start(config):
            renewed = await _wait_served(
                https_port, acme.authority.ca_pem, after=now + datetime.timedelta(days=30)
            )
            assert renewed.not_valid_after_utc > now + datetime.timedelta(days=80)


@pytest.mark.parametrize(
    ("acme", "message"),
    [
        ({"directoryUrl": "ftp://ca", "hosts": ["a.example.com"], "stateDir": "s"}, "tls.acme.directoryUrl"),
        (
            {"directoryUrl": "https://ca/dir", "hosts": ["a.example.com", "a.example.com"], "stateDir": "s"},
            "tls.acme.hosts",
        ),
        ({"directoryUrl": "https://ca/dir", "hosts": ["*.*.example.com"], "stateDir": "s"}, "tls.acme.hosts"),
        (
            {
                "directoryUrl": "https://ca/dir",
                "hosts": ["*.example.com"],
                "stateDir": "s",
                "challenge": "http-01",
            },
            "tls.acme.hosts: '*.example.com' is a wildcard",
        ),
        ({"directoryUrl": "https://ca/dir", "hosts": ["a.example.com"]}, "tls.acme.stateDir"),
        (
            {
                "directoryUrl": "https://ca/dir",
                "hosts": ["a.example.com"],
                "stateDir": "s",
                "challenge": "tls-alpn-01",
            },
            "tls.acme.challenge",
        ),
        (
            {
                "directoryUrl": "https://ca/dir",
                "hosts": ["a.example.com"],
                "stateDir": "s",
                "email": "nobody",
            },
            "tls.acme.email",
        ),
        (
            {
                "directoryUrl": "https://ca/dir",
                "hosts": ["a.example.com"],
                "stateDir": "s",
                "renewBeforeDays": 0,
            },
            "tls.acme.renewBeforeDays",
        ),
        (
            {
                "directoryUrl": "https://ca/dir",
                "hosts": ["a.example.com"],
                "stateDir": "s",
                "eab": {"kid": "k", "hmacKey": "!!"},
            },
            "tls.acme.eab.hmacKey",
        ),
    ],
)
def test_bad_acme_config_is_refused_naming_the_field(acme: dict[str, Any], message: str) -> None:
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "proxy": {"tls": {"listen": "127.0.0.1:8443"}},
        "tls": {"acme": acme},
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    assert any(message in p for p in exc.value.problems), exc.value.problems


def test_acme_without_an_https_listener_is_refused() -> None:
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "tls": {"acme": {"directoryUrl": "https://ca/dir", "hosts": ["a.example.com"], "stateDir": "s"}},
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    assert any(p.startswith("tls.acme: ") and "proxy.tls" in p for p in exc.value.problems), (
        exc.value.problems
    )


def test_dns01_hosts_outside_the_federation_zone_are_refused() -> None:
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "proxy": {"tls": {"listen": "127.0.0.1:8443"}},
        "tls": {"acme": {"directoryUrl": "https://ca/dir", "hosts": ["shop.example.org"], "stateDir": "s"}},
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    assert any(p.startswith("tls.acme.hosts: 'shop.example.org'") for p in exc.value.problems), (
        exc.value.problems
    )


async def test_only_the_leader_orders(tmp_path: Path) -> None:
    from ingressfed.acme.challenges import HttpChallenges
    from ingressfed.acme.manager import AcmeManager
    from ingressfed.config import AcmeSection
    from ingressfed.tls.catalog import CertificateCatalog

    async with FakeAcme() as acme:
        section = AcmeSection(
            directory_url=acme.directory_url,
            hosts=(HOST,),
            state_dir=str(tmp_path / "s"),
            challenge="http-01",
        )
        leading = False
        manager = AcmeManager(section, CertificateCatalog(), http=HttpChallenges(), is_leader=lambda: leading)
        await manager.run_once()
        assert sum(acme.requests.values()) == 0
        acme.rate_limit = 60.0
        leading = True
        await manager.run_once()
        assert acme.requests["new-order"] == 1
        await manager.run_once()  # backing off: the CA is not asked again
        assert acme.requests["new-order"] == 1


@pytest.mark.parametrize("right", [True, False])
async def test_external_account_binding_is_sent_and_checked(tmp_path: Path, right: bool) -> None:
    import base64

    from ingressfed.acme.challenges import HttpChallenges
    from ingressfed.acme.manager import AcmeManager
    from ingressfed.config import AcmeEab, AcmeSection
    from ingressfed.tls.catalog import CertificateCatalog

    secret = b"s" * 32
    given = secret if right else b"t" * 32
    async with FakeAcme(eab_keys={"kid-1": secret}, rate_limit=60.0) as acme:
        section = AcmeSection(
            directory_url=acme.directory_url,
            hosts=(HOST,),
            state_dir=str(tmp_path / "s"),
            challenge="http-01",
            eab=AcmeEab(kid="kid-1", hmac_key=base64.urlsafe_b64encode(given).rstrip(b"=").decode()),
        )
        manager = AcmeManager(section, CertificateCatalog(), http=HttpChallenges())
        await manager.run_once()
        assert len(acme.accounts) == (1 if right else 0)
        assert acme.requests["new-order"] == (1 if right else 0)  # a refused account orders nothing
        assert manager.attempts[HOST].failures == 1


async def test_without_an_in_process_proxy_the_certificate_feed_carries_the_acme_certificate(
    tmp_path: Path,
) -> None:
    import aiohttp

    from ingressfed.tls.distribution import decode_bundle

    dns_port, proxy_port = free_ports(2)
    async with FakeAcme(dns_address=("127.0.0.1", dns_port)) as acme:
        path = _config(tmp_path, acme, challenge="dns-01", dns_port=dns_port, proxy_port=proxy_port)
        doc = yaml.safe_load(path.read_text())
        doc["proxy"] = {"enabled": False}
        (tmp_path / "feed-token").write_text("t0ken-for-the-feed\n")
        doc["controller"]["feedTokenFile"] = str(tmp_path / "feed-token")
        path.write_text(yaml.safe_dump(doc))
        config = load_config(path)
        url = f"http://{config.controller.listen}/v1/feed/certificates"
        headers = {"Authorization": "Bearer t0ken-for-the-feed"}
        async with start(config), aiohttp.ClientSession() as session:
            loop = asyncio.get_running_loop()
            end = loop.time() + 30
            sources: list[str] = []
            while "acme:" + HOST not in sources:
                assert loop.time() < end, f"the feed never carried the ACME certificate: {sources}"
                await asyncio.sleep(0.2)
                async with session.get(url, headers=headers, params={"timeout": "0"}) as resp:
                    assert resp.status == 200
                    _, _, offers = decode_bundle(await resp.read())
                sources = [o.source for o in offers]
        assert acme.validations == [("dns-01", HOST, True)]


def test_http01_without_the_in_process_proxy_is_accepted_remote_proxies_answer() -> None:
    doc = {
        "federation": {"name": "federation", "zone": "example.com"},
        "proxy": {"enabled": False},
        "tls": {
            "acme": {
                "directoryUrl": "https://ca/dir",
                "hosts": ["a.example.com"],
                "stateDir": "s",
                "challenge": "http-01",
            }
        },
    }
    assert parse_config(doc).tls.acme is not None  # tests/acme/test_acme_remote_http01.py runs it


def test_eab_hmac_key_from_a_file_and_exactly_one_source(tmp_path: Path) -> None:
    key = tmp_path / "hmac-key"
    key.write_text("c2VjcmV0LWtleQ\n")  # a mounted Secret ends with a newline
    base = {"directoryUrl": "https://ca/dir", "hosts": ["a.example.com"], "stateDir": "s"}

    def doc(eab: dict[str, Any]) -> dict[str, Any]:
        return {
            "federation": {"name": "federation", "zone": "example.com"},
            "proxy": {"tls": {"listen": "127.0.0.1:8443"}},
            "tls": {"acme": {**base, "eab": eab}},
        }

    loaded = parse_config(doc({"kid": "k", "hmacKeyFile": str(key)}))
    assert loaded.tls.acme is not None and loaded.tls.acme.eab is not None
    assert loaded.tls.acme.eab.hmac() == "c2VjcmV0LWtleQ"
    for both_or_none in ({"kid": "k"}, {"kid": "k", "hmacKey": "c2VjcmV0", "hmacKeyFile": str(key)}):
        with pytest.raises(ConfigError) as exc:
            parse_config(doc(both_or_none))
        assert any(p.startswith("tls.acme.eab: set exactly one") for p in exc.value.problems)
    key.write_text("!!\n")
    with pytest.raises(ConfigError) as exc:
        parse_config(doc({"kid": "k", "hmacKeyFile": str(key)})).tls.acme.eab.hmac()  # type: ignore[union-attr]
    assert exc.value.problems[0].startswith("tls.acme.eab.hmacKeyFile: ")


async def test_a_wildcard_is_ordered_over_dns01_and_serves_every_name_below_it(tmp_path: Path) -> None:
    dns_port, proxy_port = free_ports(2)
    async with FakeAcme(dns_address=("127.0.0.1", dns_port)) as acme:
        path = _config(tmp_path, acme, challenge="dns-01", dns_port=dns_port, proxy_port=proxy_port)
        doc = yaml.safe_load(path.read_text())
        doc["tls"]["acme"]["hosts"] = ["*.example.com"]
        path.write_text(yaml.safe_dump(doc))
        config = load_config(path)
        async with start(config):
            https_port = int(config.proxy.tls.listen.rsplit(":", 1)[1])  # type: ignore[union-attr]
            cert = await _wait_served(https_port, acme.authority.ca_pem)  # SNI shop.example.com
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert san.get_values_for_type(x509.DNSName) == ["*.example.com"]
            # The CA validated the base name (RFC 8555 §7.1.3) through _acme-challenge.example.com.
            assert acme.ordered == [("*.example.com",)]
            assert acme.validations == [("dns-01", "example.com", True)]
            ctx = ssl.create_default_context(cadata=acme.authority.ca_pem.decode())
            _, writer = await asyncio.open_connection(
                "127.0.0.1", https_port, ssl=ctx, server_hostname="api.example.com"
            )
            writer.close()
        assert (tmp_path / "acme" / "certs" / "_wildcard.example.com.crt").is_file()


async def test_get_certificates_lists_acme_hosts_without_an_in_process_proxy(tmp_path: Path) -> None:
    """``ingressfed get certificates`` (its read API) on a controller whose proxies are remote:
    a host still being ordered shows why it has no certificate, an issued one shows Ready."""
    import aiohttp

    dns_port, proxy_port = free_ports(2)
    async with FakeAcme(dns_address=("127.0.0.1", dns_port), rate_limit=3600.0) as acme:
        path = _config(tmp_path, acme, challenge="dns-01", dns_port=dns_port, proxy_port=proxy_port)
        doc = yaml.safe_load(path.read_text())
        doc["proxy"] = {"enabled": False}
        doc["status"] = {"enabled": True}
        (tmp_path / "feed-token").write_text("t0ken-for-the-feed\n")
        doc["controller"]["feedTokenFile"] = str(tmp_path / "feed-token")
        path.write_text(yaml.safe_dump(doc))
        config = load_config(path)
        url = f"http://{config.controller.listen}/v1/status/certificates"
        headers = {"Authorization": "Bearer t0ken-for-the-feed"}

        async def rows(session: aiohttp.ClientSession) -> list[dict[str, Any]]:
            async with session.get(url, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
            items = body["items"] if isinstance(body, dict) else body
            return [i for i in items if i["host"] == HOST]

        for limited in (True, False):
            acme.rate_limit = 3600.0 if limited else None
            async with start(config), aiohttp.ClientSession() as session:
                want = "OrderFailed:retry-at-" if limited else "Ready"
                loop = asyncio.get_running_loop()
                end = loop.time() + 30
                found: list[dict[str, Any]] = []
                while not (found and found[0]["status"].startswith(want)):
                    assert loop.time() < end, f"never {want}: {found}"
                    await asyncio.sleep(0.2)
                    found = await rows(session)
                assert found[0]["source"] == f"acme:{HOST}"
                assert (found[0]["notAfter"] is None) == limited
