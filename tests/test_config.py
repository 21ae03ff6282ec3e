from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ingressfed.config import (
    Config,
    check_command,
    check_config,
    load_config,
    load_objects,
    parse_config,
    split_host_port,
)
from ingressfed.errors import ConfigError
from ingressfed.model import (
    Cluster,
    ClusterStatus,
    Federation,
    IngressObservation,
    IngressRule,
    Location,
    Policy,
    ServiceObservation,
)

FULL = """\
federation:
  name: federation
  zone: Example.COM.
  ttl: 60
  ownerId: ingressfed-test
  policy: upsert-only
  globalAddresses: [203.0.113.10, "2001:db8::10"]
  globalHostnames: [lb.example.net]
dns:
  provider: inmemory
  options: {anything: [1, 2]}
  dryRun: true
  routing: latency
clusters:
  - name: cluster-us-east1-b
    region: us-east1
    zone: us-east1-b
    location: {lat: 33.2, lon: -80.0}
    weight: 200
    kubeconfig:
      path: ~/.kube/config
      context: gke_us-east1
      secretRef: {namespace: ingressfed-system, name: cluster-us-east1-b-kubeconfig}
  - name: cluster-europe-west1-b
    zone: europe-west1-b
  - name: cluster-off
    zone: asia-east1-a
    disabled: true
source:
  kind: static
  file: objects.yaml
health: {period: 5, timeout: 1, failureThreshold: 2, successThreshold: 2}
geo:
  database: geo.mmdb
  trustedProxies: [127.0.0.1/32, "::1", 10.0.0.0/8]
  defaultOrder: [cluster-europe-west1-b]
proxy:
  listen: "[::]:8443"
  adminListen: localhost:8081
  clusterHeader: ""
  healthCheck: {path: /ready, interval: 3, timeout: 1, unhealthyThreshold: 3, healthyThreshold: 1}
  timeouts: {connect: 1, read: 10, idle: 30}
  limits: {maxBodyBytes: 0, maxHeaderBytes: 8192}
dnsServer: {enabled: true, listen: "127.0.0.1:53", answers: all, zoneFile: zone.json}
controller: {listen: "0.0.0.0:9090", debounce: 0, resync: 30, feedTokenFile: token}
leaderElection: {enabled: true, leaseDuration: 20, renewDeadline: 15, retryPeriod: 3}
"""

