"""Writes charts/ingressfed/dashboards/ingressfed.json, the Grafana dashboard the chart ships.

    python scripts/grafana_dashboard.py > charts/ingressfed/dashboards/ingressfed.json

Every query uses metrics the code exposes (tests/chart/test_dashboard.py scrapes a running
controller and proxy to check); edit the panels here, not the JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'cluster=~"$cluster"'
RATE = "$__rate_interval"


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(
    kind: str,
    title: str,
    targets: list[tuple[str, str]],
    *,
    x: int,
    y: int,
    w: int = 8,
    h: int = 8,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
) -> dict[str, Any]:
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def row(title: str, y: int) -> dict[str, Any]:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def quantile(q: float, histogram: str, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({histogram}_bucket[{RATE}])))"


def dashboard() -> dict[str, Any]:
    requests = f"ingressfed_proxy_requests_total{{{SEL}}}"
    panels = [
        row("Traffic (proxies and edges)", 0),
        panel(
            "timeseries",
            "Requests per second by serving cluster",
            [(f"sum by (cluster) (rate({requests}[{RATE}]))", "{{cluster}}")],
            x=0,
            y=1,
            unit="reqps",
            description="Answered requests by the cluster that served them ('' is the proxy: 404, 503).",
        ),
        panel(
            "timeseries",
            "5xx share by serving cluster",
            [
                (
                    f'sum by (cluster) (rate(ingressfed_proxy_requests_total{{code=~"5..",{SEL}}}[{RATE}]))'
                    f" / sum by (cluster) (rate({requests}[{RATE}]))",
                    "{{cluster}}",
                )
            ],
            x=8,
            y=1,
            unit="percentunit",
        ),
        panel(
            "timeseries",
            "Upstream latency (p50, p99)",
            [
                (
                    f"histogram_quantile(0.5, sum by (le, cluster) "
                    f"(rate(ingressfed_proxy_upstream_latency_seconds_bucket{{{SEL}}}[{RATE}])))",
                    "p50 {{cluster}}",
                ),
                (
                    f"histogram_quantile(0.99, sum by (le, cluster) "
                    f"(rate(ingressfed_proxy_upstream_latency_seconds_bucket{{{SEL}}}[{RATE}])))",
                    "p99 {{cluster}}",
                ),
            ],
            x=16,
            y=1,
            unit="s",
        ),
        panel(
            "timeseries",
            "Backends up by cluster",
            [(f"sum by (cluster) (ingressfed_proxy_backend_up{{{SEL}}})", "{{cluster}}")],
            x=0,
            y=9,
            description="Backends that may receive traffic (active checks and passive ejection together).",
        ),
        panel(
            "timeseries",
            "Retries, ejections, timeouts",
            [
                (
                    f"sum by (cluster) (rate(ingressfed_proxy_retries_total{{{SEL}}}[{RATE}]))",
                    "retries {{cluster}}",
                ),
                (
                    f"sum by (cluster) (rate(ingressfed_proxy_ejections_total{{{SEL}}}[{RATE}]))",
                    "ejections {{cluster}}",
                ),
                (f"sum(rate(ingressfed_proxy_per_try_timeouts_total[{RATE}]))", "per-try timeouts"),
                (
                    f"sum(rate(ingressfed_proxy_retry_budget_exhausted_total[{RATE}]))",
                    "retry budget exhausted",
                ),
            ],
            x=8,
            y=9,
            unit="ops",
        ),
        panel(
            "timeseries",
            "Client connections",
            [
                ("sum(ingressfed_proxy_active_connections)", "open"),
                (f"sum(rate(ingressfed_proxy_refused_connections_total[{RATE}]))", "refused / s"),
                (f"sum(rate(ingressfed_proxy_client_timeouts_total[{RATE}]))", "client timeouts / s"),
            ],
            x=16,
            y=9,
        ),
        row("Controller and DNS", 17),
        panel(
            "stat",
            "Since the last good reconcile",
            [("time() - max(ingressfed_last_successful_reconcile_timestamp_seconds)", "")],
            x=0,
            y=18,
            w=6,
            h=5,
            unit="s",
            thresholds=[(None, "green"), (120, "orange"), (600, "red")],
        ),
        panel(
            "stat",
            "Record sets owned",
            [("max(ingressfed_records_owned)", "")],
            x=6,
            y=18,
            w=6,
            h=5,
        ),
        panel(
            "stat",
            "Problems, conflicts, rejected records",
            [
                ("max(ingressfed_problems)", "objects not published"),
                ("max(ingressfed_conflicts)", "names held by another owner"),
                ("max(ingressfed_failed_records)", "records the provider rejected"),
            ],
            x=12,
            y=18,
            w=12,
            h=5,
            thresholds=[(None, "green"), (1, "red")],
        ),
        panel(
            "timeseries",
            "Reconciles by result",
            [(f"sum by (result) (rate(ingressfed_reconciles_total[{RATE}]))", "{{result}}")],
            x=0,
            y=23,
            unit="ops",
        ),
        panel(
            "timeseries",
            "DNS changes applied",
            [
                (
                    f"sum by (action, type) (rate(ingressfed_changes_applied_total[{RATE}]))",
                    "{{action}} {{type}}",
                )
            ],
            x=8,
            y=23,
            unit="ops",
        ),
        panel(
            "timeseries",
            "Change observed → records applied (p50, p90)",
            [
                (
                    quantile(0.5, "ingressfed_change_to_applied_seconds"),
                    "p50",
                ),
                (
                    quantile(0.9, "ingressfed_change_to_applied_seconds"),
                    "p90",
                ),
            ],
            x=16,
            y=23,
            unit="s",
        ),
        panel(
            "timeseries",
            "DNS provider calls and errors",
            [
                (
                    f"sum by (provider, op) (rate(ingressfed_provider_calls_total[{RATE}]))",
                    "{{provider}} {{op}}",
                ),
                (
                    f"sum by (provider, kind) (rate(ingressfed_provider_errors_total[{RATE}]))",
                    "errors {{provider}} {{kind}}",
                ),
            ],
            x=0,
            y=31,
            w=12,
            unit="ops",
        ),
        panel(
            "timeseries",
            "Reconcile duration (p90)",
            [
                (
                    quantile(0.9, "ingressfed_reconcile_duration_seconds"),
                    "p90",
                )
            ],
            x=12,
            y=31,
            w=12,
            unit="s",
        ),
        row("TLS at the edges", 39),
        panel(
            "table",
            "Days until each host's certificate expires",
            [("min by (host) (ingressfed_tls_certificate_not_after_seconds - time()) / 86400", "{{host}}")],
            x=0,
            y=40,
            w=12,
            unit="d",
            thresholds=[(None, "red"), (7, "orange"), (21, "green")],
        ),
        panel(
            "timeseries",
            "Certificates refused, stale, unknown SNI names",
            [
                (
                    f"sum by (reason) (rate(ingressfed_tls_certificate_refusals_total[{RATE}]))",
                    "refused: {{reason}}",
                ),
                ("sum(ingressfed_tls_certificate_stale)", "hosts on a stale certificate"),
                (f"sum(rate(ingressfed_tls_unknown_server_names_total[{RATE}]))", "unknown SNI / s"),
            ],
            x=12,
            y=40,
            w=12,
        ),
    ]
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "title": "ingressfed",
        "uid": "ingressfed",
        "description": "Federated ingress: traffic per serving cluster, health, DNS changes, certificates.",
        "tags": ["ingressfed"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "graphTooltip": 1,
        "templating": {
            "list": [
                {"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus"},
                {
                    "type": "query",
                    "name": "cluster",
                    "label": "serving cluster",
                    "datasource": DS,
                    "query": {
                        "query": "label_values(ingressfed_proxy_requests_total, cluster)",
                        "refId": "cluster",
                    },
                    "definition": "label_values(ingressfed_proxy_requests_total, cluster)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(dashboard(), indent=2, sort_keys=True) + "\n")
