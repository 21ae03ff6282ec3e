"""The fake ACME CA enforces RFC 8555's request rules, so a client that breaks them fails here as
it would against a real CA."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from tests.fakes.acme_server import FakeAcme

JOSE = {"Content-Type": "application/jose+json"}


@pytest.fixture
async def ca() -> AsyncIterator[FakeAcme]:
    async with FakeAcme() as server:
        yield server


class _Client:
    def __init__(self, ca: FakeAcme, session: aiohttp.ClientSession) -> None:
        self.ca, self.session = ca, session
        self.key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.kid: str | None = None

    async def nonce(self) -> str:
        async with self.session.head(f"{self.ca.base}/new-nonce") as resp:
            return resp.headers["Replay-Nonce"]

    def body(
        self, url: str, payload: Any, nonce: str, *, kid: str | None = None, key: JWKEC | None = None
    ) -> str:
        raw = b"" if payload is None else json.dumps(payload).encode()
        decoded = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        return acme_jws.JWS.sign(
            raw, key=key or self.key, alg=ES256, nonce=decoded, url=url, kid=kid
        ).json_dumps()

    async def post(self, url: str, data: str) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        async with self.session.post(url, data=data, headers=JOSE) as resp:
            return resp.status, await resp.json(content_type=None), resp.headers

    async def register(self) -> str:
        url = f"{self.ca.base}/new-account"
        status, _, headers = await self.post(
            url, self.body(url, {"termsOfServiceAgreed": True}, await self.nonce())
        )
        assert status == 201
        self.kid = str(headers["Location"])  # type: ignore[index]
        return self.kid


@pytest.fixture
async def client(ca: FakeAcme) -> AsyncIterator[_Client]:
    async with aiohttp.ClientSession() as session:
        yield _Client(ca, session)


async def test_a_nonce_is_single_use(client: _Client) -> None:
    kid = await client.register()
    url = f"{client.ca.base}/new-order"
    nonce = await client.nonce()
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    first = await client.post(url, client.body(url, order, nonce, kid=kid))
    again = await client.post(url, client.body(url, order, nonce, kid=kid))
    assert first[0] == 201
    assert again[0] == 400 and again[1]["type"] == "urn:ietf:params:acme:error:badNonce"
    assert "Replay-Nonce" in again[2]  # a fresh one to retry with


async def test_the_url_header_must_be_the_request_url(client: _Client) -> None:
    kid = await client.register()
    url = f"{client.ca.base}/new-order"
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    status, problem, _ = await client.post(
        url, client.body(f"{client.ca.base}/elsewhere", order, await client.nonce(), kid=kid)
    )
    assert status == 401 and problem["type"].endswith(":unauthorized")


async def test_new_account_needs_jwk_and_other_requests_need_a_known_kid(client: _Client) -> None:
    kid = await client.register()
    url = f"{client.ca.base}/new-order"
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    status, problem, _ = await client.post(url, client.body(url, order, await client.nonce()))  # jwk, no kid
    assert status == 400 and "kid" in problem["detail"]
    status, problem, _ = await client.post(url, client.body(url, order, await client.nonce(), kid=kid + "9"))
    assert problem["type"].endswith(":accountDoesNotExist")
    new = f"{client.ca.base}/new-account"
    status, problem, _ = await client.post(
        new, client.body(new, {"termsOfServiceAgreed": True}, await client.nonce(), kid=kid)
    )
    assert status == 400 and "jwk" in problem["detail"]


async def test_a_signature_by_another_key_is_refused(client: _Client) -> None:
    kid = await client.register()
    url = f"{client.ca.base}/new-order"
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    other = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    status, problem, _ = await client.post(
        url, client.body(url, order, await client.nonce(), kid=kid, key=other)
    )
    assert status == 401 and "signature" in problem["detail"]


async def test_rate_limited_answers_429_with_retry_after(client: _Client) -> None:
    kid = await client.register()
    client.ca.rate_limit = 120
    url = f"{client.ca.base}/new-order"
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    status, problem, headers = await client.post(url, client.body(url, order, await client.nonce(), kid=kid))
    assert status == 429 and problem["type"] == "urn:ietf:params:acme:error:rateLimited"
    assert headers["Retry-After"] == "120"  # type: ignore[index]


async def test_finalize_before_validation_is_refused(client: _Client) -> None:
    kid = await client.register()
    url = f"{client.ca.base}/new-order"
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    _, body, _ = await client.post(url, client.body(url, order, await client.nonce(), kid=kid))
    status, problem, _ = await client.post(
        body["finalize"], client.body(body["finalize"], {"csr": "AA"}, await client.nonce(), kid=kid)
    )
    assert status == 403 and problem["type"].endswith(":orderNotReady")