OBJECTS = """\
services:
  - {cluster: cluster-us-east1-b, namespace: default, name: k8shserver, readyEndpoints: 2,
     addresses: [127.0.0.11, "::1"], hostnames: [], ttl: null}
  - {cluster: cluster-europe-west1-b, namespace: default, name: k8shserver, readyEndpoints: 0,
     hostnames: [abc.elb.amazonaws.com], ttl: 120}
ingresses:
  - cluster: cluster-us-east1-b
    namespace: default
    name: k8shserver.web
    rules: [{host: k8shserver.example.com, path: /, pathType: Prefix}, {host: api.example.com, path: /v1}]
    addresses: [127.0.0.1]
    port: 18081
clusters:
  - {name: cluster-europe-west1-b, status: Offline}
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def full(tmp_path: Path) -> Path:
    (tmp_path / "geo.mmdb").write_bytes(b"x")
    (tmp_path / "token").write_text("  s3cret\n")
    write(tmp_path, OBJECTS, "objects.yaml")
    return write(tmp_path, FULL)


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_full_config_round_trip(full: Path) -> None:
    config = load_config(full)
    base = full.parent
    assert config.federation_value() == Federation(
        name="federation",
        suffix="example.com",
        owner_id="ingressfed-test",
        ttl=60,
        policy=Policy.UPSERT_ONLY,
        global_addresses=("203.0.113.10", "2001:db8::10"),
        global_hostnames=("lb.example.net",),
    )
    assert config.cluster_values() == [
        Cluster("cluster-us-east1-b", "us-east1", "us-east1-b", Location(33.2, -80.0), weight=200),
        Cluster("cluster-europe-west1-b", "europe-west1", "europe-west1-b"),
    ]
    assert (
        config.dns.options == {"anything": [1, 2]} and config.dns.dry_run and config.dns.routing == "latency"
    )
    assert config.source.file == str(base / "objects.yaml")
    assert config.geo.database == str(base / "geo.mmdb")
    assert config.geo.trusted_proxies == ("127.0.0.1/32", "::1/128", "10.0.0.0/8")
    assert config.proxy.listen == "[::]:8443" and config.proxy.cluster_header == ""
    assert config.proxy.health_check.path == "/ready" and config.proxy.limits.max_body_bytes == 0
    assert config.dns_server.answers == "all" and config.dns_server.zone_file == str(base / "zone.json")
    assert config.feed_token() == "s3cret"
    assert config.leader_election.lease_duration == 20
    assert config.clusters[0].kubeconfig is not None
    assert config.clusters[0].kubeconfig.secret_ref is not None
    assert config.clusters[0].kubeconfig.secret_ref.name == "cluster-us-east1-b-kubeconfig"
    # dumping by alias and validating again gives the same config
    again = parse_config(config.model_dump(by_alias=True, mode="json"))
    assert again == config
    assert check_config(full) == []


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "federation: {name: federation, zone: example.com}\n"))
    assert config.federation_value() == Federation("federation", "example.com")
    assert config.cluster_values() == []
    assert config.dns.provider == "embedded" and config.dns.routing == "none" and not config.dns.dry_run
    assert config.source.kind == "static" and config.source.file is None
    assert (config.health.period, config.health.timeout) == (10, 3)
    assert (config.health.failure_threshold, config.health.success_threshold) == (3, 1)
    assert config.geo.database is None and config.geo.trusted_proxies == ()
    assert config.proxy.listen == "0.0.0.0:8080" and config.proxy.admin_listen == "127.0.0.1:8081"
    assert config.proxy.cluster_header == "X-Served-By-Cluster"
    assert config.proxy.limits.max_body_bytes == 10485760 and config.proxy.limits.max_header_bytes == 16384
    assert config.dns_server.listen == "127.0.0.1:5353" and config.dns_server.answers == "geo"
    assert config.controller.listen == "127.0.0.1:9090" and config.controller.debounce == 0.2
    assert config.feed_token() is None
    assert not config.leader_election.enabled and config.leader_election.lease_name == "ingressfed-controller"


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """\
        federation:
          name: Federation_1
          zone: "exa mple.com"
          ttl: 0
          ownerId: "Owner!"
          policy: delete-all
          globalAddresses: [1.2.3.400]
        dns: {provider: nosuch, routing: fastest, dryRun: maybe}
        clusters:
          - {name: a, zone: us-east1-b, location: {lat: 95, lon: 10}, weight: 0}
          - {name: a, zone: europe-west1-b, extraThing: 1}
          - {name: c}
          - {name: d, zone: Bad_Zone, weight: 1.5}
        health: {period: 3, timeout: 5, failureThreshold: 0}
        geo:
          database: nope.mmdb
          trustedProxies: [10.0.0.1/8, banana]
          defaultOrder: [zz]
        proxy:
          listen: "0.0.0.0:99999"
          adminListen: "::1:80"
          clusterHeader: "bad header"
          healthCheck: {path: healthz}
        controller: {listen: localhost, feedTokenFile: /no/such/token}
        leaderElection: {leaseDuration: 5, renewDeadline: 10}
        unknownSection: {}
        """,
    )
    expected = [
        "federation.name: 'Federation_1' is not a DNS label",
        "federation.zone: 'exa mple.com' is not a DNS name",
        "federation.ttl: 0 is out of range: must be between 1 and 86400",
        "federation.ownerId: 'Owner!' is not allowed",
        "federation.policy: 'delete-all' is not allowed: must be one of 'sync', 'upsert-only' or 'create-",
        "federation.globalAddresses[0]: '1.2.3.400' is not an IPv4 or IPv6 address",
        "dns.routing: 'fastest' is not allowed: must be one of 'none', 'latency' or 'geolocation'",
        "dns.dryRun: 'maybe' must be true or false",
        "dns.provider: 'nosuch' is not an installed provider; installed: ",
        "clusters[0].location.lat: 95 is out of range: must be between -90 and 90",
        "clusters[0].weight: 0 is out of range: must be between 1 and 1000",
        "clusters[1].extraThing: unknown field; allowed: disabled, kubeconfig, location, name, region",
        "clusters[1].name: 'a' is a duplicate of clusters[0]; names must be unique",
        "clusters[2].zone: is required when source.kind is static",
        "clusters[3].zone: 'Bad_Zone' is not a DNS label",
        "clusters[3].weight: 1.5 must be a whole number",
        "health.failureThreshold: 0 must be at least 1",
        "health.timeout: 5 must be less than health.period (3)",
        "geo.database: 'nope.mmdb' does not exist or is not a regular file (resolved to",
        "geo.trustedProxies[0]: '10.0.0.1/8' has host bits set: did you mean 10.0.0.0/8?",
        "geo.trustedProxies[1]: 'banana' is not a CIDR",
        "geo.defaultOrder[0]: 'zz' is not a cluster name; clusters: a, c, d",
        "proxy.listen: '0.0.0.0:99999' port '99999' must be a number between 1 and 65535",
        "proxy.adminListen: '::1:80' an IPv6 host must be in brackets",
        "proxy.clusterHeader: 'bad header' is not an HTTP header name",
        "proxy.healthCheck.path: 'healthz' must start with '/'",
        "controller.listen: 'localhost' must be host:port",
        "controller.feedTokenFile: '/no/such/token' does not exist",
        "leaderElection.renewDeadline: 10 must be less than leaderElection.leaseDuration (5)",
        "unknownSection: unknown field; allowed: clusters, controller, dns, dnsServer, edgeHealth, edges,",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected), problems


def test_missing_required_and_wrong_types(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "federation: {ttl: '30s'}\nclusters: {name: a}\nhealth: 7\n")
    assert "federation.name: is required" in problems
    assert "federation.zone: is required" in problems
    assert "federation.ttl: '30s' must be an integer" in problems
    assert any(p.startswith("clusters: {'name': 'a'} must be a list") for p in problems), problems
    assert "health: 7 must be a mapping" in problems


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("federation: {name: f, zone: example.com\n", "YAML syntax error at line 2, column 1"),
        ("federation:\n  name: f\n   zone: x\n", "YAML syntax error at line 3, column 8"),
        (
            "federation: {name: f, zone: a.com}\nfederation: {name: g, zone: b.com}\n",
            "duplicate key 'federation'",
        ),
        ("", "is empty"),
        ("- a\n- b\n", "top level must be a mapping, got list"),
    ],
)
def test_yaml_problems_name_the_place(tmp_path: Path, text: str, fragment: str) -> None:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and fragment in problems[0], problems
    assert str(tmp_path / "config.yaml") in problems[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_region_derived_from_zone_and_declared_region_kept(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            federation: {name: f, zone: example.com}
            clusters:
              - {name: aws, zone: us-east-1a}
              - {name: az, zone: eastus-2}
              - {name: lab, region: lab, zone: rack1}
            """,
        )
    )
    assert [(c.region, c.zone) for c in config.cluster_values()] == [
        ("us-east-1", "us-east-1a"),
        ("eastus", "eastus-2"),
        ("lab", "rack1"),
    ]


