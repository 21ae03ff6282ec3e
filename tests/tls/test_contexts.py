"""SNI selection, protocol versions, ALPN and resumption against real TLS clients over loopback."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import subprocess
from pathlib import Path

import pytest

from ingressfed.tls.authority import LocalAuthority
from ingressfed.tls.contexts import SniContexts
from tests.fakes.tools import tool
from tests.tls.conftest import catalog_with, client_context, handshake, hello_server, offer, run_tool


@pytest.fixture
def contexts(ca: LocalAuthority) -> SniContexts:
    catalog = catalog_with(
        offer(ca.issue("a.example.com"), "file a"),
        offer(ca.issue("*.example.com"), "file wildcard"),
    )
    contexts = SniContexts(alpn=("h2", "http/1.1"))
    contexts.swap(catalog.book)
    return contexts


async def test_sni_picks_exact_then_wildcard_and_refuses_unknown_names(
    contexts: SniContexts, ca_file: Path
) -> None:
    async with hello_server(contexts) as port:
        assert (await handshake(port, "a.example.com", ca_file))[0] == ["a.example.com"]
        assert (await handshake(port, "shop.example.com", ca_file))[0] == ["*.example.com"]
        for name in ("x.shop.example.com", "example.org", None):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await handshake(port, name, ca_file, verify=False)


async def test_unknown_names_get_the_default_certificate_when_one_is_set(
    ca: LocalAuthority, ca_file: Path
) -> None:
    catalog = catalog_with(offer(ca.issue("a.example.com"), "file a"), group="certs")
    catalog.offer("default", [offer(ca.issue("fallback.invalid"), "file default")])
    catalog.set_default("default")
    catalog.refresh(datetime.datetime.now(datetime.UTC))
    contexts = SniContexts()
    contexts.swap(catalog.book)
    async with hello_server(contexts) as port:
        assert (await handshake(port, "other.org", ca_file, verify=False))[0] == ["fallback.invalid"]
        assert (await handshake(port, None, ca_file, verify=False))[0] == ["fallback.invalid"]
        assert (await handshake(port, "a.example.com", ca_file))[0] == ["a.example.com"]


async def test_alpn_offers_h2_then_http11(contexts: SniContexts, ca_file: Path) -> None:
    async with hello_server(contexts) as port:
        assert (await handshake(port, "a.example.com", ca_file, alpn=["h2", "http/1.1"]))[1] == "h2"
        assert (await handshake(port, "a.example.com", ca_file, alpn=["http/1.1"]))[1] == "http/1.1"
        assert (await handshake(port, "a.example.com", ca_file))[1] is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_tls_below_12_is_refused_by_python_and_openssl(contexts: SniContexts, ca_file: Path) -> None:
    openssl = tool("openssl")
    async with hello_server(contexts) as port:
        ctx = client_context(ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1  # the refused versions
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="a.example.com")
        old = await run_tool(
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "a.example.com",
            "-tls1_1",
            "-cipher",
            "ALL:@SECLEVEL=0",
        )
        assert old.returncode != 0
        assert b"Cipher is (NONE)" in old.stdout or b"New, (NONE)" in old.stdout
        modern = await run_tool(
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "a.example.com",
            "-tls1_2",
            "-CAfile",
            str(ca_file),
            "-verify_return_error",
        )
        assert b"Protocol  : TLSv1.2" in modern.stdout, modern.stdout.decode()
        assert b"ECDHE" in modern.stdout
        assert b"Verify return code: 0 (ok)" in modern.stdout


async def test_sessions_resume_on_tls12_and_tls13(
    contexts: SniContexts, ca_file: Path, tmp_path: Path
) -> None:
    openssl = tool("openssl")
    async with hello_server(contexts) as port:
        tls12 = await run_tool(
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "a.example.com",
            "-tls1_2",
            "-reconnect",
        )
        assert tls12.stdout.count(b"Reused, TLSv1.2") == 5, tls12.stdout.decode()
        session = tmp_path / "session.pem"
        common = ["s_client", "-connect", f"127.0.0.1:{port}", "-servername", "a.example.com", "-tls1_3"]
        first = await s_client_answered(openssl, *common, "-sess_out", str(session))
        assert b"New, TLSv1.3" in first
        second = await s_client_answered(openssl, *common, "-sess_in", str(session))
        assert b"Reused, TLSv1.3" in second, second.decode()
        assert b"reused=True" in second


async def s_client_answered(*args: str) -> bytes:
    """Run s_client, send one line and wait for the server's answer before closing: TLS 1.3
    tickets arrive after the handshake, so a client that closes at once never holds one."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"x\n")
    out = b""
    async with asyncio.timeout(10):
        while b"reused=" not in out:
            chunk = await proc.stdout.read(4096)
            if not chunk:
                break
            out += chunk
        proc.stdin.close()
        out += await proc.stdout.read()
        await proc.wait()
    return out


async def test_a_swap_changes_new_handshakes_and_keeps_open_connections(
    ca: LocalAuthority, ca_file: Path
) -> None:
    first = ca.issue("a.example.com")
    catalog = catalog_with(offer(first, "file a"))
    contexts = SniContexts()
    contexts.swap(catalog.book)
    async with hello_server(contexts) as port:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(ca_file), server_hostname="a.example.com"
        )
        before = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        catalog.offer("test", [offer(ca.issue("a.example.com"), "file a")])
        contexts.swap(catalog.refresh(datetime.datetime.now(datetime.UTC)))
        writer.write(b"still there?\n")
        assert (await reader.readline()).startswith(b"TLSv1.3")
        writer.close()
        _, writer2 = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(ca_file), server_hostname="a.example.com"
        )
        after = writer2.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer2.close()
        assert before != after


def test_a_connection_reads_and_writes_through_the_c_methods_over_memory_bios(contexts: SniContexts) -> None:
    """The listener's SSL objects carry the ``_ssl`` object's own read/write/pending (no Python
    forwarding frame per call) and still complete a handshake and move data both ways."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = contexts.context.wrap_bio(server_in, server_out, server_side=True)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client = client_ctx.wrap_bio(client_in, client_out, server_hostname="a.example.com")
    for name in ("read", "write", "pending", "do_handshake"):
        assert type(getattr(server, name)).__name__ == "builtin_function_or_method", name
    done = {"server": False, "client": False}
    for _ in range(10):  # pump the handshake's flights between the two
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            break
    assert all(done.values())
    assert server.getpeercert() is None and server.version() in ("TLSv1.2", "TLSv1.3")
    client.write(b"GET / HTTP/1.1\r\n\r\n")
    server_in.write(client_out.read())
    assert server.pending() == 0  # nothing decrypted before the read
    assert server.read(1024) == b"GET / HTTP/1.1\r\n\r\n"
    buffer = bytearray(64)
    client.write(b"again")
    server_in.write(client_out.read())
    assert server.read(64, buffer) == 5 and bytes(buffer[:5]) == b"again"
    assert server.write(b"HTTP/1.1 200 OK\r\n\r\n") == 19
    client_in.write(server_out.read())
    assert client.read(1024) == b"HTTP/1.1 200 OK\r\n\r\n"
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1024)
