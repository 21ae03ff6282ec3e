"""The HTTPS listener end to end: curl, Python ssl, openssl s_client, nghttp and h2load over loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.tools import tool
from tests.proxy.conftest import BackendServer, eventually, raw_exchange
from tests.proxy.tlsproxy import HOST, https_proxy


async def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out, err)


def peer_names(writer: asyncio.StreamWriter) -> list[str]:
    from cryptography import x509

    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return list(san.value.get_values_for_type(x509.DNSName))


async def test_curl_over_http11_and_http2_reaches_the_backend_as_https(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path) as h:
        for flag, version in (("--http1.1", "1.1"), ("--http2", "2")):
            done = await run(*h.curl(flag, "-w", "\n%{http_version}", h.url("/hello?x=1")))
            assert done.returncode == 0, done.stderr.decode()
            body, _, got = done.stdout.decode().rpartition("\n")
            assert got == version
            seen = json.loads(body)
            assert seen["path"] == "/hello?x=1"
            assert seen["headers"]["X-Forwarded-Proto"] == "https"
            assert seen["headers"]["Host"] == f"{HOST}:{h.port}"
            assert seen["headers"]["Via"] == "1.1 ingressfed"


async def test_python_ssl_client_keeps_one_tls_connection_alive(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path) as h:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", h.port, ssl=h.client_context(alpn=["http/1.1"]), server_hostname=HOST
        )
        try:
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
            for i in range(3):
                writer.write(f"GET /n{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                assert json.loads(await reader.readexactly(length))["path"] == f"/n{i}"
        finally:
            writer.close()


async def test_unknown_server_names_fail_the_handshake_and_never_get_another_certificate(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, hosts=(HOST,)) as h:
        # shop.example.com is routed but has no certificate: no handshake, never app's certificate.
        refused = await run(*h.curl(h.url("/", host="shop.example.com"), host="shop.example.com"))
        assert refused.returncode == 35, refused.stderr.decode()  # CURLE_SSL_CONNECT_ERROR
        openssl = tool("openssl")
        s_client = await run(
            openssl, "s_client", "-connect", f"127.0.0.1:{h.port}", "-servername", "other.org", timeout=10
        )
        assert b"BEGIN CERTIFICATE" not in s_client.stdout
        assert h.proxy.metrics.registry.get_sample_value("ingressfed_tls_unknown_server_names_total") == 2


async def test_the_default_certificate_answers_names_nothing_else_covers(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(
        backends, tmp_path, hosts=(HOST, "fallback.invalid"), default_certificate="fallback.invalid"
    ) as h:
        ctx = h.client_context()
        ctx.check_hostname = False
        _, writer = await asyncio.open_connection(
            "127.0.0.1", h.port, ssl=ctx, server_hostname="shop.example.com"
        )
        assert peer_names(writer) == ["fallback.invalid"]
        writer.close()
        _, writer = await asyncio.open_connection(
            "127.0.0.1", h.port, ssl=h.client_context(), server_hostname=HOST
        )
        assert peer_names(writer) == [HOST]
        writer.close()


async def test_a_wildcard_certificate_serves_one_label_below_it(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    async with https_proxy(backends, tmp_path, hosts=("*.example.com",)) as h:
        done = await run(*h.curl(h.url("/w", host="shop.example.com"), host="shop.example.com"))
        assert done.returncode == 0, done.stderr.decode()
        assert json.loads(done.stdout)["path"] == "/w"


async def test_alpn_and_protocol_versions_seen_by_openssl(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    openssl = tool("openssl")
    async with https_proxy(backends, tmp_path) as h:
        base = [openssl, "s_client", "-connect", f"127.0.0.1:{h.port}", "-servername", HOST]
        h2 = await run(*base, "-alpn", "h2,http/1.1", "-CAfile", str(h.ca_file), timeout=10)
        assert b"ALPN protocol: h2" in h2.stdout
        assert b"Verify return code: 0 (ok)" in h2.stdout
        old = await run(*base, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0", timeout=10)
        assert old.returncode != 0
        assert b"BEGIN CERTIFICATE" not in old.stdout


async def test_plain_http_redirects_to_https_only_for_hosts_with_a_certificate_and_hsts_rides_https(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    from ingressfed.tls.settings import HstsSettings

    async with https_proxy(
        backends, tmp_path, redirect_http=True, redirect_port=8443, hsts=HstsSettings(max_age=600)
    ) as h:
        answer = await raw_exchange(h.proxy.port, f"GET /a?b=1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 308 ")
        assert f"Location: https://{HOST}:8443/a?b=1\r\n".encode() in answer
        plain = await raw_exchange(
            h.proxy.port, b"GET /a HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n"
        )
        assert plain.startswith(b"HTTP/1.1 200 ")
        assert b"strict-transport-security" not in plain.lower()
        for flag in ("--http1.1", "--http2"):
            done = await run(*h.curl(flag, "-D", "-", "-o", "/dev/null", h.url("/")))
            assert "strict-transport-security: max-age=600" in done.stdout.decode().lower()


@pytest.mark.parametrize("alpn", ["http/1.1", "h2"])
async def test_a_certificate_rotated_during_a_long_download_drops_nothing(
    backends: dict[str, BackendServer], tmp_path: Path, alpn: str
) -> None:
    async with https_proxy(backends, tmp_path) as h:
        flag = "--http2" if alpn == "h2" else "--http1.1"
        n, size = 40, 65536
        download = await asyncio.create_subprocess_exec(
            *h.curl(
                flag,
                "-o",
                str(tmp_path / "out"),
                "-w",
                "%{http_version} %{size_download}",
                h.url(f"/stream?n={n}&size={size}"),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        servers = list(backends.values())
        # The backend holds the response after its first chunk until released.
        await eventually(lambda: any(s.first_sent.is_set() for s in servers), timeout=10)
        server = next(s for s in servers if s.first_sent.is_set())
        _, before = await asyncio.open_connection(
            "127.0.0.1", h.port, ssl=h.client_context(), server_hostname=HOST
        )
        old = before.get_extra_info("ssl_object").getpeercert(binary_form=True)
        before.close()
        h.install("app.example.com", h.ca.issue(HOST))
        h.reload()
        _, after = await asyncio.open_connection(
            "127.0.0.1", h.port, ssl=h.client_context(), server_hostname=HOST
        )
        new = after.get_extra_info("ssl_object").getpeercert(binary_form=True)
        after.close()
        assert new != old  # new handshakes get the new certificate at once
        server.release.set()
        async with asyncio.timeout(30):
            out, err = await download.communicate()
        assert download.returncode == 0, err.decode()
        version, got = out.decode().split()
        assert version == ("2" if alpn == "h2" else "1.1")
        assert int(got) == n * size
        assert (tmp_path / "out").stat().st_size == n * size


async def test_nghttp_and_h2load_speak_http2_to_the_proxy(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    nghttp, h2load = tool("nghttp"), tool("h2load")
    async with https_proxy(backends, tmp_path, hosts=("localhost",)) as h:
        url = f"https://localhost:{h.port}/ng"
        one = await run(nghttp, "-v", url)
        assert one.returncode == 0, one.stderr.decode()
        assert b":status: 200" in one.stdout
        assert b"x-forwarded-proto" not in one.stdout  # a request header, not echoed in response heads
        load = await run(h2load, "-n", "400", "-c", "2", "-m", "16", url, timeout=60)
        assert load.returncode == 0, load.stderr.decode()
        text = load.stdout.decode()
        assert "400 succeeded, 0 failed, 0 errored" in text, text
        assert "status codes: 400 2xx" in text, text


async def test_an_ingress_redirect_annotation_overrides_the_federation_default(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    from dataclasses import replace

    from tests.proxy.conftest import ASIA, EU, US, routes_for

    async with https_proxy(backends, tmp_path, hosts=(HOST, "shop.example.com"), redirect_http=False) as h:
        h.proxy.update(
            [
                replace(routes_for(HOST, backends), https_redirect=True),
                replace(routes_for("shop.example.com", backends), https_redirect=None),
            ],
            [US, EU, ASIA],
        )
        on = await raw_exchange(h.proxy.port, f"GET /x HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert on.startswith(b"HTTP/1.1 308 ") and f"Location: https://{HOST}/x\r\n".encode() in on
        default = await raw_exchange(
            h.proxy.port, b"GET /x HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n"
        )
        assert default.startswith(b"HTTP/1.1 200 ")
    (tmp_path / "b").mkdir()
    async with https_proxy(backends, tmp_path / "b", hosts=(HOST,), redirect_http=True) as h:
        h.proxy.update([replace(routes_for(HOST, backends), https_redirect=False)], [US, EU, ASIA])
        off = await raw_exchange(
            h.proxy.port, f"GET /x HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        )
        assert off.startswith(b"HTTP/1.1 200 ")


async def test_private_keys_never_reach_routes_metrics_or_logs(
    backends: dict[str, BackendServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import urllib.request

    caplog.set_level(logging.DEBUG)
    async with https_proxy(backends, tmp_path) as h:
        key = (h.certs / "app.example.com.key").read_bytes()
        secret = key.split(b"\n")[1].decode()  # a line of the key's base64 body
        # A bad pair too: refusals are logged and counted, never with the key.
        one, other = h.ca.issue("shop.example.com"), h.ca.issue("shop.example.com")
        h.install("shop.example.com", type(one)(one.cert_pem, other.key_pem))
        h.reload()
        await run(*h.curl("--http2", h.url("/")))
        admin = f"http://127.0.0.1:{h.proxy.admin_port}"
        for path in ("/routes", "/metrics"):
            body = await asyncio.to_thread(
                lambda p=path: urllib.request.urlopen(admin + p, timeout=5).read().decode()
            )
            assert "PRIVATE KEY" not in body and secret not in body, path
        assert "KeyMismatch" in caplog.text
        assert "PRIVATE KEY" not in caplog.text and secret not in caplog.text
        assert h.proxy.https is not None
        assert secret not in repr(h.proxy.https.catalog.book)
