"""proxy.workers: 2 with HTTPS: the worker serves the TLS port too (SO_REUSEPORT), with the
primary's certificates, including one rotated after the worker started, and the fixed answers
(ACME http-01 tokens) the primary shares reach it."""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import ssl
from dataclasses import replace
from pathlib import Path

from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.workers import book_from_message, book_message
from ingressfed.tls.authority import LocalAuthority
from ingressfed.tls.book import CertificateBook, Offer, Served
from ingressfed.tls.certificate import PrivateKey, parse_pair
from ingressfed.tls.settings import TlsSettings

from .conftest import ASIA, EU, US, BackendServer, eventually, routes_for, settings

HOST = "app.example.com"
CONNECTIONS = 40
TOKEN_PATH = "/.well-known/acme-challenge/tok-123"


def _served_here(proxy: ProxyServer) -> int:
    return sum(n for (_, _), n in proxy.metrics.request_counts.items())


async def _https_get(port: int, ctx: ssl.SSLContext) -> tuple[int, str]:
    """One request on a fresh TLS connection: status and the served certificate's fingerprint."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=HOST)
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return int(answer.split(b" ", 2)[1]), hashlib.sha256(der).hexdigest()


async def _plain_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


async def test_workers_serve_https_with_the_primarys_certificates_and_answers(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    ca = LocalAuthority()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    first, second = ca.issue(HOST), ca.issue(HOST)
    tls = TlsSettings(host="127.0.0.1", port=0)
    async with ProxyServer(replace(settings(workers=2), tls=tls)) as proxy:
        assert proxy.workers is not None and proxy.https is not None
        proxy.update([routes_for(HOST, backends)], [US, EU, ASIA])
        # Offered after the worker was started: it only has what the primary sends it.
        proxy.https.offer("ingress", [Offer("test", first.cert_pem, PrivateKey(first.key_pem), (HOST,))])
        await eventually(lambda: proxy.workers is not None and proxy.workers.ready() == 1, timeout=120)
        port = proxy.https.port

        async def all_https() -> list[tuple[int, str]]:
            return await asyncio.gather(*(_https_get(port, ctx) for _ in range(CONNECTIONS)))

        fingerprint = {
            parse_pair(i.cert_pem, i.key_pem).fingerprint: n
            for n, i in (("first", first), ("second", second))
        }
        async with asyncio.timeout(30):
            while True:  # every connection verified and answered; some of them by the worker
                before = _served_here(proxy)
                answers = await all_https()
                here = _served_here(proxy) - before
                if {(s, fingerprint.get(f)) for s, f in answers} == {
                    (200, "first")
                } and 0 < here < CONNECTIONS:
                    break
                await asyncio.sleep(0.2)

        # A rotation in the primary reaches the worker: soon no connection sees the old certificate.
        proxy.https.offer("ingress", [Offer("test", second.cert_pem, PrivateKey(second.key_pem), (HOST,))])
        async with asyncio.timeout(30):
            while {fingerprint.get(f) for _, f in await all_https()} != {"second"}:
                await asyncio.sleep(0.2)

        # Shared answers: every process answers the token; withdrawn, none does.
        proxy.share_answers("acme", {TOKEN_PATH: (HOST, b"tok-123.thumbprint")})
        async with asyncio.timeout(30):
            while True:
                got = await asyncio.gather(*(_plain_get(proxy.port, TOKEN_PATH) for _ in range(CONNECTIONS)))
                if set(got) == {(200, b"tok-123.thumbprint")}:
                    break
                await asyncio.sleep(0.2)
        proxy.share_answers("acme", {})
        async with asyncio.timeout(30):
            while {
                s
                for s, _ in await asyncio.gather(
                    *(_plain_get(proxy.port, TOKEN_PATH) for _ in range(CONNECTIONS))
                )
            } != {200}:
                await asyncio.sleep(0.2)  # routed to the backends again (which answer 200 to anything)
            got = await asyncio.gather(*(_plain_get(proxy.port, TOKEN_PATH) for _ in range(CONNECTIONS)))
            assert all(body != b"tok-123.thumbprint" for _, body in got)

        await proxy.drain(grace=2)
        await eventually(lambda: proxy.workers is not None and proxy.workers.alive() == 0, timeout=10)


async def test_a_worker_serves_the_book_it_is_started_with_from_its_first_handshake(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    """A worker used to listen with an empty book until the primary's first pipe message, so
    handshakes in those milliseconds were refused. The book now comes with the worker's start
    (``WorkerPool.start(book)`` -> ``run_worker`` -> ``ProxyServer(book=...)``), adopted before
    the TLS port is bound: the very first handshake, with no message from any primary, succeeds."""
    ca = LocalAuthority()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    issued = ca.issue(HOST)
    pair = parse_pair(issued.cert_pem, issued.key_pem)
    sent = book_message(CertificateBook(entries={HOST: Served(host=HOST, certificate=pair, source="test")}))
    book = book_from_message(pickle.loads(pickle.dumps(sent)))  # as the spawn start pickles it
    tls = TlsSettings(host="127.0.0.1", port=0)
    async with ProxyServer(replace(settings(), tls=tls), book=book) as proxy:
        assert proxy.https is not None
        proxy.update([routes_for(HOST, backends)], [US, EU, ASIA])
        status, fingerprint = await _https_get(proxy.https.port, ctx)
        assert status == 200
        assert fingerprint == pair.fingerprint  # the SHA-256 of the leaf it was started with
