"""Test support shipped with ingressfed: the provider contract suite every provider must pass.

``pip install 'ingressfed[test]'`` brings pytest and pytest-asyncio; subclass
:class:`ProviderContract` and give it one ``provider`` fixture (see
docs/providers.md, "Writing a provider plugin").
"""

from ingressfed.testing.contract import OWNER, ProviderContract, converge, expected, managed, pending

__all__ = ["OWNER", "ProviderContract", "converge", "expected", "managed", "pending"]
