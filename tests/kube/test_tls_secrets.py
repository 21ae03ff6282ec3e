"""Ingress spec.tls Secrets read from a member cluster: good ones become offers, each bad case one
Warning Event on the Ingress naming the Secret and the reason, never the key."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from ingressfed.kube.objects import Selection, ingress_from
from ingressfed.kube.tls_secrets import TlsSecretReader
from ingressfed.model import IngressObservation, IngressRule, IngressTLS, Snapshot
from ingressfed.tls.authority import Issued, LocalAuthority
from ingressfed.tls.book import Offer

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def secret(
    name: str,
    issued: Issued | None = None,
    *,
    ns: str = "shop",
    kind: str = "kubernetes.io/tls",
    **data: bytes,
) -> dict[str, Any]:
    values = dict(data)
    if issued is not None:
        values = {"tls.crt": issued.cert_pem, "tls.key": issued.key_pem, **values}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": kind,
        "data": {k: base64.b64encode(v).decode() for k, v in values.items()},
    }


def ingress(name: str, *entries: tuple[str, tuple[str, ...]]) -> IngressObservation:
    hosts = sorted({h for _, hs in entries for h in hs})
    return IngressObservation(
        cluster="c0",
        namespace="shop",
        name=name,
        rules=tuple(IngressRule(host=h) for h in hosts),
        tls=tuple(IngressTLS(hosts=hs, secret_name=s) for s, hs in entries),
    )


def test_spec_tls_is_read_from_the_ingress_with_rule_hosts_as_the_default() -> None:
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "annotations": {"federation.ingressfed.io/enabled": "true"},
        },
        "spec": {
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
            "tls": [
                {"hosts": ["a.example.com"], "secretName": "a-tls"},
                {"secretName": "all-tls"},
                {"secretName": "Bad Name"},
            ],
        },
    }
    mapped = ingress_from(obj, cluster="c0", selection=Selection(frozenset()))
    assert mapped.value is not None
    assert mapped.value.tls == (
        IngressTLS(hosts=("a.example.com",), secret_name="a-tls"),
        IngressTLS(hosts=("a.example.com", "b.example.com"), secret_name="all-tls"),
    )
    assert any("spec.tls[2].secretName" in p.reason for p in mapped.problems)


async def test_good_secrets_become_offers_and_each_bad_case_one_event(clusters) -> None:
    (fake,), _ = await clusters(1)
    ca = LocalAuthority()
    good = ca.issue("good.example.com")
    one, other = ca.issue("mismatch.example.com"), ca.issue("mismatch.example.com")
    fake.add(secret("good", good))
    fake.add(secret("mismatch", Issued(one.cert_pem, other.key_pem)))
    fake.add(
        secret("expired", ca.issue("expired.example.com", not_before=NOW - 9 * DAY, not_after=NOW - DAY))
    )
    fake.add(secret("future", ca.issue("future.example.com", not_before=NOW + DAY)))
    fake.add(secret("wrong-host", ca.issue("elsewhere.example.com")))
    fake.add(secret("garbage", **{"tls.crt": b"not a pem", "tls.key": good.key_pem}))
    fake.add(secret("opaque", good, kind="Opaque"))
    fake.add(secret("no-key", **{"tls.crt": good.cert_pem}))
    cases = {
        "good": "good.example.com",
        "mismatch": "mismatch.example.com",
        "expired": "expired.example.com",
        "future": "future.example.com",
        "wrong-host": "wronghost.example.com",
        "garbage": "garbage.example.com",
        "opaque": "opaque.example.com",
        "no-key": "nokey.example.com",
        "missing": "missing.example.com",
    }
    snapshot = Snapshot(ingresses=tuple(ingress(f"ing-{s}", (s, (h,))) for s, h in cases.items()))
    got: list[list[Offer]] = []
    async with fake.api_client() as api:
        registry = CollectorRegistry()
        reader = TlsSecretReader(
            lambda name: api if name == "c0" else None, on_offers=got.append, instance="t", registry=registry
        )
        reader.submit(snapshot)
        await reader.sync()
        reasons = {p.ref.secret: p.reason for p in reader.problems}
        assert reasons == {
            "mismatch": "KeyMismatch",
            "expired": "Expired",
            "future": "NotYetValid",
            "wrong-host": "HostNotCovered",
            "garbage": "MalformedCertificate",
            "opaque": "WrongSecretType",
            "no-key": "MissingData",
            "missing": "SecretNotFound",
        }
        events = fake.objects("events", "shop")
        assert len(events) == 8
        by_object = {e["involvedObject"]["name"]: e for e in events}
        assert set(by_object) == {f"ing-{s}" for s in reasons}
        for e in events:
            assert e["type"] == "Warning" and e["reason"] == "InvalidTLSSecret"
            assert e["involvedObject"]["kind"] == "Ingress"
            assert "-----BEGIN" not in e["message"]
            assert good.key_pem.decode()[40:80] not in e["message"]
        assert (
            "TLS Secret shop/mismatch for mismatch.example.com: KeyMismatch"
            in by_object["ing-mismatch"]["message"]
        )
        # Every Secret that could be read went to the catalogue (bad certificates are refused there).
        assert {o.source for o in got[-1]} == {
            f"secret:c0/shop/{s}" for s in ("good", "mismatch", "expired", "future", "wrong-host", "garbage")
        }
        assert registry.get_sample_value("ingressfed_tls_secret_problems", {"reason": "KeyMismatch"}) == 1
        assert registry.get_sample_value("ingressfed_tls_secret_problems", {"reason": "SecretNotFound"}) == 1
        # Nothing new: no new Events.
        await reader.sync()
        assert len(fake.objects("events", "shop")) == 8
        # Forbidden names the RBAC fix; an unreachable member keeps its last offers.
        fake.fail(403, resource="secrets")
        await reader.sync()
        assert "SecretForbidden" in {p.reason for p in reader.problems}
        assert "secret:c0/shop/good" in {o.source for o in got[-1]}  # kept: the host keeps its certificate
        assert any("grant it get on secrets" in e["message"] for e in fake.objects("events", "shop"))
        fake.clear_faults()
        fake.fail(503, resource="secrets")
        await reader.sync()
        assert "secret:c0/shop/good" in {o.source for o in got[-1]}


def test_the_ssl_redirect_annotation_reaches_the_route_and_the_feed() -> None:
    from ingressfed.core.routes import desired_routes
    from ingressfed.feed.view import FeedView, decode_view, encode_view
    from ingressfed.model import Cluster

    def obj(value: str) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "annotations": {
                    "federation.ingressfed.io/enabled": "true",
                    "federation.ingressfed.io/ssl-redirect": value,
                },
            },
            "spec": {"rules": [{"host": "a.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
        }

    on = ingress_from(obj("true"), cluster="c0", selection=Selection(frozenset()))
    off = ingress_from(obj("False"), cluster="c0", selection=Selection(frozenset()))
    bad = ingress_from(obj("yes"), cluster="c0", selection=Selection(frozenset()))
    assert on.value is not None and on.value.https_redirect is True
    assert off.value is not None and off.value.https_redirect is False
    assert bad.value is not None and bad.value.https_redirect is None
    assert any("ssl-redirect" in p.reason and "'yes'" in p.reason for p in bad.problems)
    [route] = desired_routes(
        Snapshot(clusters=(Cluster(name="c0", region="r", zone="z"),), ingresses=(on.value,))
    )
    assert route.https_redirect is True
    view = FeedView(version=1, records=(), routes=(route,), clusters=(), zone="example.com")
    assert decode_view(encode_view(view)).routes[0].https_redirect is True