def test_kubernetes_source_does_not_need_zones(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            federation: {name: f, zone: example.com}
            clusters: [{name: a}]
            source: {kind: kubernetes, namespaces: [default, shop]}
            """,
        )
    )
    assert config.source.namespaces == ("default", "shop")
    assert config.cluster_values() == [Cluster("a", "", "")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::]:53", ("::", 53)),
        ("[::1]:65535", ("::1", 65535)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(
    "text", ["8080", ":8080", "host:0", "host:65536", "[::1]", "[zz]:80", "::1:80", "a_b:80"]
)
def test_split_host_port_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(text)


def test_objects_file(full: Path) -> None:
    objects = load_objects(
        full.parent / "objects.yaml", clusters=["cluster-us-east1-b", "cluster-europe-west1-b"]
    )
    assert objects.services == (
        ServiceObservation("cluster-us-east1-b", "default", "k8shserver", 2, ("127.0.0.11", "::1"), (), None),
        ServiceObservation(
            "cluster-europe-west1-b", "default", "k8shserver", 0, (), ("abc.elb.amazonaws.com",), 120
        ),
    )
    assert objects.ingresses == (
        IngressObservation(
            "cluster-us-east1-b",
            "default",
            "k8shserver.web",
            (
                IngressRule("k8shserver.example.com", "/", "Prefix"),
                IngressRule("api.example.com", "/v1", "Prefix"),
            ),
            ("127.0.0.1",),
            (),
            18081,
        ),
    )
    assert objects.cluster_status == {"cluster-europe-west1-b": ClusterStatus.OFFLINE}


def test_objects_file_problems_all_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        services:
          - {cluster: a, namespace: default, name: web, readyEndpoints: -1, addresses: [300.1.1.1], ttl: 0}
          - {cluster: a, namespace: default, name: web}
          - {cluster: ghost, namespace: Default, name: web2, colour: red}
        ingresses:
          - {cluster: a, namespace: default, name: ing, rules: [{host: "bad host", path: x, pathType: Regex}],
             port: 0}
          - {cluster: a, namespace: default, name: ing2}
        clusters:
          - {name: a, status: Sleeping}
          - {name: nobody, status: Ready}
        """,
        "objects.yaml",
    )
    with pytest.raises(ConfigError) as info:
        load_objects(path, clusters=["a"])
    problems = info.value.problems
    expected = [
        "services[0].readyEndpoints: -1 must be at least 0",
        "services[0].addresses[0]: '300.1.1.1' is not an IPv4 or IPv6 address",
        "services[0].ttl: 0 is out of range: must be between 1 and 86400",
        "services[2].namespace: 'Default' is not a DNS label",
        "services[2].colour: unknown field; allowed: addresses, cluster, hostnames, name, namespace",
        "services[1]: a/default/web is a duplicate of services[0]",
        "services[2].cluster: 'ghost' is not a configured cluster; clusters: a",
        "ingresses[0].rules[0].host: 'bad host' is not a DNS name",
        "ingresses[0].rules[0].path: 'x' must start with '/'",
        "ingresses[0].rules[0].pathType: 'Regex' is not allowed: must be one of 'Prefix', 'Exact' or",
        "ingresses[0].port: 0 is out of range: must be between 1 and 65535",
        "ingresses[1].rules: is required",
        "clusters[0].status: 'Sleeping' is not allowed: must be one of 'Ready', 'NotReady' or 'Offline'",
        "clusters[1].name: 'nobody' is not a configured cluster; clusters: a",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected), problems


