"""One ACME order, start to finish, with certbot's ``acme`` library (blocking: run it in a thread).

``order_certificate`` registers (or finds) the account, orders the hosts, hands each challenge to
``publish`` (which must make it answerable before returning), asks the CA to validate, finalizes
with a fresh P-256 key's CSR and returns the PEM chain and key. ``withdraw`` is called for every
published challenge whatever the outcome. A CA's ``rateLimited`` problem becomes ``RateLimited``
with its ``Retry-After``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.errors import DeserializationError
from josepy.jwa import ES256
from josepy.jwk import JWK, JWKEC

from ingressfed.tls.authority import key_pem

__all__ = ["AcmeFailure", "Challenge", "RateLimited", "order_certificate"]

log = logging.getLogger(__name__)

USER_AGENT = "ingressfed-acme"


class AcmeFailure(Exception):
    """An order that did not end with a certificate (the CA's problem detail in the message)."""


class RateLimited(AcmeFailure):
    def __init__(self, detail: str, retry_after: float | None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Challenge:
    """What the client must publish: dns-01 a TXT ``value`` at ``name``; http-01 the body
    ``value`` at ``/.well-known/acme-challenge/<token>`` for ``host``."""

    kind: str
    host: str
    name: str = ""
    token: str = ""
    value: str = field(default="", repr=False)


def _retry_after(response: requests.Response) -> float | None:
    header = response.headers.get("Retry-After")
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


class _Network(client.ClientNetwork):
    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as error:
            if error.code == "rateLimited":
                raise RateLimited(str(error), _retry_after(response)) from error
            raise


def _client(directory_url: str, account_key: ec.EllipticCurvePrivateKey, timeout: float) -> client.ClientV2:
    net = _Network(JWKEC(key=account_key), alg=ES256, user_agent=USER_AGENT, timeout=int(timeout))
    return client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)


def _register(
    acme: client.ClientV2,
    account_key: ec.EllipticCurvePrivateKey,
    email: str | None,
    eab: tuple[str, str] | None,
) -> None:
    binding: Any = None
    if eab is not None:
        binding = messages.ExternalAccountBinding.from_data(
            account_public_key=JWKEC(key=account_key.public_key()),
            kid=eab[0],
            hmac_key=eab[1],
            directory=acme.directory,
        )
    reg = messages.NewRegistration.from_data(
        email=email, terms_of_service_agreed=True, external_account_binding=binding
    )
    try:
        acme.new_account(reg)
    except errors.ConflictError as exists:  # the key already has an account: use it
        acme.net.account = messages.RegistrationResource(uri=exists.location, body=messages.Registration())


def _challenge_for(
    authz: messages.AuthorizationResource, kind: str, key: JWK
) -> tuple[messages.ChallengeBody, Challenge]:
    host = authz.body.identifier.value
    for challb in authz.body.challenges:
        chall = challb.chall
        if kind == "dns-01" and isinstance(chall, challenges.DNS01):
            return challb, Challenge(
                kind, host, name=chall.validation_domain_name(host), value=chall.validation(key)
            )
        if kind == "http-01" and isinstance(chall, challenges.HTTP01):
            return challb, Challenge(kind, host, token=chall.encode("token"), value=chall.validation(key))
    raise AcmeFailure(f"the CA offers no {kind} challenge for {host}")


def order_certificate(
    directory_url: str,
    account_key: ec.EllipticCurvePrivateKey,
    hosts: tuple[str, ...],
    *,
    kind: str,
    publish: Callable[[Challenge], None],
    withdraw: Callable[[Challenge], None],
    email: str | None = None,
    eab: tuple[str, str] | None = None,
    timeout: float = 90.0,
) -> tuple[bytes, bytes]:
    """(fullchain PEM, private key PEM) for ``hosts``; raises ``AcmeFailure`` / ``RateLimited``."""
    try:
        acme = _client(directory_url, account_key, timeout=min(timeout, 30.0))
        _register(acme, account_key, email, eab)
        cert_key = ec.generate_private_key(ec.SECP256R1())
        csr = crypto_util.make_csr(key_pem(cert_key), list(hosts))
        orderr = acme.new_order(csr)
        jwk: JWK = JWKEC(key=account_key)
        published: list[Challenge] = []
        try:
            answers = []
            for authz in orderr.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # the CA remembers an earlier validation
                challb, challenge = _challenge_for(authz, kind, jwk)
                publish(challenge)
                published.append(challenge)
                answers.append(challb)
            for challb in answers:
                acme.answer_challenge(challb, challb.chall.response(jwk))
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
            done = acme.poll_and_finalize(orderr, deadline=deadline)
        finally:
            for challenge in published:
                try:
                    withdraw(challenge)
                except Exception:
                    log.exception("withdrawing %s challenge for %s failed", challenge.kind, challenge.host)
    except RateLimited:
        raise
    except errors.ValidationError as exc:
        details = "; ".join(
            f"{a.body.identifier.value}: {c.error.detail if c.error else c.status}"
            for a in exc.failed_authzrs
            for c in a.body.challenges
            if c.chall.typ == kind
        )
        raise AcmeFailure(f"{kind} validation failed: {details}") from exc
    except (messages.Error, errors.Error, requests.RequestException, DeserializationError) as exc:
        raise AcmeFailure(f"{type(exc).__name__}: {exc}") from exc
    return done.fullchain_pem.encode(), key_pem(cert_key)
