"""Fixtures shared by the provider tests: moto in server mode with fake credentials."""

from tests.fakes.moto_server import aws_env, moto_endpoint

__all__ = ["aws_env", "moto_endpoint"]