def test_empty_objects_file(tmp_path: Path) -> None:
    objects = load_objects(write(tmp_path, "", "objects.yaml"))
    assert objects.services == () and objects.ingresses == () and dict(objects.cluster_status) == {}


def test_check_config_includes_objects_file(tmp_path: Path) -> None:
    write(tmp_path, "services: [{cluster: stranger, namespace: default, name: web}]\n", "objects.yaml")
    path = write(
        tmp_path,
        """\
        federation: {name: f, zone: example.com}
        clusters: [{name: a, zone: us-east1-b}]
        source: {kind: static, file: objects.yaml}
        """,
    )
    assert check_config(path) == [
        "source.file: services[0].cluster: 'stranger' is not a configured cluster; clusters: a"
    ]


def test_check_command_exit_codes(full: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_command(argparse.Namespace(file=str(full))) == 0
    assert "ok (federation 'federation'" in capsys.readouterr().out
    bad = write(tmp_path, "federation: {name: f}\nextra: 1\n", "bad.yaml")
    assert check_command(argparse.Namespace(file=str(bad))) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "federation.zone: is required" in err and "extra: unknown field" in err


def test_empty_token_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    config = load_config(
        write(tmp_path, "federation: {name: f, zone: e.com}\ncontroller: {feedTokenFile: token}\n")
    )
    with pytest.raises(ConfigError, match="is empty"):
        config.feed_token()


def test_config_is_frozen(full: Path) -> None:
    config = load_config(full)
    with pytest.raises(ValidationError, match="frozen"):
        config.federation.ttl = 5  # type: ignore[misc]
    assert isinstance(config, Config)
    assert yaml.safe_load(FULL)["federation"]["name"] == "federation"


def test_default_order_unchecked_when_members_come_from_the_host(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        "federation: {name: federation, zone: example.com}\n"
        "source: {kind: kubernetes, hostKubeconfig: {inCluster: true}}\n"
        "geo: {defaultOrder: [cluster-a, cluster-b]}\n"
    )
    assert load_config(path).geo.default_order == ("cluster-a", "cluster-b")
