"""CLI subcommands in the spirit of kubefed/kubectl: ``join``, ``unjoin``, ``get clusters|services``.

``get clusters`` reads the FederatedClusters of the host; ``get services``
reads each member's federated Services and the ``dns-names`` annotation the
controller writes on them (so it works without reaching the controller).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes_asyncio.client import ApiClient

from ingressfed.kube.clients import ClientError, ClientPool, connect
from ingressfed.kube.join import DEFAULT_NAMESPACE, JoinError, JoinPlan, join, unjoin
from ingressfed.kube.members import GROUP, PLURAL, VERSION, KubeconfigSource, member_from_resource
from ingressfed.kube.objects import DNS_NAMES_KEY
from ingressfed.kube.rest import KubeApiError, request_json

__all__ = ["cluster_rows", "format_age", "register"]

log = logging.getLogger(__name__)

SubParsers = argparse._SubParsersAction


def register(sub: SubParsers[argparse.ArgumentParser]) -> None:
    """Add ``join``, ``unjoin`` and ``get`` to the ``ingressfed`` command line."""
    p = sub.add_parser("join", help="join a member cluster to the federation")
    p.add_argument("name", help="member cluster name (a DNS label, part of zone-level DNS names)")
    p.add_argument("--cluster-context", required=True, help="kubeconfig context of the member")
    _common(p)
    p.add_argument("--region", default="", help="declared region (default: from node labels)")
    p.add_argument("--zone", default="", help="declared zone (default: from node labels)")
    p.add_argument(
        "--token-expiration",
        type=int,
        default=365 * 24 * 3600,
        help="seconds the member token lives (TokenRequest); 0 for a long-lived token Secret",
    )
    p.add_argument(
        "--edge-feed-url", default=None, metavar="URL", help="also print the edge install for this member"
    )
    p.add_argument("--edge-ca-file", default=None, metavar="FILE", help="CA of the controller's certificate")
    p.set_defaults(func=run_join)

    p = sub.add_parser("unjoin", help="remove a member cluster and everything join created")
    p.add_argument("name")
    p.add_argument("--cluster-context", default=None, help="kubeconfig context of the member (to clean it)")
    _common(p)
    p.set_defaults(func=run_unjoin)

    if "get" in sub.choices:
        return  # ingressfed.status.commands owns ``get`` in the CLI and calls run_get for the host
    p = sub.add_parser("get", help="show federation members or federated services")
    p.add_argument("what", choices=["clusters", "services"])
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml"], default=None)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--host-cluster-context", default=None)
    p.set_defaults(func=run_get)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: ~/.kube/config)")
    p.add_argument("--host-cluster-context", default=None, help="host cluster context (registry)")
    p.add_argument(
        "--host-namespace", default=DEFAULT_NAMESPACE, help="namespace of the controller in the host"
    )
    p.add_argument("--config", type=Path, default=None, help="no host: record the member in this YAML config")


async def _client(kubeconfig: str | None, context: str | None) -> ApiClient:
    return await connect(KubeconfigSource(path=kubeconfig, context=context))


async def run_join(args: argparse.Namespace) -> int:
    try:
        plan = JoinPlan(
            name=args.name,
            host_namespace=args.host_namespace,
            region=args.region,
            zone=args.zone,
            token_seconds=args.token_expiration or None,
        )
        member = await _client(args.kubeconfig, args.cluster_context)
        try:
            host = (
                await _client(args.kubeconfig, args.host_cluster_context)
                if args.host_cluster_context
                else None
            )
            try:
                await join(plan, member, host=host, config_file=args.config)
            finally:
                if host is not None:
                    await host.close()
        finally:
            await member.close()
    except (JoinError, ClientError, KubeApiError) as exc:
        print(f"error: join {args.name}: {exc}", file=sys.stderr)
        return 1
    where = f"host {args.host_cluster_context}" if args.host_cluster_context else str(args.config)
    print(f"cluster {args.name} joined ({where})")
    if getattr(args, "edge_feed_url", None):
        from ingressfed.edge.install import EdgeInstall, edge_install_commands

        spec = EdgeInstall(
            cluster=args.name,
            context=args.cluster_context,
            feed_url=args.edge_feed_url,
            ca_file=args.edge_ca_file,
        )
        print(f"\nEdge for {args.name} (a proxy there, following the host's feed; docs/install.md):")
        for line in edge_install_commands(spec):
            print(f"  {line}")
    return 0


async def run_unjoin(args: argparse.Namespace) -> int:
    try:
        plan = JoinPlan(name=args.name, host_namespace=args.host_namespace)
        member = await _client(args.kubeconfig, args.cluster_context) if args.cluster_context else None
        host = (
            await _client(args.kubeconfig, args.host_cluster_context) if args.host_cluster_context else None
        )
        try:
            deleted = await unjoin(plan, member, host=host, config_file=args.config)
        finally:
            for api in (member, host):
                if api is not None:
                    await api.close()
    except (JoinError, ClientError, KubeApiError) as exc:
        print(f"error: unjoin {args.name}: {exc}", file=sys.stderr)
        return 1
    print(f"cluster {args.name} unjoined ({len(deleted)} objects removed)")
    return 0


def format_age(created: str | None, *, now: datetime) -> str:
    """kubectl's short age: 45s, 12m, 3h, 7d."""
    if not created:
        return "<unknown>"
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    secs = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size * (2 if unit != "m" else 1):
            return f"{secs // size}{unit}"
    return f"{secs}s"


