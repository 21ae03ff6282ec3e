"""How healthy a member cluster looks, and why (pure).

The colour a cluster gets on the page and the reasons printed beside it come
from the same two facts the DNS and proxy decisions use: the API server status
and the data plane's health (``core.health.cluster_serves``).
"""

from __future__ import annotations

from enum import StrEnum

from ingressfed.core.health import cluster_serves
from ingressfed.model import Cluster, ClusterStatus

__all__ = ["Health", "cluster_health", "cluster_reasons"]


class Health(StrEnum):
    HEALTHY = "healthy"  # Ready and the data plane not failing
    DEGRADED = "degraded"  # still serving, but something is off (API server away, not ready)
    UNHEALTHY = "unhealthy"  # removed from DNS answers and proxy choices


def cluster_health(cluster: Cluster) -> Health:
    if not cluster_serves(cluster):
        return Health.UNHEALTHY
    if cluster.status is ClusterStatus.READY:
        return Health.HEALTHY
    return Health.DEGRADED


def cluster_reasons(cluster: Cluster) -> list[str]:
    """Short phrases an operator can act on, most important first; empty when all is well."""
    reasons: list[str] = []
    if cluster.data_plane_healthy is False:
        reasons.append("DataPlaneFailing: its ingress address fails health checks")
    if cluster.status is ClusterStatus.OFFLINE:
        reasons.append("Offline: its API server cannot be reached")
    elif cluster.status is ClusterStatus.NOT_READY:
        reasons.append("NotReady: its API server answers but is not ready")
    if cluster.status is ClusterStatus.OFFLINE and cluster.data_plane_healthy is True:
        reasons.append("StillServing: the data plane answers, so it stays in DNS")
    if not cluster_serves(cluster):
        reasons.append("Removed: no DNS answer or proxy choice names it")
    return reasons
