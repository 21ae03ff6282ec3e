"""Checks of the Helm chart: lint, render with several value sets, validate against the Kubernetes
schemas, and assert the security and contract properties over the parsed manifests.

helm comes from ./.tools/bin/helm (installed by .ci/helm.sh). Under CI=true a missing helm fails the
tests; locally they are skipped.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kube.versions import NEWEST, SUPPORTED

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ingressfed"
HELM = ROOT / ".tools" / "bin" / "helm"
VALUES_DIR = Path(__file__).resolve().parent / "values"
VALUE_SETS = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))
NAMESPACE = "ingressfed-system"
RELEASE = "fed"

# Kinds that kubernetes-validate has no schema for (they are defined by CRDs). Only these may be
# reported as unknown; anything else unknown is a failure.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# Oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest kubernetes-validate
# has schemas for (the same range the fake API server is run as).
K8S_VERSIONS = tuple(f"{v}.0" for v in SUPPORTED)

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

# The federation config shape (notes CONFIG.md), section -> keys.
CONFIG_KEYS: dict[str, set[str]] = {
    "federation": {"name", "zone", "ttl", "ownerId", "policy", "globalAddresses", "globalHostnames"},
    "dns": {"provider", "options", "dryRun", "routing"},
    "clusters": set(),
    "source": {"kind", "file", "namespaces", "hostKubeconfig"},
    "health": {"period", "timeout", "failureThreshold", "successThreshold"},
    "geo": {"database", "trustedProxies", "defaultOrder"},
    "proxy": {
        "enabled",
        "listen",
        "adminListen",
        "clusterHeader",
        "healthCheck",
        "timeouts",
        "limits",
        "tls",
    },
    "dnsServer": {"enabled", "listen", "answers"},
    "controller": {"listen", "debounce", "resync", "feedTokenFile", "tls"},
    "tls": {"acme"},
    "leaderElection": {"enabled", "namespace", "leaseName", "leaseDuration", "renewDeadline", "retryPeriod"},
    "status": {"enabled"},
    "edges": set(),
    "edgeHealth": {"quorum", "staleAfter", "minReportInterval"},
}
CLUSTER_KEYS = {"name", "region", "zone", "location", "weight", "kubeconfig", "disabled"}


def _helm() -> Path:
    if HELM.is_file() and os.access(HELM, os.X_OK):
        return HELM
    message = f"helm not found at {HELM}; run .ci/helm.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_helm()), *args], capture_output=True, text=True, timeout=60, check=False)


@functools.cache
def _render_text(value_set: str, *extra: str) -> str:
    result = _run_helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--include-crds",
        "-f",
        str(VALUES_DIR / f"{value_set}.yaml"),
        *extra,
    )
    assert result.returncode == 0, f"helm template ({value_set}) failed:\n{result.stderr}"
    return result.stdout


def _render(value_set: str, *extra: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(_render_text(value_set, *extra)) if d]


def _find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in WORKLOAD_KINDS:
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def _all_containers(spec: dict[str, Any]) -> Iterator[tuple[dict[str, Any], bool]]:
    for c in spec.get("initContainers", []):
        yield c, False
    for c in spec["containers"]:
        yield c, True


def _config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (cm,) = _find(docs, "ConfigMap", f"{RELEASE}-ingressfed-config")
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert isinstance(config, dict)
    return config


@pytest.fixture(params=VALUE_SETS)
def value_set(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_value_sets_cover_the_providers() -> None:
    assert set(VALUE_SETS) >= {"defaults", "route53-irsa", "clouddns", "rfc2136-tsig", "embedded-delegation"}


def test_lint(value_set: str) -> None:
    result = _run_helm("lint", "--strict", str(CHART), "-f", str(VALUES_DIR / f"{value_set}.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_rendering_validates_against_kubernetes_schemas(value_set: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{value_set}.yaml"
    rendered.write_text(_render_text(value_set))
    args = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"]
    for version in K8S_VERSIONS:
        args += ["-k", version]
    result = subprocess.run([*args, str(rendered)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # kubernetes-validate only warns on kinds it has no schema for: allow exactly the CRD-defined ones.
    for line in result.stdout.splitlines():
        if line.startswith("WARN"):
            assert any(f"kind {kind} with api version {api}" in line for api, kind in CRD_KINDS), line
        else:
            assert not line.strip(), line
    kinds = {(d["apiVersion"], d["kind"]) for d in _render(value_set)}
    assert "CustomResourceDefinition" in {k for _, k in kinds}


def test_every_object_is_namespaced_into_the_release_or_cluster_scoped(value_set: str) -> None:
    cluster_scoped = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for d in _render(value_set):
        ns = d["metadata"].get("namespace")
        if d["kind"] in cluster_scoped:
            assert ns is None, d["metadata"]["name"]
        else:
            assert ns == NAMESPACE, (d["kind"], d["metadata"]["name"])


def test_rbac_has_no_wildcards_and_stays_least_privilege(value_set: str) -> None:
    docs = _render(value_set)
    roles = _find(docs, "Role") + _find(docs, "ClusterRole")
    # An edge install (no controller) and the static source need no Kubernetes API rights at all.
    if _config(docs)["source"]["kind"] != "kubernetes" or not _find(
        docs, "Deployment", f"{RELEASE}-ingressfed-controller"
    ):
        assert not roles and not _find(docs, "RoleBinding") and not _find(docs, "ClusterRoleBinding")
        return
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            assert not {"escalate", "bind", "impersonate", "delete", "deletecollection"} & set(rule["verbs"])
            if "secrets" in rule["resources"]:
                # Secrets are read by name only: never listed or watched, never written.
                assert rule["verbs"] == ["get"], rule
                assert role["kind"] == "Role", "Secrets access must stay in the release namespace"
    (cluster_role,) = _find(docs, "ClusterRole")
    granted = {(g, r) for rule in cluster_role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("ingressfed.io", "federatedclusters"), ("ingressfed.io", "federatedclusters/status")}
    for binding in _find(docs, "RoleBinding") + _find(docs, "ClusterRoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-ingressfed", "namespace": NAMESPACE}
        ]


def test_lease_access_is_limited_to_the_configured_lease() -> None:
    docs = _render("defaults", "--set", "leaderElection.leaseName=my-lease")
    (role,) = [r for r in _find(docs, "Role") if r["metadata"]["namespace"] == NAMESPACE]
    lease_rules = [r for r in role["rules"] if "leases" in r["resources"]]
    by_verbs = {tuple(r["verbs"]): r.get("resourceNames") for r in lease_rules}
    assert by_verbs == {("create",): None, ("get", "update", "patch"): ["my-lease"]}
    assert _config(docs)["leaderElection"]["leaseName"] == "my-lease"
    docs = _render("defaults", "--set", "leaderElection.enabled=false")
    (role,) = [r for r in _find(docs, "Role") if r["metadata"]["namespace"] == NAMESPACE]
    assert not [r for r in role["rules"] if "leases" in r["resources"]]


def test_every_container_runs_restricted(value_set: str) -> None:
    specs = list(_pod_specs(_render(value_set)))
    assert specs
    for name, spec in specs:
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, name
        for container, _ in _all_containers(spec):
            sc = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] != 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            assert "resources" in container and container["resources"].get("requests"), where
            for port in container.get("ports", []):
                assert port["containerPort"] > 1024, f"{where} binds a privileged port"


def test_long_running_containers_have_probes(value_set: str) -> None:
    for name, spec in _pod_specs(_render(value_set)):
        for container, long_running in _all_containers(spec):
            if long_running:
                where = f"{name}/{container['name']}"
                assert "livenessProbe" in container, where
                assert "readinessProbe" in container, where


def test_only_the_controller_gets_an_api_token(value_set: str) -> None:
    docs = _render(value_set)
    for sa in _find(docs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]
    kubernetes_source = _config(docs)["source"]["kind"] == "kubernetes"
    for name, spec in _pod_specs(docs):
        if name.endswith("-controller"):
            assert spec["automountServiceAccountToken"] is kubernetes_source
            assert spec["serviceAccountName"] == f"{RELEASE}-ingressfed"
        else:
            assert spec["automountServiceAccountToken"] is False, name
            assert spec["serviceAccountName"] == f"{RELEASE}-ingressfed-dataplane", name


def test_writable_paths_are_empty_dirs(value_set: str) -> None:
    for name, spec in _pod_specs(_render(value_set)):
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container, _ in _all_containers(spec):
            for mount in container.get("volumeMounts", []):
                if not mount.get("readOnly"):
                    volume = volumes[mount["name"]]
                    # The one exception: the ACME account key and certificates, kept on a claim.
                    if mount["name"] == "acme-state" and container["name"] == "controller":
                        assert set(volume) & {"emptyDir", "persistentVolumeClaim"}, volume
                        continue
                    assert "emptyDir" in volume, f"{name}/{container['name']}: {mount}"


def test_controller_runs_with_leader_election_and_two_replicas() -> None:
    docs = _render("defaults")
    (controller,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-controller")
    assert controller["spec"]["replicas"] == 2
    (container,) = controller["spec"]["template"]["spec"]["containers"]
    assert container["args"][:5] == [
        "--log-level",
        "INFO",
        "run",
        "--config",
        "/etc/ingressfed/config/config.yaml",
    ]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (pdb,) = _find(docs, "PodDisruptionBudget", f"{RELEASE}-ingressfed-controller")
    assert pdb["spec"]["selector"]["matchLabels"] == controller["spec"]["selector"]["matchLabels"]
    single = _render("defaults", "--set", "controller.replicas=1")
    assert not _find(single, "PodDisruptionBudget", f"{RELEASE}-ingressfed-controller")
    config = _config(docs)
    assert config["leaderElection"]["enabled"] is True
    assert config["leaderElection"]["namespace"] == NAMESPACE
    assert config["controller"]["feedTokenFile"] == "/etc/ingressfed/feed/token"


def test_proxy_is_the_global_load_balancer_and_follows_the_feed() -> None:
    docs = _render("defaults")
    (svc,) = _find(docs, "Service", f"{RELEASE}-ingressfed-proxy")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
    ]
    (proxy,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-proxy")
    (container,) = proxy["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[:3] == ["--log-level", "INFO", "proxy"]
    feed = args[args.index("--feed") + 1]
    assert feed == f"http://{RELEASE}-ingressfed-controller.{NAMESPACE}.svc:9090"
    assert args[args.index("--token-file") + 1] == "/etc/ingressfed/feed/token"
    # The last view is kept on the pod's emptyDir so a restarted container serves at once.
    assert args[args.index("--state-file") + 1] == "/var/lib/ingressfed/proxy-feed.json"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (pdb,) = _find(docs, "PodDisruptionBudget", f"{RELEASE}-ingressfed-proxy")
    assert pdb["spec"]["selector"]["matchLabels"] == proxy["spec"]["selector"]["matchLabels"]
    (secret,) = _find(docs, "Secret", f"{RELEASE}-ingressfed-feed-token")
    assert len(base64.b64decode(secret["data"]["token"])) >= 32
    assert not _find(docs, "HorizontalPodAutoscaler")
    docs = _render("route53-irsa")
    (hpa,) = _find(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 12
    (proxy,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-proxy")
    assert "replicas" not in proxy["spec"], "the HPA owns the replica count"


def test_embedded_dns_server_serves_53_from_a_high_port() -> None:
    docs = _render("embedded-delegation")
    (svc,) = _find(docs, "Service", f"{RELEASE}-ingressfed-dns")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["loadBalancerIP"] == "203.0.113.53"
    ports = {(p["protocol"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {("UDP", 53, "dns-udp"), ("TCP", 53, "dns-tcp")}
    (dns,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-dns")
    assert dns["spec"]["replicas"] == 3
    (container,) = dns["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["--log-level", "INFO", "dns-serve"]
    assert {(p["protocol"], p["containerPort"]) for p in container["ports"]} == {("UDP", 5353), ("TCP", 5353)}
    assert "NET_BIND_SERVICE" not in str(container["securityContext"])
    config = _config(docs)
    assert config["dnsServer"]["listen"] == "0.0.0.0:5353"
    # The controller serves no DNS itself (followers do), so it persists no served zone.
    assert "zoneFile" not in config["dnsServer"]
    # GeoIP from the operator's volume, mounted read-only where the config points.
    volumes = {v["name"]: v for v in dns["spec"]["template"]["spec"]["volumes"]}
    assert volumes["geoip"]["persistentVolumeClaim"]["claimName"] == "geoip-city"
    assert config["geo"]["database"] == "/var/lib/geoip/GeoLite2-City.mmdb"
    assert not _find(_render("route53-irsa"), "Deployment", f"{RELEASE}-ingressfed-dns")


def test_route53_with_irsa_puts_no_keys_in_the_cluster() -> None:
    docs = _render("route53-irsa")
    (sa,) = [s for s in _find(docs, "ServiceAccount") if s["metadata"]["name"] == f"{RELEASE}-ingressfed"]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert not [s for s in _find(docs, "Secret") if "credentials" in s["metadata"]["name"]]
    (controller,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-controller")
    env = {e["name"] for e in controller["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "AWS_REGION" in env and "AWS_ACCESS_KEY_ID" not in env
    assert _config(docs)["dns"] == {
        "provider": "route53",
        "routing": "latency",
        "dryRun": False,
        "options": {"hostedZoneId": "Z0123456789ABCDEFGHIJ"},
    }


def test_provider_credentials_go_to_the_controller_only() -> None:
    docs = _render("rfc2136-tsig")
    (secret,) = _find(docs, "Secret", f"{RELEASE}-ingressfed-credentials")
    assert set(secret["stringData"]) == {"tsig-secret"}
    for name, spec in _pod_specs(docs):
        mounted = {v.get("secret", {}).get("secretName") for v in spec["volumes"]}
        assert (f"{RELEASE}-ingressfed-credentials" in mounted) == name.endswith("-controller"), name
    docs = _render("clouddns")
    (secret,) = _find(docs, "Secret", f"{RELEASE}-ingressfed-credentials")
    assert set(secret["stringData"]) == {"service-account.json"}
    (controller,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-controller")
    env = {e["name"]: e.get("value") for e in controller["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/etc/ingressfed/credentials/service-account.json"
    docs = _render(
        "defaults", "--set", "dns.provider=route53", "--set", "credentials.existingSecret=aws-keys"
    )
    (controller,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-controller")
    env = {e["name"]: e for e in controller["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "aws-keys"


def test_geoipupdate_fills_the_database_before_the_data_plane_starts() -> None:
    docs = _render("clouddns")
    (license_secret,) = _find(docs, "Secret", f"{RELEASE}-ingressfed-geoip-license")
    assert license_secret["stringData"]["license-key"] == "not-a-real-key"
    for name in (f"{RELEASE}-ingressfed-proxy",):
        (dep,) = _find(docs, "Deployment", name)
        spec = dep["spec"]["template"]["spec"]
        (init,) = spec["initContainers"]
        assert init["name"] == "geoipupdate-init"
        env = {e["name"]: e["value"] for e in init["env"]}
        assert env["GEOIPUPDATE_DB_DIR"] == "/var/lib/geoip"
        assert env["GEOIPUPDATE_EDITION_IDS"] == "GeoLite2-City"
        sidecars = [c for c in spec["containers"] if c["name"] == "geoipupdate"]
        assert len(sidecars) == 1 and "GEOIPUPDATE_FREQUENCY" in {e["name"] for e in sidecars[0]["env"]}
        proxy = next(c for c in spec["containers"] if c["name"] == "proxy")
        assert {"name": "geoip", "mountPath": "/var/lib/geoip", "readOnly": True} in proxy["volumeMounts"]


def test_service_monitors_select_services_that_exist() -> None:
    docs = _render("rfc2136-tsig")
    monitors = _find(docs, "ServiceMonitor")
    assert len(monitors) == 2
    services = _find(docs, "Service")
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matching = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
        assert len(matching) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in matching[0]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"][0]["port"] in port_names
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert not _find(_render("defaults"), "ServiceMonitor")


def test_config_map_has_the_config_file_shape(value_set: str) -> None:
    config = _config(_render(value_set))
    assert set(config) == set(CONFIG_KEYS)
    for section, keys in CONFIG_KEYS.items():
        if keys:
            assert set(config[section]) == keys, section
    for cluster in config["clusters"]:
        assert set(cluster) <= CLUSTER_KEYS
    # In the chart the proxy and DNS server run as their own Deployments, not inside `ingressfed run`.
    assert config["proxy"]["enabled"] is False and config["dnsServer"]["enabled"] is False
    assert config["controller"]["listen"] == "0.0.0.0:9090"


def test_config_map_values_come_from_the_values() -> None:
    config = _config(_render("rfc2136-tsig"))
    assert config["federation"]["ttl"] == 20
    assert config["federation"]["policy"] == "upsert-only"
    assert [c["name"] for c in config["clusters"]] == ["cluster-us-east1-b", "cluster-europe-west1-b"]
    assert config["clusters"][0]["location"] == {"lat": 33.2, "lon": -80.0}
    assert config["geo"]["database"] is None
    # The TSIG key comes from the credentials Secret the chart mounts into the controller.
    assert config["dns"]["options"]["tsigSecretFile"] == "/etc/ingressfed/credentials/tsig-secret"
    config = _config(_render("embedded-delegation"))
    assert config["federation"]["globalAddresses"] == ["203.0.113.10", "2001:db8::10"]
    assert config["source"]["namespaces"] == ["shop", "web"]
    assert config["source"]["hostKubeconfig"]["inCluster"] is True
    config = _config(_render("rfc2136-tsig"))
    assert config["source"] == {
        "kind": "static",
        "file": "/etc/ingressfed/objects/objects.yaml",
        "namespaces": [],
        "hostKubeconfig": {"path": None, "context": None, "inCluster": False},
    }


def test_config_map_loads_with_the_project_config_loader(value_set: str, tmp_path: Path) -> None:
    import ingressfed.config as config_module  # our own module: a broken import must fail, not skip

    config = _config(_render(value_set))
    # The loader checks that mounted files exist; stand in for the pod's mounts with real files.
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    assert config["controller"]["feedTokenFile"] == "/etc/ingressfed/feed/token"
    config["controller"]["feedTokenFile"] = str(token)
    if config["geo"]["database"] is not None:
        assert config["geo"]["database"] == "/var/lib/geoip/GeoLite2-City.mmdb"
        database = tmp_path / "GeoLite2-City.mmdb"
        database.write_bytes(b"stand-in")
        config["geo"]["database"] = str(database)
    if config["controller"]["tls"] is not None:  # the controller's kubernetes.io/tls Secret
        from ingressfed.tls.authority import LocalAuthority

        pair = LocalAuthority().issue(f"{RELEASE}-ingressfed-controller.{NAMESPACE}.svc")
        (tmp_path / "tls.crt").write_bytes(pair.cert_pem)
        (tmp_path / "tls.key").write_bytes(pair.key_pem)
        assert config["controller"]["tls"] == {
            "certFile": "/etc/ingressfed/controller-tls/tls.crt",
            "keyFile": "/etc/ingressfed/controller-tls/tls.key",
        }
        config["controller"]["tls"] = {
            "certFile": str(tmp_path / "tls.crt"),
            "keyFile": str(tmp_path / "tls.key"),
        }
    eab = (config["tls"]["acme"] or {}).get("eab")
    if eab:  # the HMAC key mounted from acme.eab.secret
        assert eab["hmacKeyFile"].startswith("/etc/ingressfed/acme-eab/")
        (tmp_path / "hmac-key").write_text("c2VjcmV0LWhtYWMta2V5\n")
        eab["hmacKeyFile"] = str(tmp_path / "hmac-key")
    if config["source"]["file"] is not None:
        objects = tmp_path / "objects.yaml"
        objects.write_text("services: []\ningresses: []\n")
        config["source"]["file"] = str(objects)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = config_module.load_config(path)
    assert loaded.federation.name == config["federation"]["name"]
    assert loaded.federation.zone == config["federation"]["zone"]
    assert loaded.dns.provider == config["dns"]["provider"]
    assert loaded.leader_election.enabled is True
    assert loaded.source.kind == config["source"]["kind"]
    assert loaded.feed_token() == "t0ken"
    assert [c.name for c in loaded.clusters] == [c["name"] for c in config["clusters"]]


def test_config_change_rolls_the_pods() -> None:
    def checksums(*extra: str) -> set[str]:
        return {
            d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for d in _find(_render("defaults", *extra), "Deployment")
        }

    before = checksums()
    after = checksums("--set", "federation.ttl=60")
    assert len(before) == 1 and len(after) == 1 and before != after


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "proxy.replicas=abc"], "proxy.replicas: Invalid type. Expected: integer, given: string"),
        (["--set", "proxy.bogus=1"], "proxy: Additional property bogus is not allowed"),
        (["--set", "bogus=1"], "Additional property bogus is not allowed"),
        (["--set", "federation.policy=delete-all"], "federation.policy must be one of the following"),
        (["--set", "dns.routing=weighted"], "dns.routing must be one of the following"),
        (["--set", "dnsServer.answers=some"], "dnsServer.answers must be one of the following"),
        (["--set", "federation.ttl=0"], "federation.ttl: Must be greater than or equal to 1"),
        (["--set", "federation.name=Not_A_Label"], "federation.name: Does not match pattern"),
        (["--set", "dnsServer.port=53"], "dnsServer.port: Must be greater than or equal to 1024"),
        (["--set", "geoip.source=maxmind"], "geoip.source must be one of the following"),
        (["--set", "proxy.service.type=ExternalName"], "proxy.service.type must be one of the following"),
    ],
)
def test_schema_rejects_bad_values_with_a_clear_message(args: list[str], message: str) -> None:
    result = _run_helm("template", RELEASE, str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "geoip.source=secret"], "geoip.secret.name is required when geoip.source=secret"),
        (
            ["--set", "geoip.source=geoipupdate"],
            "geoip.geoipupdate.licenseKey (or existingSecret) is required",
        ),
        (
            ["--set", "geoip.source=geoipupdate", "--set", "geoip.geoipupdate.licenseKey=k"],
            "geoip.geoipupdate.accountId is required",
        ),
        (
            ["--set", "dns.provider=route53", "--set", "credentials.create=true"],
            "credentials.route53.accessKeyId is required with credentials.create",
        ),
        (
            ["--set", "source.kind=static", "--set", "source.file=/objects.yaml"],
            "source.kind static has no leader election",
        ),
    ],
)
def test_incomplete_values_fail_naming_the_missing_key(args: list[str], message: str) -> None:
    result = _run_helm("template", RELEASE, str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_crd_matches_the_kube_package_copy() -> None:
    (chart_crd,) = CHART.joinpath("crds").glob("*.yaml")
    crd = yaml.safe_load(chart_crd.read_text())
    assert crd["spec"]["group"] == "ingressfed.io" and crd["spec"]["scope"] == "Cluster"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["STATUS", "AGE"]
    kube_copy = ROOT / "ingressfed" / "kube" / "crd.yaml"
    # The controller's copy (shipped in the package) and the chart's must never drift apart.
    assert yaml.safe_load(kube_copy.read_text()) == crd


def test_chart_app_version_is_the_package_version() -> None:
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2"


def _render_notes(tmp_path: Path, value_set: str, *extra: str) -> str:
    # helm renders NOTES.txt only on install, which needs a cluster; render the same text as a
    # named template inside a copy of the chart instead.
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes_test.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes + "{{- end -}}\n"
    )
    (chart / "templates" / "notes_test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "test.notes" . | quote }}\n'
    )
    result = _run_helm(
        "template",
        RELEASE,
        str(chart),
        "-n",
        NAMESPACE,
        "-f",
        str(VALUES_DIR / f"{value_set}.yaml"),
        "--show-only",
        "templates/notes_test.yaml",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return str(yaml.safe_load(result.stdout)["data"]["notes"])


def test_notes_tell_how_to_reach_the_global_address(tmp_path: Path) -> None:
    notes = _render_notes(tmp_path, "embedded-delegation")
    assert f"kubectl -n {NAMESPACE} get service {RELEASE}-ingressfed-proxy" in notes
    assert "curl -si -H 'Host: k8shserver.fed.example.com' http://$GLOBAL_IP/" in notes
    assert f"get service {RELEASE}-ingressfed-dns" in notes
    assert "dig @$DNS_IP fed.example.com SOA +norec" in notes
    assert "dig @$DNS_IP k8shserver.default.federation.svc.fed.example.com A +norec" in notes


def test_notes_warn_when_nobody_answers_for_the_zone(tmp_path: Path) -> None:
    notes = _render_notes(tmp_path / "route53", "route53-irsa")
    assert "dig k8shserver.default.federation.svc.example.com A" in notes
    assert "WARNING" not in notes
    notes = _render_notes(tmp_path / "embedded", "defaults", "--set", "dnsServer.enabled=false")
    assert 'WARNING: dns.provider is "embedded" but dnsServer.enabled is false' in notes


def test_every_command_the_chart_starts_parses_with_the_real_cli(
    value_set: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import ingressfed.cli as cli  # our own module: a broken import must fail, not skip

    chart = yaml.safe_load((CHART / "values.yaml").read_text())
    started = 0
    for name, spec in _pod_specs(_render(value_set)):
        for container in spec["containers"]:
            if not container["image"].startswith(chart["image"]["repository"] + ":"):
                continue
            parser = cli.build_parser()
            try:
                args = parser.parse_args(container["args"])
            except SystemExit:
                pytest.fail(
                    f"{name}: `ingressfed {' '.join(container['args'])}` is rejected by the CLI:\n"
                    + capsys.readouterr().err
                )
            assert callable(args.func), name
            started += 1
    assert started >= (1 if value_set == "edge" else 2)  # an edge install runs the proxy alone


def test_values_are_documented_line_by_line() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(lines, start=1)
        if re.match(r"^\s*[A-Za-z][\w.-]*:", line)
        and "#" not in line
        and not lines[number - 2].strip().startswith("#")
    ]
    assert not undocumented, "keys without a comment in values.yaml:\n" + "\n".join(undocumented)


def test_chart_declares_the_oldest_supported_kubernetes(tmp_path: Path) -> None:
    ok = _run_helm("template", RELEASE, str(CHART), "--kube-version", "1.27.0")
    newest = _run_helm("template", RELEASE, str(CHART), "--kube-version", f"{NEWEST}.0")
    assert newest.returncode == 0, newest.stderr
    assert ok.returncode == 0, ok.stderr
    too_old = _run_helm("template", RELEASE, str(CHART), "--kube-version", "1.26.9")
    assert too_old.returncode != 0
    assert "kubeVersion" in too_old.stderr or "incompatible" in too_old.stderr, too_old.stderr
    packaged = _run_helm("package", str(CHART), "--destination", str(tmp_path))
    assert packaged.returncode == 0, packaged.stderr
    assert (tmp_path / "ingressfed-0.1.0.tgz").is_file()


async def test_provider_accepts_the_rendered_dns_options(value_set: str, tmp_path: Path) -> None:
    import providers.loader as loader  # our own module: a broken import must fail, not skip

    config = _config(_render(value_set))
    options = dict(config["dns"]["options"])
    if "tsigSecretFile" in options:
        # The chart points at the mounted credentials file; stand in for the mount.
        assert options["tsigSecretFile"] == "/etc/ingressfed/credentials/tsig-secret"
        secret = tmp_path / "tsig-secret"
        secret.write_text(base64.b64encode(b"s" * 32).decode() + "\n")
        options["tsigSecretFile"] = str(secret)
    provider = loader.create(config["dns"]["provider"], zone=config["federation"]["zone"], options=options)
    try:
        assert provider.zone.rstrip(".") == config["federation"]["zone"]
    finally:
        await provider.close()


def test_network_policy_admits_the_followers_to_the_feed() -> None:
    docs = _render("embedded-delegation")
    (policy,) = _find(docs, "NetworkPolicy", f"{RELEASE}-ingressfed-controller")
    (controller,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-controller")
    assert policy["spec"]["podSelector"]["matchLabels"] == controller["spec"]["selector"]["matchLabels"]
    (rule,) = policy["spec"]["ingress"]
    selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"] if "podSelector" in peer]
    for name in ("proxy", "dns"):
        (follower,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-{name}")
        assert follower["spec"]["selector"]["matchLabels"] in selectors, name
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in rule[
        "from"
    ]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert not _find(_render("defaults"), "NetworkPolicy")


def test_proxy_https_mounts_named_tls_secrets_as_its_certificate_directory() -> None:
    from ingressfed.config import ProxyTls

    docs = _render(
        "defaults", "--set", "proxy.tls.secrets={shop-tls}", "--set", "proxy.tls.defaultCertificate=shop-tls"
    )
    (proxy,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-proxy")
    pod = proxy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "https", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/ingressfed/certs/shop-tls")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "shop-tls"
    tls = ProxyTls.model_validate(_config(docs)["proxy"]["tls"])  # what `ingressfed proxy --config` reads
    assert (tls.listen, tls.certificate_dir, tls.default_certificate, tls.redirect_port) == (
        "0.0.0.0:8443",
        "/etc/ingressfed/certs",
        "shop-tls",
        443,
    )
    off = _render("defaults", "--set", "proxy.tls.enabled=false")
    (svc,) = _find(off, "Service", f"{RELEASE}-ingressfed-proxy")
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]


def test_edge_role_is_a_tokenless_proxy_following_the_host() -> None:
    docs = _render("edge")
    assert not _find(docs, "Deployment", f"{RELEASE}-ingressfed-controller")
    assert not _find(docs, "Role") and not _find(docs, "ClusterRole") and not _find(docs, "Secret")
    (proxy,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-proxy")
    spec = proxy["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    args = spec["containers"][0]["args"]
    flag = {a: args[i + 1] for i, a in enumerate(args) if a.startswith("--") and i + 1 < len(args)}
    assert flag["--feed"] == "https://ingressfed.example.net:9090"
    assert (flag["--edge"], flag["--edge-cluster"], flag["--public-address"]) == (
        "edge-europe-west1",
        "cluster-europe-west1-b",
        "203.0.113.7",
    )
    assert flag["--ca-file"] == "/etc/ingressfed/feed/ca.crt"
    (volume,) = [v for v in spec["volumes"] if v["name"] == "feed-token"]
    assert volume["secret"]["secretName"] == "ingressfed-edge"
    assert {i["key"] for i in volume["secret"]["items"]} == {"token", "ca.crt"}
    (service,) = _find(docs, "Service", f"{RELEASE}-ingressfed-proxy")
    assert service["spec"]["type"] == "LoadBalancer"
    # Its DNS server follows the same feed with the same Secret (delegate the zone to every edge).
    (dns,) = _find(docs, "Deployment", f"{RELEASE}-ingressfed-dns")
    dns_args = dns["spec"]["template"]["spec"]["containers"][0]["args"]
    assert dns_args[dns_args.index("--feed") + 1] == "https://ingressfed.example.net:9090"
    assert "--edge" not in dns_args and "--ca-file" in dns_args


def test_host_role_renders_the_declared_edges_into_the_config() -> None:
    docs = _render(
        "defaults",
        "--set", "edges[0].name=edge-eu", "--set", "edges[0].cluster=cluster-europe-west1-b",
        "--set", "edges[0].addresses[0]=203.0.113.7", "--set", "edgeHealth.quorum=2",
    )  # fmt: skip
    config = _config(docs)
    assert config["edges"] == [
        {"name": "edge-eu", "cluster": "cluster-europe-west1-b", "addresses": ["203.0.113.7"]}
    ]
    assert config["edgeHealth"]["quorum"] == 2


@pytest.mark.parametrize(
    ("unset", "message"),
    [("edge.feedUrl", "edge.feedUrl"), ("edge.secret", "edge.secret"), ("edge.name", "edge.name")],
)
def test_edge_role_names_what_is_missing(unset: str, message: str) -> None:
    result = _run_helm(
        "template", RELEASE, str(CHART), "-f", str(VALUES_DIR / "edge.yaml"), "--set", f"{unset}="
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr
