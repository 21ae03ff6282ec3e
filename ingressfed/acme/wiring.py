"""Starts ACME in ``ingressfed run`` (called from app.py with the controller and the proxy)."""

from __future__ import annotations

import asyncio
from typing import Any

from ingressfed.acme.challenges import DnsChallenges, HttpChallenges
from ingressfed.acme.manager import AcmeManager
from ingressfed.config import AcmeSection
from ingressfed.controller import Controller

__all__ = ["start_acme"]


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def start_acme(
    section: AcmeSection, controller: Controller, proxy: Any
) -> tuple[AcmeManager, asyncio.Task[None]]:
    """The manager and its running task; ``proxy`` is the ProxyServer with an HTTPS listener."""
    http = None
    dns = None
    if section.challenge == "http-01":
        http = HttpChallenges()
        proxy.answerers.append(http.answer)
    else:
        dns = DnsChallenges(
            controller,
            asyncio.get_running_loop(),
            nameservers=[_address(a) for a in section.propagation_nameservers],
            timeout=section.propagation_timeout,
        )
    manager = AcmeManager(
        section,
        proxy.https.catalog,
        dns=dns,
        http=http,
        is_leader=lambda: controller.is_leader(),  # noqa: PLW0108 - the elector replaces it later
    )
    return manager, asyncio.create_task(manager.run(), name="acme")
