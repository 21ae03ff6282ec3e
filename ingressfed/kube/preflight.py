"""Checks of the host cluster before the controller starts watching it (startup failures, one line).

Without these a missing CRD or a refused token surfaces as a WARNING per retry, forever; at start
they are the operator's to fix, so ``run`` stops with the setting and the fix instead.
"""

from __future__ import annotations

import logging

from kubernetes_asyncio.client import ApiClient

from ingressfed.kube.members import GROUP, PLURAL, VERSION
from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.startup import StartupError

__all__ = ["HOST_SETTING", "check_host"]

log = logging.getLogger(__name__)

HOST_SETTING = "source.hostKubeconfig"


async def check_host(host: ApiClient) -> None:
    """The host answers, accepts our credentials, serves the FederatedCluster CRD and lets us list it."""
    path = f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    server = str(host.configuration.host)
    try:
        await request_json(host, "GET", path, query={"limit": 1}, request_timeout=10.0)
    except KubeApiError as exc:
        raise _startup_error(exc, server) from exc
    log.debug("host cluster %s serves %s", server, path)


def _startup_error(exc: KubeApiError, server: str) -> StartupError:
    if exc.status == 401:
        return StartupError(
            HOST_SETTING,
            f"the host API server {server} refused the credentials (401 Unauthorized)",
            "renew the token of that kubeconfig's user (in a pod: the ServiceAccount token)",
        )
    if exc.status == 403:
        return StartupError(
            HOST_SETTING,
            f"the account may not list {PLURAL}.{GROUP} in {server} (403 Forbidden)",
            "bind it to the chart's ClusterRole (rbac.create: true)",
        )
    if exc.status == 404:
        return StartupError(
            HOST_SETTING,
            f"the FederatedCluster CRD ({PLURAL}.{GROUP}/{VERSION}) is not installed in {server}",
            "install it: kubectl apply -f charts/ingressfed/crds/",
        )
    if exc.status == 0:
        return StartupError(
            HOST_SETTING,
            f"cannot reach the host API server {server}: {exc}",
            "check its address and the network",
        )
    return StartupError(
        HOST_SETTING, f"the host API server {server} answered {exc}", "check the host cluster"
    )
