"""Ingress TLS certificates carried to remote proxies on /v1/feed/certificates: token required,
long poll, strict wire form whose errors never quote keys, applied to a proxy's HTTPS listener."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ingressfed.tls.authority import LocalAuthority
from ingressfed.tls.book import Offer
from ingressfed.tls.certificate import PrivateKey
from ingressfed.tls.distribution import (
    CertificateBundle,
    CertificateFollower,
    CertificateFormatError,
    add_certificate_routes,
    decode_bundle,
    encode_bundle,
)
from tests.fakes.http_app import serve_app
from tests.proxy.conftest import BackendServer, eventually
from tests.proxy.tlsproxy import https_proxy
from tests.tls.conftest import handshake

TOKEN = "s3cret-token"


def offer(ca: LocalAuthority, host: str) -> Offer:
    issued = ca.issue(host)
    return Offer(
        source=f"secret:us/shop/{host}",
        cert_pem=issued.cert_pem,
        key=PrivateKey(issued.key_pem),
        hosts=(host,),
        subject="ingress shop/web in us",
    )


def test_the_wire_form_round_trips_and_bad_documents_name_the_field(ca: LocalAuthority) -> None:
    o = offer(ca, "shop.example.com")
    epoch, version, [back] = decode_bundle(encode_bundle("e1", 3, [o]))
    assert (epoch, version) == ("e1", 3)
    assert back == o and back.key.reveal() == o.key.reveal()
    doc = json.loads(encode_bundle("e1", 3, [o]))
    doc["certificates"][0]["hosts"] = "shop.example.com"
    with pytest.raises(CertificateFormatError, match=r"certificates\[0\]\.hosts") as info:
        decode_bundle(json.dumps(doc).encode())
    assert "PRIVATE KEY" not in str(info.value)
    with pytest.raises(CertificateFormatError, match="format"):
        decode_bundle(b'{"format": "other"}')


async def serve(bundle: CertificateBundle, token: str | None) -> tuple[web.AppRunner, str]:
    app = web.Application()
    add_certificate_routes(app, bundle, token)
    return await serve_app(app)


async def test_keys_are_served_only_with_the_feed_token(ca: LocalAuthority) -> None:
    bundle = CertificateBundle()
    bundle.set([offer(ca, "shop.example.com")])
    for token, header, status in (
        (None, None, 403),
        (TOKEN, None, 401),
        (TOKEN, "Bearer wrong", 401),
        (TOKEN, f"Bearer {TOKEN}", 200),
    ):
        runner, url = await serve(bundle, token)
        try:
            headers = {"Authorization": header} if header else {}
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{url}/v1/feed/certificates", headers=headers, params={"timeout": "0"}) as resp,
            ):
                body = await resp.read()
                assert resp.status == status
                assert (b"PRIVATE KEY" in body) is (status == 200)
        finally:
            await runner.cleanup()


async def test_a_proxy_follows_the_certificates_and_serves_them(
    backends: dict[str, BackendServer], tmp_path: Path
) -> None:
    bundle = CertificateBundle()
    runner, url = await serve(bundle, TOKEN)
    try:
        async with https_proxy(backends, tmp_path, hosts=()) as h:
            https = h.proxy.https
            assert https is not None
            follower = CertificateFollower(
                url, token=TOKEN, on_offers=lambda o: https.offer("ingress", o), poll_timeout=2
            )
            task = asyncio.create_task(follower.run())
            try:
                bundle.set([offer(h.ca, "shop.example.com")])
                await eventually(lambda: https.catalog.book.covers("shop.example.com"), timeout=10)
                names, _ = await handshake(h.port, "shop.example.com", h.ca_file)
                assert names == ["shop.example.com"]
                bundle.set([offer(h.ca, "app.example.com")])  # the Ingress moved to another host
                await eventually(lambda: not https.catalog.book.covers("shop.example.com"), timeout=10)
                assert follower.version == 2
            finally:
                task.cancel()
    finally:
        await runner.cleanup()
