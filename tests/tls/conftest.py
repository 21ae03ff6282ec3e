"""Helpers for TLS tests: a local CA, a catalogue fed from issued pairs, a tiny TLS server and
real clients (Python ssl, curl, openssl s_client)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from ingressfed.tls.authority import Issued, LocalAuthority
from ingressfed.tls.book import Offer
from ingressfed.tls.catalog import CertificateCatalog
from ingressfed.tls.certificate import PrivateKey
from ingressfed.tls.contexts import SniContexts
from tests.proxy.conftest import backends  # noqa: F401 - the loopback backends fixture, shared


@pytest.fixture(scope="module")
def ca() -> LocalAuthority:
    return LocalAuthority()


@pytest.fixture
def ca_file(ca: LocalAuthority, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.ca_pem)
    return path


def offer(issued: Issued, source: str, *hosts: str) -> Offer:
    return Offer(source=source, cert_pem=issued.cert_pem, key=PrivateKey(issued.key_pem), hosts=hosts)


def client_context(ca_file: Path, *, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class _Hello(asyncio.Protocol):
    """Answers each line with the negotiated protocol details, for handshake-level tests."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        obj = self.transport.get_extra_info("ssl_object")
        line = f"{obj.version()} {obj.selected_alpn_protocol()} reused={obj.session_reused}\n"
        self.transport.write(line.encode())


@contextlib.asynccontextmanager
async def hello_server(contexts: SniContexts) -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(_Hello, "127.0.0.1", 0, ssl=contexts.context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def peer_names(der: bytes | None) -> list[str]:
    from cryptography import x509

    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return list(
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    )


async def handshake(
    port: int, server_name: str | None, ca_file: Path, *, alpn: list[str] | None = None, verify: bool = True
) -> tuple[list[str], str | None]:
    """(names of the certificate served, ALPN chosen) for a Python ssl client."""
    ctx = client_context(ca_file, alpn=alpn)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_name)
    try:
        obj = writer.get_extra_info("ssl_object")
        return peer_names(obj.getpeercert(binary_form=True)), obj.selected_alpn_protocol()
    finally:
        writer.close()


def catalog_with(*offers: Offer, group: str = "test") -> CertificateCatalog:
    catalog = CertificateCatalog()
    catalog.offer(group, offers)
    catalog.refresh(datetime.datetime.now(datetime.UTC))
    return catalog


async def run_tool(*args: str, stdin: bytes = b"", timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out, err)
