"""Route53 against moto in server mode (real HTTP on loopback): the contract plus Route53's rules.

Faults Route53 produces and moto does not (throttling, PriorRequestNotComplete,
a batch refused for one record) are injected at the HTTP layer with botocore's
``before-send`` hook: the provider's real response parsing and error mapping run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders

from ingressfed.core.desired import Desired, desired_records
from ingressfed.core.plan import plan
from ingressfed.errors import ConfigError, PermanentProviderError, TransientProviderError
from ingressfed.model import (
    Change,
    ChangeAction,
    Changes,
    Cluster,
    Federation,
    RecordSet,
    RecordType,
    Routing,
    ServiceObservation,
    Snapshot,
)
from ingressfed.testing import OWNER, ProviderContract, managed
from providers.base import Provider
from providers.batching import BatchLimits, split
from providers.route53 import (
    LATENCY_REGIONS,
    Route53Provider,
    RoutingMode,
    change_cost,
    decode_name,
    from_rrset,
    routed_problem,
    to_changes,
)

pytestmark = pytest.mark.usefixtures("aws_env")

FAST = {"retryBaseDelay": 0.001, "retryMaxDelay": 0.01}


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def create(rs: RecordSet) -> Change:
    return Change(ChangeAction.CREATE, new=rs)


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def error_response(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    body = (
        '<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>injected</RequestId></ErrorResponse>"
    ).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "text/xml"
    return AWSResponse(request.url, status, headers, _Body(body))


class Wire:
    """Watches (and optionally breaks) the provider's HTTP requests to the Route53 API."""

    def __init__(self, provider: Route53Provider) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.fail_next: list[tuple[int, str]] = []
        self.reject_names: set[str] = set()
        provider.client.meta.events.register("before-send.route53", self._before_send)  # type: ignore[arg-type]

    def _before_send(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        op = kwargs["event_name"].rsplit(".", 1)[-1]
        self.requests.append((op, body))
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return error_response(request, status, code, "Rate exceeded")
        if op == "ChangeResourceRecordSets":
            for name in self.reject_names:
                if f"<Name>{name}.</Name>".encode() in body:
                    return error_response(
                        request, 400, "InvalidChangeBatch", f"[RRSet with DNS name {name}. is not permitted]"
                    )
        return None

    def count(self, op: str) -> int:
        return sum(1 for o, _ in self.requests if o == op)

    def change_sizes(self) -> list[int]:
        return [body.count(b"<Change>") for o, body in self.requests if o == "ChangeResourceRecordSets"]


def new_zone(endpoint: str, *, private: bool = False, name: str | None = None) -> tuple[str, str]:
    client = boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1")
    zone = name or f"r{uuid.uuid4().hex[:10]}.example.com"
    extra: dict[str, Any] = {}
    if private:
        extra = {
            "HostedZoneConfig": {"PrivateZone": True},
            "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-1"},
        }
    answer = client.create_hosted_zone(Name=zone, CallerReference=uuid.uuid4().hex, **extra)
    return zone, answer["HostedZone"]["Id"].rsplit("/", 1)[-1]


@pytest.fixture
def make(moto_endpoint: str) -> Iterator[Callable[..., Route53Provider]]:
    made: list[Route53Provider] = []

    def factory(zone: str | None = None, **options: Any) -> Route53Provider:
        if zone is None:
            zone, _ = new_zone(moto_endpoint)
        p = Route53Provider(zone=zone, options={"endpointUrl": moto_endpoint, **FAST, **options})
        made.append(p)
        return p

    yield factory
    for p in made:
        p.client.close()


