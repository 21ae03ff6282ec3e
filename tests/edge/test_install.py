"""The edge install ``ingressfed join --edge-feed-url`` prints: commands that parse, values the chart has."""

from __future__ import annotations

import shlex

from ingressfed.edge.install import EdgeInstall, edge_install_commands


def test_commands_name_the_member_the_feed_and_the_secret() -> None:
    lines = edge_install_commands(
        EdgeInstall(cluster="cluster-europe-west1-b", context="eu", feed_url="https://ctl.example.net:9090",
                    ca_file="ca.pem")
    )  # fmt: skip
    secret = shlex.split(lines[1])
    assert secret[:7] == ["kubectl", "--context", "eu", "-n", "ingressfed-system", "create", "secret"]
    assert "--from-file=ca.crt=ca.pem" in secret and "--from-file=token=feed-token" in secret
    helm = shlex.split(lines[2])
    sets = dict(a.split("=", 1) for a in helm[helm.index("--set") :] if a != "--set")
    assert sets == {
        "role": "edge",
        "edge.name": "edge-europe-west1-b",
        "edge.cluster": "cluster-europe-west1-b",
        "edge.feedUrl": "https://ctl.example.net:9090",
        "edge.secret": "ingressfed-edge",
        "edge.ca": "true",
    }
    assert "edges: [{name: edge-europe-west1-b, cluster: cluster-europe-west1-b" in lines[4]


def test_odd_names_are_quoted() -> None:
    (_, secret, helm, *_) = edge_install_commands(
        EdgeInstall(cluster="c1", context="my ctx", feed_url="http://h:1")
    )
    assert "--context 'my ctx'" in secret and "--kube-context 'my ctx'" in helm


def test_printed_helm_values_render_the_edge_role() -> None:
    from tests.chart.test_chart import CHART, _run_helm

    (_, _, helm, *_) = edge_install_commands(
        EdgeInstall(cluster="cluster-asia-east1-a", context="asia", feed_url="https://ctl.example.net:9090")
    )
    words = shlex.split(helm)
    sets = [w for i, w in enumerate(words) if i and words[i - 1] == "--set"]
    result = _run_helm("template", "edge", str(CHART), *(a for s in sets for a in ("--set", s)))
    assert result.returncode == 0, result.stderr
    assert "- --edge\n" in result.stdout and "- edge-asia-east1-a\n" in result.stdout
    assert "kind: ClusterRole" not in result.stdout
