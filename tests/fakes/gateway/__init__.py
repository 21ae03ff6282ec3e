"""The Gateway API v1.6.1 standard-channel CRDs and an MCS ServiceExport CRD for the fake API server.

The Gateway API CRDs are the real ones, read from the shared copy beside the repository
(``../shared/gateway-api-v1.6.1/crds``, or ``INGRESSFED_GATEWAY_CRDS``); they are not vendored.
Without them a test skips locally and fails under CI, so missing infrastructure never passes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kube.server import FakeKubeAPI

__all__ = [
    "GATEWAY_KINDS",
    "gateway_crds",
    "install_gateway_api",
    "install_service_export",
    "remove_gateway_api",
]

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
GATEWAY_KINDS = ("gatewayclasses", "gateways", "httproutes", "referencegrants")


def _crd_dir() -> Path:
    configured = os.environ.get("INGRESSFED_GATEWAY_CRDS")
    if configured:
        return Path(configured)
    for base in (ROOT.parent / "shared", Path("/work/shared")):
        candidate = base / "gateway-api-v1.6.1" / "crds"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "gateway-api-v1.6.1" / "crds"


def gateway_crds() -> list[dict[str, Any]]:
    """The standard-channel CRDs ingressfed reads (GatewayClass, Gateway, HTTPRoute, ReferenceGrant)."""
    where = _crd_dir()
    if not where.is_dir():
        msg = f"Gateway API v1.6.1 CRDs not found at {where} (set INGRESSFED_GATEWAY_CRDS)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    out = []
    for plural in GATEWAY_KINDS:
        doc = yaml.safe_load((where / f"gateway.networking.k8s.io_{plural}.yaml").read_text())
        out.append(doc)
    return out


def install_gateway_api(fake: FakeKubeAPI) -> None:
    for crd in gateway_crds():
        fake.add(crd, validate=True)


def remove_gateway_api(fake: FakeKubeAPI) -> None:
    for plural in GATEWAY_KINDS:
        fake.delete("customresourcedefinitions", f"{plural}.gateway.networking.k8s.io")


def install_service_export(fake: FakeKubeAPI) -> None:
    fake.add(yaml.safe_load((HERE / "serviceexports.yaml").read_text()), validate=True)