class TestRoute53Contract(ProviderContract):
    @pytest.fixture
    async def provider(self, moto_endpoint: str, aws_env: None) -> AsyncIterator[Provider]:
        zone, _ = new_zone(moto_endpoint)
        p = Route53Provider(zone=zone, options={"endpointUrl": moto_endpoint, "batchChangeSize": 10, **FAST})
        p.wire = Wire(p)  # type: ignore[attr-defined]
        yield p
        await p.close()

    def inject_transient(self, provider: Provider, count: int) -> bool:
        provider.wire.fail_next.extend([(400, "Throttling")] * count)  # type: ignore[attr-defined]
        return True

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        provider.wire.reject_names.add(name)  # type: ignore[attr-defined]
        return True

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        return provider.wire.change_sizes()  # type: ignore[attr-defined,no-any-return]

    def refuse_everything(self, provider: Provider) -> bool:
        provider.wire.fail_next.extend([(403, "AccessDenied")] * 100)  # type: ignore[attr-defined]
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        return len(provider.wire.requests)  # type: ignore[attr-defined]


# --- mapping ---------------------------------------------------------------------------------


def test_names_and_values_decode() -> None:
    assert decode_name("\\052.Example.COM.") == "*.example.com"
    assert decode_name("\\100.example.com.") == "@.example.com"
    raw = {
        "Name": "www.example.com.",
        "Type": "CNAME",
        "TTL": 60,
        "ResourceRecords": [{"Value": "LB.example.NET."}],
    }
    assert from_rrset(raw) == RecordSet("www.example.com", RecordType.CNAME, 60, ("lb.example.net",))
    txt = {"Name": "t.example.com.", "Type": "TXT", "TTL": 5, "ResourceRecords": [{"Value": '"a b" "c"'}]}
    assert from_rrset(txt) == RecordSet("t.example.com", RecordType.TXT, 5, ('"a b" "c"',))
    alias = {"Name": "x.example.com.", "Type": "A", "AliasTarget": {"DNSName": "d.", "HostedZoneId": "Z"}}
    assert from_rrset(alias) is None
    assert from_rrset({"Name": "m.example.com.", "Type": "MX", "TTL": 5, "ResourceRecords": []}) is None


def test_update_is_upsert_and_type_change_is_delete_create() -> None:
    old, new = a("w.example.com", "192.0.2.1"), a("w.example.com", "192.0.2.2")
    assert [c["Action"] for c in to_changes(Change(ChangeAction.UPDATE, old=old, new=new))] == ["UPSERT"]
    cname = RecordSet("w.example.com", RecordType.CNAME, 30, ("lb.example.net",))
    swap = to_changes(Change(ChangeAction.UPDATE, old=old, new=cname))
    assert [(c["Action"], c["ResourceRecordSet"]["Type"]) for c in swap] == [
        ("DELETE", "A"),
        ("CREATE", "CNAME"),
    ]
    assert swap[1]["ResourceRecordSet"]["ResourceRecords"] == [{"Value": "lb.example.net."}]
    assert "Weight" not in swap[1]["ResourceRecordSet"]


