"""Wiring of the Kubernetes adapters (source, probes, registry, status, leader election) for ``run``."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ingressfed.errors import ConfigError

if TYPE_CHECKING:
    from ingressfed.config import Config
    from ingressfed.controller import Controller
    from ingressfed.store import Store

__all__ = ["run_kubernetes"]


async def run_kubernetes(
    config: Config, store: Store, controller: Controller, stack: contextlib.AsyncExitStack
) -> None:
    raise ConfigError(["source.kind: kubernetes is not available in this build yet"])
