"""ACME opted in per Ingress with ``federation.ingressfed.io/acme``, end to end: ``ingressfed run``
with a fake member cluster orders from the fake CA over dns-01 (validated through the embedded DNS
server) for the annotated hosts merged with ``tls.acme.hosts``, serves them by SNI, reports refused
annotations as Warning Events naming the annotation, and stops renewing and serving a host whose
Ingress goes away."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

from ingressfed.acme.hosts import plan_hosts
from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.kube.objects import ACME_KEY, Selection, ingress_from
from ingressfed.model import IngressObservation, IngressRule
from tests.fakes.acme_server import FakeAcme
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port, free_ports
from tests.kube.conftest import eventually, node
from tests.test_run_kubernetes import base_config, write_config
from tests.tls.test_ingress_tls_run import served_names

CONFIGURED = "cfg.example.com"


def annotated(name: str, host: str, acme: str, *, tls: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [{"host": host}]}
    if tls:
        spec["tls"] = [{"hosts": [host], "secretName": f"{name}-tls"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "annotations": {"federation.ingressfed.io/enabled": "true", ACME_KEY: acme},
        },
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
    }


def _orders_for(acme: FakeAcme, host: str) -> int:
    return sum(1 for names in acme.ordered if host in names)


async def test_annotated_ingress_hosts_are_ordered_served_and_dropped_when_they_leave(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    dns_port, https_port = free_ports(2)
    ca_file = tmp_path / "acme-ca.pem"
    # 20 days of validity against renewBeforeDays 30: every certificate is due again at once, so
    # the loop renews each managed host on every pass and a host that left visibly stops.
    async with (
        FakeAcme(dns_address=("127.0.0.1", dns_port), validity=datetime.timedelta(days=20)) as acme,
        FakeKubeAPI() as us,
    ):
        ca_file.write_bytes(acme.authority.ca_pem)
        us.write_kubeconfig(kubeconfig, context="us")
        us.add(node("n1", "us-east1", "us-east1-b"))
        doc = base_config(tmp_path, dns_port)
        doc["clusters"] = [{"name": "us", "kubeconfig": {"path": str(kubeconfig), "context": "us"}}]
        doc["proxy"] = {
            "enabled": True,
            "listen": f"127.0.0.1:{free_port()}",
            "adminListen": f"127.0.0.1:{free_port()}",
            "tls": {"listen": f"127.0.0.1:{https_port}"},
        }
        doc["tls"] = {
            "acme": {
                "directoryUrl": acme.directory_url,
                "hosts": [CONFIGURED],
                "stateDir": str(tmp_path / "acme"),
                "renewBeforeDays": 30,
                "checkInterval": 0.2,
                "propagationNameservers": [f"127.0.0.1:{dns_port}"],
                "propagationTimeout": 20,
            }
        }
        config = load_config(write_config(tmp_path, doc))
        async with start(config):
            us.add(annotated("web", "shop.example.com", "true"))
            # Refused: outside the zone for dns-01 (the host check), and not a host list at all.
            us.add(annotated("other", "shop.example.org", "shop.example.org"))
            us.add(annotated("typo", "blog.example.com", "yes please"))

            async def served(host: str) -> list[str] | None:
                return await served_names(https_port, host, ca_file)

            for host in ("shop.example.com", CONFIGURED):
                names = None
                for _ in range(300):
                    names = await served(host)
                    if names:
                        break
                    await asyncio.sleep(0.1)
                assert names == [host], f"{host} never served its ACME certificate"

            def acme_events() -> dict[str, str]:
                return {
                    e["involvedObject"]["name"]: e["message"]
                    for e in us.objects("events", "shop")
                    if ACME_KEY in e.get("message", "")
                }

            await eventually(lambda: set(acme_events()) == {"other", "typo"}, timeout=10, what="Events")
            events = acme_events()
            assert "outside federation.zone" in events["other"], events
            assert "use http-01" in events["other"], events
            assert "comma-separated" in events["typo"], events
            assert not any(
                "shop.example.org" in names or "blog.example.com" in names for names in acme.ordered
            ), acme.ordered
            assert await served("blog.example.com") is None

            # The Ingress goes: its host is no longer served nor renewed; the configured one is.
            us.delete("ingresses", "web", "shop")
            for _ in range(200):
                if await served("shop.example.com") is None:
                    break
                await asyncio.sleep(0.05)
            assert await served("shop.example.com") is None, "a host that left is still served"
            before = _orders_for(acme, "shop.example.com"), _orders_for(acme, CONFIGURED)
            await eventually(
                lambda: _orders_for(acme, CONFIGURED) >= before[1] + 2,
                timeout=20,
                what="two more renewals of the configured host",
            )
            assert _orders_for(acme, "shop.example.com") == before[0], acme.ordered
            assert await served(CONFIGURED) == [CONFIGURED]
        # Kept on disk: a host that comes back is served without a new order.
        assert (tmp_path / "acme" / "certs" / "shop.example.com.crt").exists()


def _ingress(name: str, hosts: tuple[str, ...], acme_hosts: tuple[str, ...]) -> IngressObservation:
    return IngressObservation(
        cluster="us",
        namespace="shop",
        name=name,
        rules=tuple(IngressRule(host=h) for h in hosts),
        acme_hosts=acme_hosts,
    )


def test_the_annotation_values() -> None:
    def parse(value: str, hosts: list[str], tls_hosts: list[str] | None = None) -> tuple[Any, list[str]]:
        obj = annotated("web", hosts[0], value)
        obj["spec"]["rules"] = [{"host": h} for h in hosts]
        if tls_hosts is not None:
            obj["spec"]["tls"] = [{"hosts": tls_hosts, "secretName": "s"}]
        mapped = ingress_from(obj, cluster="us", selection=Selection())
        assert mapped.value is not None
        return mapped.value.acme_hosts, [p.reason for p in mapped.problems]

    assert parse("true", ["b.example.com", "a.example.com"]) == (("a.example.com", "b.example.com"), [])
    assert parse(" TRUE ", ["a.example.com"]) == (("a.example.com",), [])
    assert parse("false", ["a.example.com"]) == ((), [])
    assert parse("a.example.com", ["a.example.com", "b.example.com"]) == (("a.example.com",), [])
    assert parse("b.example.com, a.example.com.", ["a.example.com", "b.example.com"]) == (
        ("a.example.com", "b.example.com"),
        [],
    )
    hosts, problems = parse("*.example.com", ["*.example.com"])
    assert hosts == ("*.example.com",) and problems == []
    # Every listed name must be one of this Ingress's own hosts; else none of them is taken.
    hosts, problems = parse("a.example.com,evil.example.net", ["a.example.com"])
    assert hosts == () and len(problems) == 1
    assert ACME_KEY in problems[0] and "evil.example.net" in problems[0], problems
    for bad in ("", "a..example.com", "yes", "a.example.com;b"):
        hosts, problems = parse(bad, ["a.example.com"])
        assert hosts == () and len(problems) == 1 and ACME_KEY in problems[0], (bad, problems)


def test_hosts_merge_and_a_refused_ingress_adds_none_of_its_hosts() -> None:
    plan = plan_hosts(
        ["cfg.example.com"],
        [
            _ingress("a", ("a.example.com", "cfg.example.com"), ("a.example.com", "cfg.example.com")),
            _ingress("b", ("b.example.com", "b.example.org"), ("b.example.com", "b.example.org")),
            _ingress("w", ("*.example.com",), ("*.example.com",)),
            _ingress("n", ("n.example.com",), ()),
        ],
        zone="example.com",
        challenge="dns-01",
    )
    assert plan.hosts == ("*.example.com", "a.example.com", "cfg.example.com")
    assert [(c, p.ref.name) for c, p in plan.problems] == [("us", "b")]
    assert "b.example.org" in plan.problems[0][1].reason and ACME_KEY in plan.problems[0][1].reason
    http = plan_hosts(
        [], [_ingress("w", ("*.example.com",), ("*.example.com",))], zone="", challenge="http-01"
    )
    assert http.hosts == ()
    assert "wildcard" in http.problems[0][1].reason and "dns-01" in http.problems[0][1].reason
