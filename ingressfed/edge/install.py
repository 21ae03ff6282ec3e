"""The edge install for one member, as the commands an operator runs (pure: text in, text out).

``ingressfed join NAME ... --edge-feed-url URL`` prints them after joining: a Secret with the feed
token (and CA) in the member, the chart with ``role: edge`` there, and the host-side ``edges:``
entry that makes the controller accept the edge's reports and publish its address.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["EdgeInstall", "edge_install_commands"]


@dataclass(frozen=True, slots=True)
class EdgeInstall:
    cluster: str  # the member's name in the federation
    context: str  # its kubeconfig context
    feed_url: str  # the host controller as the member reaches it
    namespace: str = "ingressfed-system"
    release: str = "ingressfed-edge"
    secret: str = "ingressfed-edge"  # noqa: S105 - a Secret's name, not a secret
    chart: str = "charts/ingressfed"
    ca_file: str | None = None  # CA bundle of the controller's certificate, when private
    token_file: str = "feed-token"  # noqa: S105 - where the operator keeps the host's feed token

    @property
    def edge_name(self) -> str:
        name = self.cluster.removeprefix("cluster-")
        return f"edge-{name}"[:63].rstrip("-")


def edge_install_commands(spec: EdgeInstall) -> list[str]:
    q = shlex.quote
    ctx, ns = q(spec.context), q(spec.namespace)
    secret = (
        f"kubectl --context {ctx} -n {ns} create secret generic {q(spec.secret)}"
        f" --from-file=token={q(spec.token_file)}"
    )
    if spec.ca_file:
        secret += f" --from-file=ca.crt={q(spec.ca_file)}"
    helm = (
        f"helm upgrade --install {q(spec.release)} {q(spec.chart)} --kube-context {ctx} -n {ns}"
        f" --set role=edge --set edge.name={q(spec.edge_name)} --set edge.cluster={q(spec.cluster)}"
        f" --set edge.feedUrl={q(spec.feed_url)} --set edge.secret={q(spec.secret)}"
    )
    if spec.ca_file:
        helm += " --set edge.ca=true"
    return [
        f"kubectl --context {ctx} create namespace {ns} --dry-run=client -o yaml"
        f" | kubectl --context {ctx} apply -f -",
        secret,
        helm,
        f"# on the host, declare the edge (its address: the LoadBalancer of Service {spec.release}-proxy):",
        f"#   edges: [{{name: {spec.edge_name}, cluster: {spec.cluster}, addresses: [LB_ADDRESS]}}]",
    ]
