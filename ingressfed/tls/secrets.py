"""Ingress ``spec.tls`` Secrets as certificate offers, decided without I/O.

``tls_refs`` lists the Secrets a snapshot's federated Ingresses name (a Secret lives in its
Ingress's namespace, as Kubernetes requires); HTTPS Gateway listeners' ``certificateRefs`` become
``TlsRef`` values of kind Gateway (``gateway.certificates``), possibly in another namespace when a
ReferenceGrant allows it. ``offer_from_secret`` turns the Secret object the API
returned into an ``Offer`` or a ``SecretProblem``; ``problems_of`` says what is wrong with an
offer's certificate for its hosts at ``now``. Every message names the Secret and the fix and never
quotes its data.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ingressfed.model import Snapshot
from ingressfed.tls.book import Offer
from ingressfed.tls.certificate import CertificateError, PrivateKey, check, parse_pair

__all__ = ["SecretProblem", "TlsRef", "offer_from_secret", "problems_of", "tls_refs"]

TLS_TYPE = "kubernetes.io/tls"


@dataclass(frozen=True, slots=True)
class TlsRef:
    """One Ingress's ``spec.tls`` entry (or one Gateway listener's certificateRef) in one member
    cluster. ``ingress`` names the referring object, of ``kind``; the Secret is in
    ``secret_namespace`` when set, else in the referring object's namespace."""

    cluster: str
    namespace: str
    ingress: str
    secret: str
    hosts: tuple[str, ...]
    kind: str = "Ingress"  # Ingress | Gateway
    secret_namespace: str = ""
    listener: str = ""  # the Gateway listener (kind Gateway)

    @property
    def secret_ns(self) -> str:
        return self.secret_namespace or self.namespace

    @property
    def source(self) -> str:
        return f"secret:{self.cluster}/{self.secret_ns}/{self.secret}"

    @property
    def subject(self) -> str:
        where = f" listener {self.listener}" if self.listener else ""
        return f"{self.kind.lower()} {self.namespace}/{self.ingress}{where} in {self.cluster}"


@dataclass(frozen=True, slots=True)
class SecretProblem:
    ref: TlsRef
    reason: str  # SecretNotFound | SecretForbidden | WrongSecretType | MissingData | a certificate Problem
    detail: str

    def message(self) -> str:
        hosts = ", ".join(self.ref.hosts)
        return f"TLS Secret {self.ref.secret_ns}/{self.ref.secret} for {hosts}: {self.reason}: {self.detail}"


def tls_refs(snapshot: Snapshot) -> list[TlsRef]:
    refs = {
        TlsRef(i.cluster, i.namespace, i.name, t.secret_name, t.hosts)
        for i in snapshot.ingresses
        for t in i.tls
        if t.hosts
    }
    return sorted(refs, key=lambda r: (r.cluster, r.namespace, r.secret, r.ingress, r.hosts))


def _field(data: Mapping[str, object], key: str, ref: TlsRef) -> bytes | SecretProblem:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw:
        return SecretProblem(
            ref,
            "MissingData",
            f"data[{key!r}] is missing; a kubernetes.io/tls Secret holds tls.crt and tls.key",
        )
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return SecretProblem(ref, "MalformedSecret", f"data[{key!r}] is not base64")


def offer_from_secret(secret: object, ref: TlsRef) -> Offer | SecretProblem:
    if not isinstance(secret, Mapping):
        return SecretProblem(ref, "MalformedSecret", "the API returned something that is not a Secret")
    kind = secret.get("type")
    if kind != TLS_TYPE:
        return SecretProblem(
            ref,
            "WrongSecretType",
            f"type is {kind!r}; create it with kubectl create secret tls (type {TLS_TYPE})",
        )
    data = secret.get("data")
    if not isinstance(data, Mapping):
        data = {}
    cert = _field(data, "tls.crt", ref)
    if isinstance(cert, SecretProblem):
        return cert
    key = _field(data, "tls.key", ref)
    if isinstance(key, SecretProblem):
        return key
    return Offer(source=ref.source, cert_pem=cert, key=PrivateKey(key), hosts=ref.hosts, subject=ref.subject)


def problems_of(offers: Iterable[tuple[TlsRef, Offer]], *, now: datetime.datetime) -> list[SecretProblem]:
    """What is wrong with each offer's certificate for its hosts (parse, key match, validity, names)."""
    out: list[SecretProblem] = []
    for ref, offer in offers:
        try:
            cert = parse_pair(offer.cert_pem, offer.key.reveal())
        except CertificateError as exc:
            out.append(SecretProblem(ref, exc.problem.value, exc.detail))
            continue
        error = check(cert, hosts=ref.hosts, now=now)
        if error is not None:
            out.append(SecretProblem(ref, error.problem.value, error.detail))
    return out
