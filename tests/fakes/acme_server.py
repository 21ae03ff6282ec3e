"""A protocol-faithful fake ACME server (RFC 8555) on loopback, for the ACME client's tests.

What it enforces, as a real CA does: every POST is a flattened JWS (``application/jose+json``) with
``alg`` ES256 or RS256, a ``nonce`` it issued and has not seen used (else ``badNonce``), a ``url``
equal to the request URL, and exactly one of ``jwk`` (newAccount only) or ``kid`` (a known account);
the signature is verified against that key. Challenges are validated for real: dns-01 queries the
``_acme-challenge`` TXT over UDP at ``dns_address`` and compares it with
base64url(SHA-256(keyAuthorization)); http-01 fetches ``/.well-known/acme-challenge/<token>`` from
``http_address`` with the identifier as Host header. A wildcard identifier (``*.example.com``) gets
an authorization for the base name with ``wildcard: true`` and a dns-01 challenge only. Finalize
checks the CSR's signature and names and issues with ``LocalAuthority`` for the CSR's key.
``rate_limit`` makes newOrder answer ``rateLimited`` with ``Retry-After``. Served over plain HTTP
on loopback (a real CA is HTTPS only).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.rdatatype
import josepy as jose
from acme import jws as acme_jws
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ingressfed.tls.authority import LocalAuthority

ERR = "urn:ietf:params:acme:error:"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Problem(Exception):
    def __init__(self, kind: str, detail: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.kind, self.detail, self.status, self.headers = kind, detail, status, headers or {}


@dataclass
class _Authz:
    identifier: str  # without the "*." of a wildcard order (RFC 8555 §7.1.4)
    challenges: dict[str, dict[str, Any]]  # challenge id -> {type, token, status, error?}
    status: str = "pending"
    wildcard: bool = False


@dataclass
class _Order:
    account: str
    identifiers: list[str]
    authzs: list[str]
    status: str = "pending"
    certificate: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class FakeAcme:
    """Start with ``async with FakeAcme(...) as acme``; ``acme.directory_url`` is the client's input."""

    dns_address: tuple[str, int] | None = None  # the DNS server dns-01 is checked against
    http_address: tuple[str, int] | None = None  # the proxy http-01 is fetched through
    validity: datetime.timedelta = datetime.timedelta(days=90)
    rate_limit: float | None = None  # seconds of Retry-After on newOrder; None: no limit
    authority: LocalAuthority = field(default_factory=LocalAuthority)
    requests: Counter[str] = field(default_factory=Counter)
    validations: list[tuple[str, str, bool]] = field(default_factory=list)  # (type, host, ok)
    ordered: list[tuple[str, ...]] = field(default_factory=list)  # the identifiers of each new order
    accounts: dict[str, jose.JWK] = field(default_factory=dict)
    eab_keys: dict[str, bytes] = field(default_factory=dict)  # set: newAccount needs a binding (§7.3.4)
    contacts: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._nonces: set[str] = set()
        self._orders: dict[str, _Order] = {}
        self._authzs: dict[str, _Authz] = {}
        self._challenge_authz: dict[str, str] = {}
        self._certs: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.base = ""

    # -- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeAcme:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/directory", self._directory)
        app.router.add_get("/new-nonce", self._new_nonce)  # and HEAD
        app.router.add_post("/new-account", self._new_account)
        app.router.add_post("/new-order", self._new_order)
        app.router.add_post("/acct/{id}", self._account)
        app.router.add_post("/order/{id}", self._order)
        app.router.add_post("/order/{id}/finalize", self._finalize)
        app.router.add_post("/authz/{id}", self._authz)
        app.router.add_post("/chall/{id}", self._challenge)
        app.router.add_post("/cert/{id}", self._cert)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def directory_url(self) -> str:
        return f"{self.base}/directory"

    # -- plumbing ---------------------------------------------------------------------------------
    def _nonce(self) -> str:
        nonce = b64(secrets.token_bytes(16))
        self._nonces.add(nonce)
        return nonce

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests[request.path.split("/")[1]] += 1
        try:
            response: web.StreamResponse = await handler(request)
        except Problem as p:
            body = {"type": ERR + p.kind, "detail": p.detail, "status": p.status}
            response = web.json_response(
                body, status=p.status, content_type="application/problem+json", headers=p.headers
            )
        response.headers["Replay-Nonce"] = self._nonce()
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _verify(self, request: web.Request, *, new_account: bool = False) -> tuple[str, Any]:
        """The account URL (or the new key's thumbprint for newAccount) and the decoded payload."""
        if request.content_type != "application/jose+json":
            raise Problem("malformed", "Content-Type must be application/jose+json", 415)
        raw = await request.text()
        try:
            obj = json.loads(raw)
            if not {"protected", "payload", "signature"} <= set(obj) or "signatures" in obj:
                raise ValueError("not a flattened JWS")
            parsed = acme_jws.JWS.json_loads(raw)
        except (ValueError, jose.DeserializationError) as exc:
            raise Problem("malformed", f"not a flattened JWS: {exc}") from exc
        header = parsed.signature.combined
        if header.alg not in (jose.ES256, jose.RS256):
            raise Problem("badSignatureAlgorithm", f"alg {header.alg} not accepted (ES256, RS256)")
        if header.nonce is None:
            raise Problem("badNonce", "protected header has no nonce")
        nonce = b64(header.nonce)
        if nonce not in self._nonces:
            raise Problem("badNonce", "nonce unknown or already used")
        self._nonces.discard(nonce)
        if header.url != str(request.url):
            raise Problem("unauthorized", f"url {header.url!r} is not {str(request.url)!r}", 401)
        if (header.jwk is None) == (header.kid is None):
            raise Problem("malformed", "exactly one of jwk and kid must be in the protected header")
        if new_account:
            if header.jwk is None:
                raise Problem("malformed", "newAccount must carry jwk, not kid")
            key = header.jwk
            who = b64(key.thumbprint())
        else:
            if header.kid is None:
                raise Problem("malformed", "requests other than newAccount must carry kid")
            if header.kid not in self.accounts:
                raise Problem("accountDoesNotExist", f"no account {header.kid}", 400)
            key = self.accounts[header.kid]
            who = header.kid
        if not parsed.verify(key):
            raise Problem("unauthorized", "JWS signature does not verify", 401)
        payload = parsed.payload
        return who, (json.loads(payload) if payload else None)

    def _key_authorization(self, account: str, token: str) -> str:
        return f"{token}.{b64(self.accounts[account].thumbprint())}"

    # -- resources --------------------------------------------------------------------------------
    async def _directory(self, request: web.Request) -> web.Response:
        b = self.base
        return web.json_response(
            {
                "newNonce": f"{b}/new-nonce",
                "newAccount": f"{b}/new-account",
                "newOrder": f"{b}/new-order",
                "revokeCert": f"{b}/revoke-cert",
                "keyChange": f"{b}/key-change",
                "meta": {"termsOfService": f"{b}/terms"},
            }
        )

    async def _new_nonce(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if request.method == "HEAD" else 204)

    async def _new_account(self, request: web.Request) -> web.Response:
        thumb, payload = await self._verify(request, new_account=True)
        parsed = acme_jws.JWS.json_loads(await request.text())
        key = parsed.signature.combined.jwk
        for url, known in self.accounts.items():
            if b64(known.thumbprint()) == thumb:
                return web.json_response({"status": "valid"}, status=200, headers={"Location": url})
        if payload.get("onlyReturnExisting"):
            raise Problem("accountDoesNotExist", "no account for this key")
        if self.eab_keys:
            self._check_binding(payload.get("externalAccountBinding"), key, str(request.url))
        if not payload.get("termsOfServiceAgreed"):
            raise Problem("userActionRequired", "termsOfServiceAgreed must be true", 403)
        url = f"{self.base}/acct/{len(self.accounts) + 1}"
        self.accounts[url] = key
        self.contacts[url] = list(payload.get("contact") or [])
        body = {"status": "valid", "contact": self.contacts[url], "orders": f"{url}/orders"}
        return web.json_response(body, status=201, headers={"Location": url})

    def _check_binding(self, binding: Any, account_key: jose.JWK, url: str) -> None:
        """RFC 8555 §7.3.4: a JWS MACed with the CA-issued key over the account's public JWK."""
        if not isinstance(binding, dict) or not {"protected", "payload", "signature"} <= set(binding):
            raise Problem("externalAccountRequired", "this CA needs an externalAccountBinding")
        try:
            protected = json.loads(_unb64(binding["protected"]))
            bound = jose.JWK.from_json(json.loads(_unb64(binding["payload"])))
            mac = _unb64(binding["signature"])
        except (ValueError, TypeError, jose.DeserializationError) as exc:
            raise Problem("malformed", f"externalAccountBinding is not a JWS: {exc}") from exc
        digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
        if protected.get("alg") not in digests or "nonce" in protected:
            raise Problem("malformed", "externalAccountBinding needs an HS* alg and no nonce")
        if protected.get("url") != url:
            raise Problem("malformed", "externalAccountBinding url is not the newAccount URL")
        secret = self.eab_keys.get(protected.get("kid", ""))
        if secret is None:
            raise Problem("unauthorized", f"unknown external account {protected.get('kid')!r}", 403)
        signed = f"{binding['protected']}.{binding['payload']}".encode()
        expected = hmac.new(secret, signed, digests[protected["alg"]]).digest()
        if not hmac.compare_digest(expected, mac):
            raise Problem("unauthorized", "externalAccountBinding MAC does not verify", 403)
        if bound.thumbprint() != account_key.thumbprint():
            raise Problem("malformed", "externalAccountBinding binds another key than the request's")

    async def _account(self, request: web.Request) -> web.Response:
        who, _ = await self._verify(request)
        if who != str(request.url):
            raise Problem("unauthorized", "an account may only read itself", 403)
        return web.json_response({"status": "valid", "contact": self.contacts[who]})

    def _order_json(self, oid: str) -> dict[str, Any]:
        o = self._orders[oid]
        body: dict[str, Any] = {
            "status": o.status,
            "expires": (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=7)).isoformat(),
            "identifiers": [{"type": "dns", "value": v} for v in o.identifiers],
            "authorizations": [f"{self.base}/authz/{a}" for a in o.authzs],
            "finalize": f"{self.base}/order/{oid}/finalize",
        }
        if o.certificate:
            body["certificate"] = o.certificate
        if o.error:
            body["error"] = o.error
        return body

    async def _new_order(self, request: web.Request) -> web.Response:
        account, payload = await self._verify(request)
        if self.rate_limit is not None:
            raise Problem(
                "rateLimited",
                "too many new orders recently",
                429,
                {"Retry-After": str(int(self.rate_limit))},
            )
        idents = payload.get("identifiers") or []
        if not idents or any(i.get("type") != "dns" or not i.get("value") for i in idents):
            raise Problem("malformed", "identifiers must be a non-empty list of dns identifiers")
        names = [i["value"].lower() for i in idents]
        if any("*" in n and (not n.startswith("*.") or "*" in n[2:]) for n in names):
            raise Problem("rejectedIdentifier", "a wildcard is only allowed as the whole first label")
        authzs = []
        for name in names:
            aid = secrets.token_hex(6)
            chals = {}
            wildcard = name.startswith("*.")
            # A wildcard's authorization is for the base name and offers dns-01 only (§7.1.3, 8.4).
            for kind in ("dns-01",) if wildcard else ("http-01", "dns-01"):
                cid = secrets.token_hex(6)
                chals[cid] = {"type": kind, "token": b64(secrets.token_bytes(24)), "status": "pending"}
                self._challenge_authz[cid] = aid
            self._authzs[aid] = _Authz(name.removeprefix("*."), chals, wildcard=wildcard)
            authzs.append(aid)
        self.ordered.append(tuple(names))
        oid = secrets.token_hex(6)
        self._orders[oid] = _Order(account, names, authzs)
        return web.json_response(
            self._order_json(oid), status=201, headers={"Location": f"{self.base}/order/{oid}"}
        )

    def _own_order(self, account: str, oid: str) -> _Order:
        order = self._orders.get(oid)
        if order is None or order.account != account:
            raise Problem("malformed", f"no order {oid} for this account", 404)
        return order

    async def _order(self, request: web.Request) -> web.Response:
        account, payload = await self._verify(request)
        if payload is not None:
            raise Problem("malformed", "POST-as-GET must have an empty payload")
        oid = request.match_info["id"]
        self._own_order(account, oid)
        return web.json_response(self._order_json(oid))

    def _authz_json(self, aid: str) -> dict[str, Any]:
        a = self._authzs[aid]
        body: dict[str, Any] = {
            "status": a.status,
            "identifier": {"type": "dns", "value": a.identifier},
            "challenges": [self._challenge_json(cid) for cid in a.challenges],
        }
        if a.wildcard:
            body["wildcard"] = True
        return body

    def _challenge_json(self, cid: str) -> dict[str, Any]:
        c = self._authzs[self._challenge_authz[cid]].challenges[cid]
        return {"url": f"{self.base}/chall/{cid}", **c}

    async def _authz(self, request: web.Request) -> web.Response:
        await self._verify(request)
        aid = request.match_info["id"]
        if aid not in self._authzs:
            raise Problem("malformed", f"no authorization {aid}", 404)
        return web.json_response(self._authz_json(aid))

    async def _challenge(self, request: web.Request) -> web.Response:
        account, payload = await self._verify(request)
        cid = request.match_info["id"]
        aid = self._challenge_authz.get(cid)
        if aid is None:
            raise Problem("malformed", f"no challenge {cid}", 404)
        chal = self._authzs[aid].challenges[cid]
        if payload is not None and chal["status"] == "pending":  # {} = "ready, validate now"
            chal["status"] = "processing"
            task = asyncio.create_task(self._validate(account, aid, cid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(
            self._challenge_json(cid), headers={"Link": f'<{self.base}/authz/{aid}>;rel="up"'}
        )

    async def _validate(self, account: str, aid: str, cid: str) -> None:
        authz = self._authzs[aid]
        chal = authz.challenges[cid]
        expected = self._key_authorization(account, chal["token"])
        try:
            if chal["type"] == "dns-01":
                ok, why = await self._check_dns(authz.identifier, expected)
            else:
                ok, why = await self._check_http(authz.identifier, chal["token"], expected)
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        self.validations.append((chal["type"], authz.identifier, ok))
        chal["status"] = "valid" if ok else "invalid"
        authz.status = chal["status"]
        if not ok:
            chal["error"] = {
                "type": ERR + ("dns" if chal["type"] == "dns-01" else "incorrectResponse"),
                "detail": why,
            }
        for order in self._orders.values():
            if aid in order.authzs and order.status == "pending":
                states = {self._authzs[a].status for a in order.authzs}
                if "invalid" in states:
                    order.status, order.error = "invalid", chal.get("error")
                elif states == {"valid"}:
                    order.status = "ready"

    async def _check_dns(self, host: str, key_authorization: str) -> tuple[bool, str]:
        if self.dns_address is None:
            return False, "no DNS server configured for dns-01"
        want = b64(hashlib.sha256(key_authorization.encode()).digest())
        query = dns.message.make_query(f"_acme-challenge.{host}.", dns.rdatatype.TXT)
        answer = await dns.asyncquery.udp(query, self.dns_address[0], port=self.dns_address[1], timeout=3)
        found = [
            b"".join(r.strings).decode()
            for rrset in answer.answer
            for r in rrset
            if rrset.rdtype == dns.rdatatype.TXT
        ]
        return (want in found), f"TXT _acme-challenge.{host} = {found}, want {want}"

    async def _check_http(self, host: str, token: str, key_authorization: str) -> tuple[bool, str]:
        if self.http_address is None:
            return False, "no HTTP address configured for http-01"
        h, p = self.http_address
        url = f"http://{h}:{p}/.well-known/acme-challenge/{token}"
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers={"Host": host}, allow_redirects=False) as resp,
        ):
            body = (await resp.read()).decode(errors="replace").strip()
            return (resp.status == 200 and body == key_authorization), f"HTTP {resp.status} {body[:80]!r}"

    async def _finalize(self, request: web.Request) -> web.Response:
        account, payload = await self._verify(request)
        oid = request.match_info["id"]
        order = self._own_order(account, oid)
        if order.status != "ready":
            raise Problem("orderNotReady", f"order is {order.status}, not ready", 403)
        try:
            csr = x509.load_der_x509_csr(_unb64(payload["csr"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise Problem("badCSR", f"csr is not a base64url DER CSR: {exc}") from exc
        if not csr.is_signature_valid:
            raise Problem("badCSR", "CSR signature does not verify")
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = sorted(n.lower() for n in san.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = []
        if names != sorted(order.identifiers):
            raise Problem("badCSR", f"CSR names {names} are not the order's {sorted(order.identifiers)}")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Problem("badPublicKey", "this CA certifies EC keys only")
        now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
        issued = self.authority.issue(
            *order.identifiers, public_key=key, not_before=now, not_after=now + self.validity
        )
        self._certs[oid] = issued.cert_pem
        order.status, order.certificate = "valid", f"{self.base}/cert/{oid}"
        return web.json_response(self._order_json(oid), headers={"Location": f"{self.base}/order/{oid}"})

    async def _cert(self, request: web.Request) -> web.Response:
        account, _ = await self._verify(request)
        oid = request.match_info["id"]
        self._own_order(account, oid)
        return web.Response(body=self._certs[oid], content_type="application/pem-certificate-chain")
