"""`ingressfed run` with source.kind=kubernetes, end to end through fake API servers and real DNS."""

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import yaml

from ingressfed.app import start
from ingressfed.config import load_config
from ingressfed.edge.report import ClusterReport, HealthReport, encode_report
from ingressfed.model import ClusterStatus
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port
from tests.kube.conftest import crd, endpoint_slice, eventually, node, service

G = "web.default.federation.svc.example.com"


async def a_records(port: int, name: str) -> set[str]:
    q = dns.message.make_query(name, "A")
    r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}


async def query(port: int, name: str) -> tuple[str, set[str]]:
    q = dns.message.make_query(name, "A")
    r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
    got = {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}
    return dns.rcode.to_text(r.rcode()), got


class DnsService(asyncio.DatagramProtocol):
    """One DNS Service in front of several replicas: each query goes to the next backend in turn."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.served: dict[int, int] = {}
        self._next = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        port = self.backends[self._next % len(self.backends)]
        self._next += 1
        self.served[port] = self.served.get(port, 0) + 1
        task = asyncio.ensure_future(self._forward(data, addr, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, data: bytes, addr: tuple[str, int], port: int) -> None:
        reply = await dns.asyncquery.udp(dns.message.from_wire(data), "127.0.0.1", port=port, timeout=2)
        assert self._transport is not None
        self._transport.sendto(reply.to_wire(), addr)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[int]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        try:
            yield transport.get_extra_info("sockname")[1]
        finally:
            transport.close()


def write_config(tmp: Path, doc: dict) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def base_config(tmp: Path, dns_port: int) -> dict:
    return {
        "federation": {"name": "federation", "zone": "example.com", "ownerId": "e2e"},
        "dns": {"provider": "embedded", "options": {"zoneFile": str(tmp / "zone.json")}},
        "source": {"kind": "kubernetes"},
        "health": {"period": 0.3, "timeout": 0.2, "failureThreshold": 1},
        "proxy": {"enabled": False},
        "dnsServer": {
            "listen": f"127.0.0.1:{dns_port}",
            "answers": "all",
            "zoneFile": str(tmp / "zone.json"),
        },
        "controller": {"listen": f"127.0.0.1:{free_port()}", "debounce": 0.05},
    }


def two_members(tmp_path: Path, us: FakeKubeAPI, eu: FakeKubeAPI, dns_port: int) -> dict:
    """A config of two members on fake API servers: ``us`` (a node in us-east1-b) and ``eu`` (one
    in europe-west1-b), both reached through one kubeconfig in ``tmp_path``."""
    kubeconfig = tmp_path / "kubeconfig"
    us.write_kubeconfig(kubeconfig, context="us")
    eu.write_kubeconfig(kubeconfig, context="eu")
    us.add(node("n1", "us-east1", "us-east1-b"))
    eu.add(node("n1", "europe-west1", "europe-west1-b"))
    doc = base_config(tmp_path, dns_port)
    doc["clusters"] = [
        {"name": "us", "kubeconfig": {"path": str(kubeconfig), "context": "us"}},
        {"name": "eu", "kubeconfig": {"path": str(kubeconfig), "context": "eu"}},
    ]
    return doc


async def test_services_in_member_clusters_reach_dns(tmp_path: Path) -> None:
    dns_port = free_port()
    async with FakeKubeAPI() as us, FakeKubeAPI() as eu:
        doc = two_members(tmp_path, us, eu, dns_port)
        # The data-plane signal below comes from an edge's health report, the one path that writes
        # it (the registry re-decides on its own clock; a direct Store write would be overwritten).
        (tmp_path / "edge-token").write_text("edge-secret\n")
        doc["edges"] = [{"name": "edge-eu", "cluster": "eu", "tokenFile": str(tmp_path / "edge-token")}]
        doc["edgeHealth"] = {"staleAfter": 120}
        config = load_config(write_config(tmp_path, doc))
        async with start(config) as running:
            us.add(service("web", ip="203.0.113.1"))
            us.add(endpoint_slice("web", ready=1))
            eu.add(service("web", ip="203.0.113.2"))
            eu.add(endpoint_slice("web", ready=0, not_ready=1))
            want_us = {"203.0.113.1"}
            got: set[str] = set()

            async def settled(want: set[str]) -> None:
                nonlocal got
                for _ in range(200):
                    got = await a_records(dns_port, G)
                    if got == want:
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError(f"DNS answered {got}, expected {want}")

            await settled(want_us)
            # The region names come from the members' node labels.
            assert await a_records(dns_port, "web.default.federation.svc.us-east1.example.com") == want_us
            eu.add(endpoint_slice("web", ready=2))
            await settled({"203.0.113.1", "203.0.113.2"})
            # The EU API server dies; with no data-plane signal its records leave DNS.
            await eu.stop()
            await eventually(
                lambda: (c := running.store.cluster("eu")) is not None and c.status is ClusterStatus.OFFLINE,
                what="eu Offline",
            )
            await settled(want_us)
            # ... unless the data plane still answers (the proxy's checks say so).
            report = HealthReport(
                edge="edge-eu",
                sequence=1,
                addresses=(),
                clusters=(ClusterReport("eu", (("203.0.113.2", 80, True),)),),
            )
            async with aiohttp.ClientSession() as http:
                posted = await http.post(
                    f"http://{config.controller.listen}/v1/edges/edge-eu/health",
                    data=encode_report(report),
                    headers={"Authorization": "Bearer edge-secret", "Content-Type": "application/json"},
                )
                assert posted.status == 204, await posted.text()
            await settled({"203.0.113.1", "203.0.113.2"})
            # A deleted Service leaves DNS.
            us.delete("services", "web", namespace="default")
            await settled({"203.0.113.2"})


async def test_two_replicas_one_leader_and_members_from_federatedclusters(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with FakeKubeAPI(identity="host") as host, FakeKubeAPI() as member:
        host.write_kubeconfig(kubeconfig, context="host")
        member.write_kubeconfig(kubeconfig, context="member", make_current=False)
        host.add(crd())
        host.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingressfed-system"}})
        member_kubeconfig = yaml.safe_dump(member.kubeconfig(context="member")).encode()
        host.add(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "member-kubeconfig", "namespace": "ingressfed-system"},
                "data": {"kubeconfig": base64.b64encode(member_kubeconfig).decode()},
            }
        )
        host.add(
            {
                "apiVersion": "ingressfed.io/v1alpha1",
                "kind": "FederatedCluster",
                "metadata": {"name": "member"},
                "spec": {
                    "region": "us-east1",
                    "zone": "us-east1-b",
                    "kubeconfigSecretRef": {
                        "namespace": "ingressfed-system",
                        "name": "member-kubeconfig",
                        "key": "kubeconfig",
                    },
                },
            }
        )
        member.add(service("web", ip="203.0.113.9"))
        member.add(endpoint_slice("web", ready=1))
        configs = []
        for i in range(2):
            d = tmp_path / f"r{i}"
            d.mkdir()
            doc = base_config(d, free_port())
            doc["source"]["hostKubeconfig"] = {"path": str(kubeconfig), "context": "host"}
            doc["leaderElection"] = {
                "enabled": True,
                "leaseDuration": 1.5,
                "renewDeadline": 1.0,
                "retryPeriod": 0.2,
            }
            configs.append(load_config(write_config(d, doc)))
        async with start(configs[0]) as a, start(configs[1]) as b:
            await eventually(lambda: a.controller.is_leader() or b.controller.is_leader(), what="a leader")
            for _ in range(10):
                # Never two writers; (a moment with none is allowed under load).
                assert not (a.controller.is_leader() and b.controller.is_leader())
                await asyncio.sleep(0.1)
            # Both replicas watch the member named by the FederatedCluster ...
            await eventually(lambda: bool(a.store.snapshot().services) and bool(b.store.snapshot().services))
            await eventually(lambda: a.controller.is_leader() or b.controller.is_leader(), what="a leader")
            leader, follower = (a, b) if a.controller.is_leader() else (b, a)
            await eventually(
                lambda: any(r.name == G for r in leader.controller.last.records), what="published"
            )
            # ... and, the embedded zone being each replica's own, the standby's zone is full too
            # (finding 2: it was empty, so half the queries behind one DNS Service got NXDOMAIN).
            await eventually(
                lambda: any(r.name == G for r in follower.controller.last.records), what="standby's zone"
            )
            service_ = DnsService([a.dns_server.port, b.dns_server.port])
            async with service_.listening() as port:
                answers = [await query(port, G) for _ in range(10)]
            assert answers == [("NOERROR", {"203.0.113.9"})] * 10
            assert service_.served == {a.dns_server.port: 5, b.dns_server.port: 5}
            # Followers of the feed are sent to the leader: the standby answers 503.
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{follower.http_port}/v1/feed?timeout=0") as resp:
                    assert resp.status == 503 and resp.headers["Retry-After"]
                async with http.get(f"http://127.0.0.1:{leader.http_port}/v1/feed?timeout=0") as resp:
                    assert resp.status == 200
