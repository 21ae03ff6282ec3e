"""Command-line peers the tests drive (curl, openssl, nghttp, dig, kdig ...)."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["tool"]


def tool(name: str, *, package: str = "") -> str:
    """Path of ``name``; a missing one fails the test under CI (scripts/setup.sh --test installs it)
    and skips it elsewhere. ``package`` names the Debian package in the message."""
    found = shutil.which(name)
    if found is None:
        where = f"Debian: {package}; " if package else ""
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed ({where}scripts/setup.sh --test installs it)")
        pytest.skip(f"{name} is not installed")
    return found
