"""The Kubernetes versions ingressfed supports: 1.27 (the chart's kubeVersion) through the newest
release whose schemas ``kubernetes-validate`` ships. Tests run the fake API server as both ends and
validate the chart against both."""

from __future__ import annotations

from kubernetes_validate import utils as kv_utils  # type: ignore[import-untyped]

__all__ = ["NEWEST", "OLDEST", "SUPPORTED", "server_version"]

OLDEST = "1.27"
NEWEST: str = kv_utils.major_minor(kv_utils.latest_version())
SUPPORTED = (OLDEST, NEWEST)


def server_version(kubernetes: str) -> dict[str, str]:
    """``GET /version`` of an API server of that minor release."""
    major, minor = kubernetes.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0-ingressfed-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
