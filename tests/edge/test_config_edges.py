"""The ``edges:`` and ``edgeHealth:`` config sections: every problem named with its path."""

from __future__ import annotations

import pytest

from ingressfed.config import parse_config
from ingressfed.edge.registry import identities_from_config, rule_from_config
from ingressfed.errors import ConfigError

BASE = {
    "federation": {"name": "federation", "zone": "example.com"},
    "clusters": [{"name": "us", "zone": "us-east1-b"}, {"name": "eu", "zone": "europe-west1-b"}],
}


def test_edges_are_checked_against_the_clusters() -> None:
    doc = {
        **BASE,
        "edges": [
            {"name": "edge-us", "cluster": "us"},
            {"name": "edge-us", "cluster": "mars", "addresses": ["999.1.1.1"]},
        ],
        "edgeHealth": {"quorum": 0, "staleAfter": -1},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    text = str(err.value)
    assert "edges[1].name: 'edge-us' is a duplicate of edges[0]" in text
    assert "edges[1].cluster: 'mars' is not a cluster name; clusters: eu, us" in text
    assert "edges[1].addresses[0]" in text
    assert "edgeHealth.quorum" in text
    assert "edgeHealth.staleAfter" in text


def test_identities_and_rule() -> None:
    config = parse_config(
        {
            **BASE,
            "edges": [{"name": "edge-eu", "cluster": "eu", "addresses": ["198.51.100.2"]}],
            "edgeHealth": {"quorum": 2, "staleAfter": 9},
        }
    )
    rule = rule_from_config(config)
    assert (rule.down_votes, rule.stale_after) == (2, 9)
    idents = {i.name: i for i in identities_from_config(config)}
    assert idents["edge-eu"].addresses == ("198.51.100.2",) and idents["edge-eu"].published
    # The in-process proxy votes as "local" but is not published in DNS.
    assert not idents["local"].published and idents["local"].token is None
    assert rule_from_config(parse_config(BASE)).down_votes is None  # majority by default
