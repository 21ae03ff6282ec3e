"""The chart's ACME and controller-TLS values: each renders where it must (config, volumes, args,
probes, ServiceMonitor, NOTES), the config it renders loads with the project's loader, and the bad
combinations fail naming the value to fix. Rendering helpers come from test_chart.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.test_chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    _config,
    _find,
    _render,
    _render_notes,
    _run_helm,
)

CONTROLLER = f"{RELEASE}-ingressfed-controller"
ACME = ["--set", "acme.enabled=true", "--set", "acme.directoryUrl=https://ca.example.net/dir"]


def _pod(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (deployment,) = _find(docs, "Deployment", name)
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _volumes(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["volumes"]}


def _mounts(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}


def test_acme_values_render_into_the_config_and_a_kept_claim(tmp_path: Path) -> None:
    from ingressfed.config import AcmeSection

    docs = _render("acme-https")
    acme = _config(docs)["tls"]["acme"]
    assert acme["stateDir"] == "/var/lib/ingressfed-acme/state"  # below the volume root it owns
    acme["eab"]["hmacKeyFile"] = str(tmp_path / "hmac-key")
    (tmp_path / "hmac-key").write_text("c2VjcmV0\n")
    section = AcmeSection.model_validate(acme)
    assert (section.directory_url, section.email, section.challenge) == (
        "https://acme.zerossl.com/v2/DV90",
        "ops@example.com",
        "http-01",
    )
    assert section.hosts == ("shop.example.com", "api.example.org")
    assert section.renew_before_days == 20
    assert section.eab is not None and (section.eab.kid, section.eab.hmac()) == ("zerossl-kid-1", "c2VjcmV0")
    (claim,) = _find(docs, "PersistentVolumeClaim", f"{RELEASE}-ingressfed-acme")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "nfs",
        "resources": {"requests": {"storage": "128Mi"}},
    }
    pod = _pod(docs, CONTROLLER)
    assert _volumes(pod)["acme-state"]["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"]}
    assert _mounts(pod)["acme-state"]["mountPath"] == "/var/lib/ingressfed-acme"
    # Only the HMAC key is projected from the EAB Secret, read-only.
    assert _volumes(pod)["acme-eab"]["secret"] == {
        "secretName": "zerossl-eab",
        "items": [{"key": "hmac-key", "path": "hmac-key"}],
    }
    assert _mounts(pod)["acme-eab"] == {
        "name": "acme-eab",
        "mountPath": "/etc/ingressfed/acme-eab",
        "readOnly": True,
    }
    # No ACME anywhere by default, and nothing of it reaches the proxies' pods.
    assert _config(_render("defaults"))["tls"] == {"acme": None}
    assert not _find(_render("defaults"), "PersistentVolumeClaim")
    assert "acme-state" not in _volumes(_pod(docs, f"{RELEASE}-ingressfed-proxy"))


def test_acme_storage_choices(tmp_path: Path) -> None:
    single = [*ACME, "--set", "controller.replicas=1"]
    docs = _render("defaults", *single, "--set", "acme.storage.type=emptyDir")
    assert _volumes(_pod(docs, CONTROLLER))["acme-state"] == {"name": "acme-state", "emptyDir": {}}
    assert not _find(docs, "PersistentVolumeClaim")
    notes = _render_notes(tmp_path / "empty", "defaults", *single, "--set", "acme.storage.type=emptyDir")
    assert "WARNING: acme.storage.type is emptyDir" in notes and "rate-limit" in notes
    assert "federation.ingressfed.io/acme" in notes
    notes = _render_notes(tmp_path / "claim", "defaults", *single)
    assert "WARNING" not in notes
    docs = _render("defaults", *ACME, "--set", "acme.storage.existingClaim=my-acme")
    assert not _find(docs, "PersistentVolumeClaim")  # an existing claim: any access mode, any replicas
    assert _volumes(_pod(docs, CONTROLLER))["acme-state"]["persistentVolumeClaim"] == {"claimName": "my-acme"}
    docs = _render("defaults", *ACME, "--set", "acme.storage.accessModes={ReadWriteMany}")
    (claim,) = _find(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_controller_tls_makes_the_followers_use_https_and_verify_it() -> None:
    docs = _render("acme-https")
    config = _config(docs)
    assert config["controller"]["tls"] == {
        "certFile": "/etc/ingressfed/controller-tls/tls.crt",
        "keyFile": "/etc/ingressfed/controller-tls/tls.key",
    }
    pod = _pod(docs, CONTROLLER)
    assert _volumes(pod)["controller-tls"]["secret"] == {
        "secretName": "controller-tls",
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
    }
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    for follower in ("proxy", "dns"):
        fpod = _pod(docs, f"{RELEASE}-ingressfed-{follower}")
        args = fpod["containers"][0]["args"]
        assert args[args.index("--feed") + 1] == f"https://{CONTROLLER}.{NAMESPACE}.svc:9090", follower
        assert args[args.index("--ca-file") + 1] == "/etc/ingressfed/controller-ca/ca.crt", follower
        # The followers get the CA only, never the controller's private key.
        assert _volumes(fpod)["controller-ca"]["secret"] == {
            "secretName": "controller-tls",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
        assert _mounts(fpod)["controller-ca"]["readOnly"] is True
    (monitor,) = [m for m in _find(docs, "ServiceMonitor") if m["metadata"]["name"] == CONTROLLER]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["serverName"] == f"{CONTROLLER}.{NAMESPACE}.svc"
    # caKey "": the system trust store (a publicly trusted certificate); no CA volume, no --ca-file.
    docs = _render("acme-https", "--set", "controller.tls.caKey=")
    args = _pod(docs, f"{RELEASE}-ingressfed-proxy")["containers"][0]["args"]
    assert "--ca-file" not in args and args[args.index("--feed") + 1].startswith("https://")
    # Off by default: plain http, no Secret mounted.
    docs = _render("defaults")
    args = _pod(docs, f"{RELEASE}-ingressfed-proxy")["containers"][0]["args"]
    assert args[args.index("--feed") + 1].startswith("http://") and "--ca-file" not in args
    assert _config(docs)["controller"]["tls"] is None


def test_the_proxy_service_carries_the_tls_port() -> None:
    (svc,) = _find(_render("acme-https"), "Service", f"{RELEASE}-ingressfed-proxy")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["http"]["port"] == 80  # http-01 is fetched on port 80 of the global address
    assert ports["https"]["port"] == 443 and ports["https"]["targetPort"] == "https"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "acme.enabled=true"], "acme.directoryUrl: the CA's ACME directory URL"),
        (
            [*ACME, "--set", "proxy.tls.enabled=false"],
            "acme.enabled: the ACME certificates are served by the proxies' HTTPS listener",
        ),
        ([*ACME, "--set", "proxy.enabled=false"], "set proxy.enabled and proxy.tls.enabled"),
        ([*ACME, "--set", "acme.eab.kid=k"], "acme.eab.secret: name the Secret"),
        ([*ACME, "--set", "acme.eab.secret=s"], "acme.eab.kid: the CA's key id"),
        ([*ACME], "acme.storage.accessModes: every controller replica mounts the ACME state"),
        (
            ["--set", "controller.tls.enabled=true"],
            "controller.tls.secret: name the kubernetes.io/tls Secret",
        ),
    ],
)
def test_bad_combinations_fail_naming_the_value(args: list[str], message: str) -> None:
    result = _run_helm("template", RELEASE, str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "acme.challenge=tls-alpn-01"], "acme.challenge must be one of the following"),
        (["--set", "acme.directoryUrl=ftp://ca"], "acme.directoryUrl: Does not match pattern"),
        (["--set", "acme.hosts={Not_A_Host}"], "acme.hosts.0: Does not match pattern"),
        (["--set", "acme.renewBeforeDays=90"], "acme.renewBeforeDays: Must be less than or equal to 89"),
        (["--set", "acme.storage.type=hostPath"], "acme.storage.type must be one of the following"),
        (["--set", "acme.email=nobody"], "acme.email: Does not match pattern"),
        (["--set", "acme.bogus=1"], "acme: Additional property bogus is not allowed"),
        (["--set", "controller.tls.bogus=1"], "controller.tls: Additional property bogus is not allowed"),
    ],
)
def test_schema_rejects_bad_acme_and_tls_values(args: list[str], message: str) -> None:
    result = _run_helm("template", RELEASE, str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
