"""The pytest plugin (entry point ``pytest11: ingressfed``) installed with ingressfed.

It registers the ``provider_contract`` marker the contract suite carries, so
``pytest -m provider_contract`` runs only the contract, and ``--strict-markers``
accepts it in a plugin author's project.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "provider_contract: a test of ingressfed's provider contract suite (ingressfed.testing)"
    )
