"""Wiring of the Kubernetes adapters for ``ingressfed run`` with ``source.kind: kubernetes``.

Members come from FederatedCluster objects in the host cluster when one is
configured (``source.hostKubeconfig``), else from ``clusters[]`` in the
config. Watches feed the Store, API-server probes set cluster status, the
status writer reports back on each object, and with leader election on only
the Lease holder writes DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ingressfed.core.health import HealthThresholds

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

    from ingressfed.config import Config
    from ingressfed.controller import Controller, ReconcileOutcome
    from ingressfed.kube.objects import Problem
    from ingressfed.model import Snapshot
    from ingressfed.store import Store
    from ingressfed.tls.book import Offer

__all__ = ["run_kubernetes"]

log = logging.getLogger(__name__)


async def _connect_host(config: Config) -> ApiClient:
    """The host client, checked once: failures here stop ``run`` with one line (setting and fix)."""
    from ingressfed.kube.clients import ClientError, connect
    from ingressfed.kube.members import host_source
    from ingressfed.kube.preflight import HOST_SETTING, check_host
    from ingressfed.startup import StartupError

    try:
        host = await connect(host_source(config.source.host_kubeconfig))
    except ClientError as exc:
        raise StartupError(
            HOST_SETTING, str(exc), "point source.hostKubeconfig at a readable kubeconfig and context"
        ) from exc
    try:
        await check_host(host)
    except BaseException:
        await host.close()
        raise
    return host


def _host_configured(config: Config) -> bool:
    h = config.source.host_kubeconfig
    return bool(h.in_cluster or h.path or h.context)


async def run_kubernetes(
    config: Config,
    store: Store,
    controller: Controller,
    *,
    tls_offers: Callable[[list[Offer]], None] | None = None,
    acme_observe: Callable[[Snapshot], list[tuple[str, Problem]]] | None = None,
) -> None:
    """``tls_offers`` receives the certificates of Ingress ``spec.tls`` Secrets (issue 10);
    ``acme_observe`` takes each snapshot's ACME-annotated hosts and returns the Ingresses whose
    annotation it refuses (reported as Warning Events)."""
    from ingressfed.kube.clients import ClientPool
    from ingressfed.kube.gateway_watch import GatewayWatch, gateway_sink, gateway_tls_refs
    from ingressfed.kube.lease import LeaderElector, LeaseSettings, default_identity
    from ingressfed.kube.members import member_from_config
    from ingressfed.kube.objects import Selection
    from ingressfed.kube.probes import Prober
    from ingressfed.kube.registry import Registry
    from ingressfed.kube.source import KubeSource
    from ingressfed.kube.status import StatusWriter, statuses_from

    h = config.health
    thresholds = HealthThresholds(
        period=h.period,
        timeout=h.timeout,
        failure_threshold=h.failure_threshold,
        success_threshold=h.success_threshold,
    )
    host = await _connect_host(config) if _host_configured(config) else None
    try:
        async with (
            ClientPool(host=host) as clients,
            contextlib.AsyncExitStack() as local,
            asyncio.TaskGroup() as tg,
        ):
            # Replaced below when leader election is on: only the Lease holder writes to clusters.
            leading: list[Callable[[], bool]] = [lambda: True]

            def may_write() -> bool:
                return leading[0]()

            writer = StatusWriter(clients.current, may_write=may_write)
            gateway_writer, gateway_status = gateway_sink(clients.current, controller)
            source = KubeSource(
                store,
                clients=clients,
                selection=Selection(frozenset(config.source.namespaces)),
                problems=writer,
                prober=Prober(store, thresholds=thresholds),
                gateway=GatewayWatch(store, report=writer.report, recheck=config.gateway.recheck)
                if config.gateway.enabled
                else None,
            )
            le = config.leader_election
            if le.enabled:
                if host is None:
                    from ingressfed.errors import ConfigError

                    raise ConfigError(
                        ["leaderElection.enabled: needs source.hostKubeconfig, where the Lease lives"]
                    )
                elector = LeaderElector(
                    host,
                    le.namespace,
                    le.lease_name,
                    os.environ.get("POD_NAME") or default_identity(),
                    LeaseSettings(
                        lease_duration=le.lease_duration,
                        renew_deadline=le.renew_deadline,
                        retry_period=le.retry_period,
                    ),
                    # A new leader re-reads the zone: the previous one may have written since.
                    on_change=lambda leading: controller.schedule(full=True) if leading else None,
                )
                controller.is_leader = lambda: elector.is_leader
                leading[0] = lambda: elector.is_leader
                # Entered before the source so that it is released after the watches stop
                # and before the host client closes.
                await local.enter_async_context(elector)
            await local.enter_async_context(source)
            if host is not None:
                registry = Registry(host, source, may_write=may_write)
                tg.create_task(registry.run(), name="federatedcluster-registry")
            else:
                await source.sync_members([member_from_config(c) for c in config.clusters if not c.disabled])
            tg.create_task(writer.run(), name="status-writer")
            controller.sinks.append(lambda out: writer.submit(statuses_from(out.snapshot, out.desired)))
            tg.create_task(gateway_writer.run(), name="gateway-status-writer")
            controller.sinks.append(gateway_status)
            if tls_offers is not None:
                from ingressfed.kube.tls_secrets import TlsSecretReader

                secrets = TlsSecretReader(
                    clients.current,
                    on_offers=tls_offers,
                    on_problems=gateway_writer.certificate_problems,
                    registry=controller.metrics.registry,
                )
                tg.create_task(secrets.run(), name="tls-secrets")
                controller.sinks.append(
                    lambda out: secrets.submit(out.snapshot, gateway_tls_refs(out.snapshot, controller))
                )
            if acme_observe is not None:
                observe = acme_observe

                def acme_sink(out: ReconcileOutcome) -> None:
                    for cluster, problem in observe(out.snapshot):
                        writer.report(cluster, problem)

                controller.sinks.append(acme_sink)
            await asyncio.Event().wait()  # until cancelled by the app
    finally:
        if host is not None:
            await host.close()