def cluster_rows(items: Sequence[Mapping[str, Any]], *, now: datetime, wide: bool) -> list[list[str]]:
    rows = [["NAME", "STATUS", "AGE", *(["REGION", "ZONE"] if wide else [])]]
    for obj in sorted(items, key=lambda o: str((o.get("metadata") or {}).get("name", ""))):
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        spec = obj.get("spec") or {}
        row = [str(meta.get("name", "")), str((ready or {}).get("reason") or "Unknown")]
        row.append(format_age(meta.get("creationTimestamp"), now=now))
        if spec.get("disabled"):
            row[1] = "Disabled"
        if wide:
            row += [
                spec.get("region") or status.get("observedRegion") or "",
                spec.get("zone") or status.get("observedZone") or "",
            ]
        rows.append(row)
    return rows


def _print_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _dump(doc: Any, fmt: str, out: TextIO) -> None:
    out.write(
        json.dumps(doc, indent=2, sort_keys=True) + "\n"
        if fmt == "json"
        else yaml.safe_dump(doc, sort_keys=True)
    )


async def run_get(args: argparse.Namespace, *, out: TextIO = sys.stdout) -> int:
    try:
        host = await _client(args.kubeconfig, args.host_cluster_context)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        listing = await request_json(host, "GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}")
        items = [i for i in listing.get("items") or [] if isinstance(i, Mapping)]
        if args.what == "clusters":
            if args.output in ("json", "yaml"):
                _dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output, out)
            else:
                _print_table(cluster_rows(items, now=datetime.now(UTC), wide=args.output == "wide"), out)
            return 0
        services = await _federated_services(host, items)
        if args.output in ("json", "yaml"):
            _dump(services, args.output, out)
        else:
            rows = [["NAMESPACE", "NAME", "DNS NAME", "CLUSTERS"]]
            for svc in services:
                levels = svc["levels"] or {n: svc["servingClusters"] for n in svc["names"]}
                for dns_name, serving in sorted(levels.items()):
                    rows.append([svc["namespace"], svc["name"], dns_name, ",".join(serving) or "<none>"])
            _print_table(rows, out)
        return 0
    except KubeApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await host.close()


async def _federated_services(host: ApiClient, members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each federated Service with the controller's published names, merged across members."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    async with ClientPool(host=host) as pool:
        for obj in members:
            spec = member_from_resource(obj).value
            if spec is None or spec.disabled:
                continue
            try:
                api = await pool.get(spec.name, spec.kubeconfig)
                listing = await request_json(api, "GET", "/api/v1/services")
            except (ClientError, KubeApiError) as exc:
                log.warning("cannot read services of %s: %s", spec.name, exc)
                continue
            for svc in listing.get("items") or []:
                meta = svc.get("metadata") or {}
                raw = (meta.get("annotations") or {}).get(DNS_NAMES_KEY)
                if not isinstance(raw, str):
                    continue
                try:
                    doc = json.loads(raw)
                except ValueError:
                    continue
                key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
                entry = merged.setdefault(
                    key,
                    {
                        "namespace": key[0],
                        "name": key[1],
                        "names": [],
                        "servingClusters": [],
                        "levels": {},
                        "clusters": [],
                    },
                )
                entry["clusters"] = sorted({*entry["clusters"], spec.name})
                entry["names"] = sorted({*entry["names"], *doc.get("names", [])})
                entry["servingClusters"] = sorted(
                    {*entry["servingClusters"], *doc.get("servingClusters", [])}
                )
                for name, serving in (doc.get("levels") or {}).items():
                    entry["levels"][name] = sorted({*entry["levels"].get(name, []), *serving})
    return [merged[k] for k in sorted(merged)]
