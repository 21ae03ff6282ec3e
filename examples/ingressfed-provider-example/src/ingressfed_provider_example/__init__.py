"""Example ingressfed provider plugin (entry point ``example-file``)."""

from ingressfed_provider_example.provider import FileProvider

__all__ = ["FileProvider"]