def test_batches_respect_route53_limits() -> None:
    # UPSERTs count twice: at most 500 single-value UPSERTs per request.
    upserts = Changes(
        tuple(
            Change(
                ChangeAction.UPDATE,
                old=a(f"n{i}.example.com", "192.0.2.1"),
                new=a(f"n{i}.example.com", "192.0.2.2"),
            )
            for i in range(1200)
        )
    )
    limits = BatchLimits(max_changes=1000, max_values=1000, max_chars=32000)
    assert [len(b) for b in split(upserts, limits, cost=change_cost)] == [500, 500, 200]
    creates = Changes(tuple(create(a(f"n{i}.example.com", "192.0.2.1")) for i in range(2500)))
    assert [len(b) for b in split(creates, limits, cost=change_cost)] == [1000, 1000, 500]
    # 32,000 characters: TXT sets of about 1,000 characters go 31 to a request.
    texts = Changes(
        tuple(
            create(
                RecordSet(
                    f"t{i}.example.com", RecordType.TXT, 30, tuple(f'"{j}{"x" * 249}"' for j in range(4))
                )
            )
            for i in range(70)
        )
    )
    per_set = change_cost(texts.items[0]).chars
    assert per_set == 4 * 252
    sizes = [len(b) for b in split(texts, limits, cost=change_cost)]
    assert sizes == [32000 // per_set, 32000 // per_set, 70 - 2 * (32000 // per_set)]


@pytest.mark.parametrize(
    ("routing", "mode", "fragment"),
    [
        (Routing("c", "us-east1"), RoutingMode.LATENCY, "not a Route53 latency region"),
        (Routing("c", "mars-north-1"), RoutingMode.LATENCY, "not a Route53 latency region"),
        (Routing("c", "", continent="XX"), RoutingMode.GEOLOCATION, "not a Route53 continent"),
        (Routing("c", "", country="ZZ"), RoutingMode.GEOLOCATION, "not an ISO 3166-1"),
        (Routing("c", "", continent="EU", country="DE"), RoutingMode.GEOLOCATION, "exactly one"),
        (Routing("c", "", continent="EU"), RoutingMode.LATENCY, "cannot carry a geolocation"),
        (Routing("c", "us-east-1"), RoutingMode.GEOLOCATION, "cannot carry a latency Region"),
        (Routing("c", "us-east-1"), RoutingMode.NONE, "need dns.options.routing"),
    ],
)
def test_routing_validation_rejects_what_route53_would(
    routing: Routing, mode: RoutingMode, fragment: str
) -> None:
    rs = RecordSet("w.example.com", RecordType.A, 30, ("192.0.2.1",), "c", routing)
    problem = routed_problem(rs, mode)
    assert problem is not None
    assert fragment in problem


def test_routing_validation_accepts_real_codes() -> None:
    for routing, mode in [
        (Routing("c", "eu-west-1"), RoutingMode.LATENCY),
        (Routing("c", "", continent="OC"), RoutingMode.GEOLOCATION),
        (Routing("c", "", country="UA"), RoutingMode.GEOLOCATION),
        (Routing("c", "", country="*"), RoutingMode.GEOLOCATION),
    ]:
        assert (
            routed_problem(RecordSet("w.example.com", RecordType.A, 30, ("192.0.2.1",), "c", routing), mode)
            is None
        )
    assert {"us-east-1", "eu-west-1", "ap-northeast-1", "sa-east-1"} <= LATENCY_REGIONS


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"routing": "weighted"}, "dns.options.routing"),
        ({"batchChangeSize": 5000}, "dns.options.batchChangeSize"),
        ({"latencyRegions": {"us-east1": "us-east1"}}, "dns.options.latencyRegions.us-east1"),
        ({"geolocation": {"c1": {"continent": "XX"}}}, "dns.options.geolocation.c1"),
        ({"zoneType": "secret"}, "dns.options.zoneType"),
        ({"hostedZone": "Z1"}, "dns.options.hostedZone"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        Route53Provider(zone="example.com", options=options)


# --- against moto ------------------------------------------------------------------------------


async def test_pagination_over_many_sets(make: Callable[..., Route53Provider]) -> None:
    p = make()
    wire = Wire(p)
    sets = [a(f"n{i:04d}.{p.zone}", "192.0.2.1") for i in range(650)]
    result = await p.apply(Changes(tuple(create(rs) for rs in sets)))
    assert result.failed == {}
    assert wire.count("ChangeResourceRecordSets") == 1
    records = await p.records()
    assert set(sets) <= set(records)
    assert len(records) == 652  # plus SOA and NS at the apex
    assert wire.count("ListResourceRecordSets") == 3  # pages of 300


async def test_pagination_across_routed_sets(make: Callable[..., Route53Provider]) -> None:
    p = make(routing="latency", listPageSize=7)
    regions = ["us-east-1", "eu-west-1", "ap-northeast-1"]
    sets = [
        RecordSet(f"n{i:02d}.{p.zone}", RecordType.A, 30, (f"192.0.2.{j + 1}",), r, Routing(r, r))
        for i in range(10)
        for j, r in enumerate(regions)
    ]
    result = await p.apply(Changes(tuple(create(rs) for rs in sets)))
    assert result.failed == {}
    records = await p.records()
    assert set(sets) <= set(records)
    assert len(records) == len(set(records)) == 32  # SOA, NS and 30 routed sets, each once


async def test_initial_sync_uses_ceil_changes_over_limit_calls(make: Callable[..., Route53Provider]) -> None:
    p = make()
    wire = Wire(p)
    creates = Changes(tuple(create(a(f"n{i}.{p.zone}", "192.0.2.1")) for i in range(2100)))
    result = await p.apply(creates)
    assert result.applied == 2100
    assert wire.change_sizes() == [1000, 1000, 100]
    upserts = Changes(
        tuple(
            Change(ChangeAction.UPDATE, old=c.new, new=a(c.record.name, "192.0.2.2"))
            for c in creates.items[:600]
            if c.new
        )
    )
    result = await p.apply(upserts)
    assert result.applied == 600
    assert wire.change_sizes()[3:] == [500, 100]
    assert a(f"n5.{p.zone}", "192.0.2.2") in await p.records()


@pytest.mark.parametrize("code", ["Throttling", "PriorRequestNotComplete", "ThrottlingException"])
async def test_throttling_is_retried(make: Callable[..., Route53Provider], code: str) -> None:
    p = make()
    await p.zone_id()
    wire = Wire(p)
    wire.fail_next = [(400, code), (400, code), (503, "ServiceUnavailable")]
    result = await p.apply(Changes((create(a(f"www.{p.zone}", "192.0.2.1")),)))
    assert result.applied == 1
    assert wire.count("ChangeResourceRecordSets") == 4
    assert p.calls["ChangeResourceRecordSets"] == 4


async def test_throttling_beyond_retries_is_transient(make: Callable[..., Route53Provider]) -> None:
    p = make(maxRetries=1)
    await p.zone_id()
    wire = Wire(p)
    wire.fail_next = [(400, "Throttling")] * 2
    with pytest.raises(TransientProviderError, match="Throttling"):
        await p.apply(Changes((create(a(f"www.{p.zone}", "192.0.2.1")),)))
    assert wire.count("ChangeResourceRecordSets") == 2


async def test_server_rejection_is_isolated_by_record_name(make: Callable[..., Route53Provider]) -> None:
    """moto itself refuses the DELETE of a set that is not there; the rest still applies."""
    p = make()
    wire = Wire(p)
    missing = a(f"missing.{p.zone}", "192.0.2.1")
    batch = Changes(
        (
            create(a(f"one.{p.zone}", "192.0.2.1")),
            Change(ChangeAction.DELETE, old=missing),
            create(a(f"two.{p.zone}", "192.0.2.2")),
        )
    )
    result = await p.apply(batch)  # no records() first: nothing is known, the server judges
    assert list(result.failed) == [missing.name]
    assert "InvalidInput" in result.failed[missing.name]
    assert result.applied == 2
    assert {a(f"one.{p.zone}", "192.0.2.1"), a(f"two.{p.zone}", "192.0.2.2")} <= set(await p.records())
    assert wire.count("ChangeResourceRecordSets") == 2  # the refused batch, then the rest


async def test_refused_before_sending(make: Callable[..., Route53Provider]) -> None:
    """What moto would accept but Route53 refuses never goes out."""
    p = make(routing="latency")
    wire = Wire(p)
    await p.records()
    z = p.zone
    latency = RecordSet(f"mix.{z}", RecordType.A, 30, ("192.0.2.1",), "c1", Routing("c1", "us-east-1"))
    await p.apply(Changes((create(latency),)))
    sent = wire.count("ChangeResourceRecordSets")
    geo = RecordSet(f"mix.{z}", RecordType.A, 30, ("192.0.2.2",), "c2", Routing("c2", "", continent="EU"))
    plain = a(f"mix.{z}", "192.0.2.3")
    bad_geo = RecordSet(f"geo.{z}", RecordType.A, 30, ("192.0.2.4",), "c3", Routing("c3", "", country="ZZ"))
    apex = RecordSet(z, RecordType.CNAME, 30, ("elsewhere.example.net",))
    again = a(f"exists.{z}", "192.0.2.5")
    await p.apply(Changes((create(again),)))
    sent += 1
    for change, fragment in [
        (create(geo), "geolocation"),
        (create(plain), "mixes routing policies"),
        (create(bad_geo), "not a Route53 latency region"),  # latency mode: a geo set is refused
        (create(apex), "zone apex"),
        (create(a(f"exists.{z}", "192.0.2.6")), "already exists"),
        (Change(ChangeAction.DELETE, old=a(f"missing.{z}", "192.0.2.7")), "not there"),
    ]:
        result = await p.apply(Changes((change,)))
        assert change.record.name in result.failed, change
        assert fragment in result.failed[change.record.name] or "latency" in result.failed[change.record.name]
    assert wire.count("ChangeResourceRecordSets") == sent


def snapshot(*regions: tuple[str, str], services: int = 1) -> tuple[Federation, Snapshot]:
    fed = Federation(name="federation", suffix="", owner_id=OWNER)
    clusters = tuple(Cluster(name=f"c-{zone}", region=region, zone=zone) for region, zone in regions)
    obs = tuple(
        ServiceObservation(c.name, "default", f"svc{s}", 1, (f"192.0.2.{i + 1}",))
        for s in range(services)
        for i, c in enumerate(clusters)
    )
    return fed, Snapshot(clusters=clusters, services=obs)


async def converge_routed(p: Route53Provider, fed: Federation, snap: Snapshot) -> tuple[int, list[RecordSet]]:
    desired = desired_records(fed, snap, routed=True)
    resource = {d.record.name: d.resource for d in desired}
    adjusted = [Desired(rs, resource[rs.name]) for rs in p.adjust([d.record for d in desired])]
    current = await p.records()
    result = await p.apply(plan(current, adjusted, owner_id=OWNER, policy=fed.policy).changes)
    assert result.failed == {}
    after = await p.records()
    return len(plan(after, adjusted, owner_id=OWNER, policy=fed.policy).changes), after


async def test_latency_records_end_to_end(make: Callable[..., Route53Provider]) -> None:
    p = make(routing="latency", latencyRegions={"asia-east1": "ap-east-1"})
    fed, snap = snapshot(
        ("us-east1", "us-east1-b"), ("europe-west1", "europe-west1-b"), ("asia-east1", "asia-east1-a")
    )
    fed = Federation(name=fed.name, suffix=p.zone, owner_id=OWNER)
    left, records = await converge_routed(p, fed, snap)
    assert left == 0  # read back exactly as adjusted: no flapping
    glob = f"svc0.default.federation.svc.{p.zone}"
    routed = {rs.set_identifier: rs.routing.region for rs in records if rs.name == glob and rs.routing}
    assert routed == {
        "c-us-east1-b": "us-east-1",
        "c-europe-west1-b": routed["c-europe-west1-b"],
        "c-asia-east1-a": "ap-east-1",
    }
    assert routed["c-europe-west1-b"] in {"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"}
    # The region level has one cluster: a plain set, no routing.
    region_level = f"svc0.default.federation.svc.us-east1.{p.zone}"
    assert next(rs for rs in records if rs.name == region_level).routing is None


async def test_geolocation_records_end_to_end(make: Callable[..., Route53Provider]) -> None:
    p = make(routing="geolocation", geolocation={"c-asia-east1-a": {"country": "TW"}})
    fed, snap = snapshot(
        ("us-east1", "us-east1-b"), ("europe-west1", "europe-west1-b"), ("asia-east1", "asia-east1-a")
    )
    fed = Federation(name=fed.name, suffix=p.zone, owner_id=OWNER)
    left, records = await converge_routed(p, fed, snap)
    assert left == 0
    glob = f"svc0.default.federation.svc.{p.zone}"
    geo = {
        rs.set_identifier: (rs.routing.continent, rs.routing.country)
        for rs in records
        if rs.name == glob and rs.routing
    }
    assert geo == {
        "c-us-east1-b": ("NA", None),
        "c-europe-west1-b": ("EU", None),
        "c-asia-east1-a": (None, "TW"),
        "default": (None, "*"),
    }
    default = next(rs for rs in records if rs.name == glob and rs.set_identifier == "default")
    assert default.values == ("192.0.2.1", "192.0.2.2", "192.0.2.3")


async def test_health_checks_created_and_attached(
    make: Callable[..., Route53Provider], moto_endpoint: str
) -> None:
    p = make(
        routing="latency",
        healthCheck={"port": 8080, "path": "/readyz"},
        healthCheckIds={"c-asia-east1-a": "hc-given"},
    )
    fed, snap = snapshot(
        ("us-east1", "us-east1-b"), ("europe-west1", "europe-west1-b"), ("asia-east1", "asia-east1-a")
    )
    fed = Federation(name=fed.name, suffix=p.zone, owner_id=OWNER)
    left, _ = await converge_routed(p, fed, snap)
    assert left == 0
    client = boto3.client("route53", endpoint_url=moto_endpoint, region_name="us-east-1")
    zone_id = await p.zone_id()
    raw = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    glob = f"svc0.default.federation.svc.{p.zone}."
    by_ident = {
        r["SetIdentifier"]: r.get("HealthCheckId") for r in raw if r["Name"] == glob and "SetIdentifier" in r
    }
    assert by_ident["c-asia-east1-a"] == "hc-given"
    checks = {hc["Id"]: hc["HealthCheckConfig"] for hc in client.list_health_checks()["HealthChecks"]}
    for ident in ("c-us-east1-b", "c-europe-west1-b"):
        check_id = by_ident[ident]
        assert check_id is not None
        cfg = checks[check_id]
        assert (cfg["Port"], cfg["ResourcePath"], cfg["Type"]) == (8080, "/readyz", "HTTP")
    # Withdrawing the service deletes the routed sets (the DELETE carries the health check id).
    result = await p.apply(plan(await p.records(), [], owner_id=OWNER).changes)
    assert result.failed == {}
    assert {rs.name for rs in managed(await p.records())} <= {p.zone}


async def test_geolocation_default_set_has_no_health_check(
    make: Callable[..., Route53Provider], moto_endpoint: str
) -> None:
    p = make(routing="geolocation", healthCheck={"port": 80})
    fed, snap = snapshot(("us-east1", "us-east1-b"), ("europe-west1", "europe-west1-b"))
    fed = Federation(name=fed.name, suffix=p.zone, owner_id=OWNER)
    left, _ = await converge_routed(p, fed, snap)
    assert left == 0
    client = boto3.client("route53", endpoint_url=moto_endpoint, region_name="us-east-1")
    raw = client.list_resource_record_sets(HostedZoneId=await p.zone_id())["ResourceRecordSets"]
    glob = f"svc0.default.federation.svc.{p.zone}."
    checks = {
        r["SetIdentifier"]: r.get("HealthCheckId") for r in raw if r["Name"] == glob and "SetIdentifier" in r
    }
    assert checks["default"] is None
    assert checks["c-us-east1-b"] and checks["c-europe-west1-b"]
    assert checks["c-us-east1-b"] != checks["c-europe-west1-b"]


async def test_zone_selection_public_private(
    make: Callable[..., Route53Provider], moto_endpoint: str
) -> None:
    zone, public_id = new_zone(moto_endpoint)
    _, private_id = new_zone(moto_endpoint, private=True, name=zone)
    with pytest.raises(PermanentProviderError, match=r"set dns\.options\.zoneType"):
        await make(zone).zone_id()
    assert await make(zone, zoneType="private").zone_id() == private_id
    assert await make(zone, zoneType="public").zone_id() == public_id
    assert await make(zone, hostedZoneId=public_id).zone_id() == public_id
    with pytest.raises(PermanentProviderError, match=r"no hosted zone named nothere\.example\.com"):
        await make("nothere.example.com").zone_id()


async def test_wildcard_and_txt_round_trip(make: Callable[..., Route53Provider]) -> None:
    p = make()
    sets = [
        a(f"*.{p.zone}", "192.0.2.1"),
        RecordSet(f"t.{p.zone}", RecordType.TXT, 30, ('"heritage=ingressfed,a=b"', '"two" "parts"')),
    ]
    assert (await p.apply(Changes(tuple(create(rs) for rs in sets)))).failed == {}
    assert set(sets) <= set(await p.records())


async def test_auth_error_without_code_names_status_and_fix(make: Callable[..., Route53Provider]) -> None:
    p = make()
    await p.records()
    wire = Wire(p)
    wire.fail_next.append((403, ""))
    changes = Changes(tuple(create(a(f"h{i}.{p.zone}", "192.0.2.1")) for i in range(16)))
    with pytest.raises(PermanentProviderError) as err:
        await p.apply(changes)
    text = str(err.value)
    assert "HTTP 403" in text and "(no error code)" in text and "route53:ChangeResourceRecordSets" in text
    assert ": : " not in text and err.value.batch_wide
    assert wire.count("ChangeResourceRecordSets") == 1


async def test_health_checks_of_gone_addresses_are_deleted_only_ours(
    make: Callable[..., Route53Provider], moto_endpoint: str
) -> None:
    client = boto3.client("route53", endpoint_url=moto_endpoint, region_name="us-east-1")
    hc_config: Any = {"IPAddress": "192.0.2.1", "Port": 80, "Type": "HTTP", "ResourcePath": "/"}
    foreign = client.create_health_check(CallerReference=uuid.uuid4().hex, HealthCheckConfig=hc_config)
    foreign_id = foreign["HealthCheck"]["Id"]  # same address as ours, but not tagged: never touched
    p = make(routing="latency", healthCheck={"port": 8080, "path": "/readyz"})
    three = (("us-east1", "us-east1-b"), ("europe-west1", "europe-west1-b"), ("asia-east1", "asia-east1-a"))
    fed, snap = snapshot(*three)
    fed = Federation(name=fed.name, suffix=p.zone, owner_id=OWNER)
    left, _ = await converge_routed(p, fed, snap)
    assert left == 0

    def our_checks() -> dict[str, str]:
        out = {}
        for hc in client.list_health_checks(MaxItems="1000")["HealthChecks"]:
            tags = client.list_tags_for_resource(ResourceType="healthcheck", ResourceId=hc["Id"])
            values = {t["Key"]: t["Value"] for t in tags["ResourceTagSet"].get("Tags", [])}
            if values.get("ingressfed/zone") == p.zone:
                out[hc["HealthCheckConfig"]["IPAddress"]] = hc["Id"]
        return out

    assert set(our_checks()) == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}  # tagged with the zone
    # The asia cluster goes away: its address leaves the desired state, and so does its check.
    _, snap2 = snapshot(*three[:2])
    left, _ = await converge_routed(p, fed, Snapshot(clusters=snap.clusters, services=snap2.services))
    assert left == 0
    assert set(our_checks()) == {"192.0.2.1", "192.0.2.2"}
    await p.apply(plan(await p.records(), [], owner_id=OWNER).changes)
    assert our_checks() == {}
    ids = {hc["Id"] for hc in client.list_health_checks(MaxItems="1000")["HealthChecks"]}
    assert foreign_id in ids
