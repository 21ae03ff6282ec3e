"""Starts ACME in ``ingressfed run`` (called from app.py with the controller and the proxy)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ingressfed.acme.challenge_feed import ChallengeBoard, challenge_answers
from ingressfed.acme.challenges import DnsChallenges, HttpChallenges
from ingressfed.acme.manager import AcmeManager
from ingressfed.config import AcmeSection
from ingressfed.controller import Controller
from ingressfed.tls.book import Offer
from ingressfed.tls.catalog import CertificateCatalog

__all__ = ["start_acme"]


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def start_acme(
    section: AcmeSection,
    controller: Controller,
    proxy: Any,
    *,
    on_offers: Callable[[list[Offer]], None],
    zone: str = "",
    annotations: bool = False,
    board: ChallengeBoard | None = None,
) -> tuple[AcmeManager, asyncio.Task[None]]:
    """The manager and its running task. ``proxy``: the in-process ProxyServer (its HTTPS
    catalogue serves the certificates), or None when only remote proxies serve them (they get
    them through ``on_offers``: the certificate feed). ``annotations``: Ingresses will opt hosts
    in (``manager.observe`` is called after each reconcile). ``board``: where http-01 tokens are
    put for remote proxies (served on ``/v1/feed/acme-challenges``)."""
    if section.eab is not None:
        section.eab.hmac()  # a missing or malformed key file stops the start, naming the field
    http = None
    dns = None
    https = getattr(proxy, "https", None)
    if section.challenge == "http-01":
        http = HttpChallenges(board, timeout=section.propagation_timeout, remote_only=proxy is None)
        if proxy is not None:
            proxy.answerers.append(http.answer)  # remote proxies answer from the board's feed
            # ... and the in-process proxy's worker processes from shared answers
            http.board.listeners.append(lambda tokens: proxy.share_answers("acme", challenge_answers(tokens)))
    else:
        dns = DnsChallenges(
            controller,
            asyncio.get_running_loop(),
            nameservers=[_address(a) for a in section.propagation_nameservers],
            timeout=section.propagation_timeout,
        )
    manager = AcmeManager(
        section,
        https.catalog if https is not None else CertificateCatalog(),
        dns=dns,
        http=http,
        is_leader=lambda: controller.is_leader(),  # noqa: PLW0108 - the elector replaces it later
        zone=zone,
        annotations=annotations,
    )
    manager.listeners.append(on_offers)
    return manager, asyncio.create_task(manager.run(), name="acme")
