"""Where ACME challenges are published: dns-01 TXT records through the controller's own provider
(so every provider works, with the usual owned ``_ingressfed.`` companion), http-01 tokens answered
by the proxies' plain listeners before routing: the in-process one and remote ones
(acme/challenge_feed.py).

``order.order_certificate`` runs in a worker thread; ``publish``/``withdraw`` here bridge back to
the event loop, and ``publish`` returns only once the record is applied (and, when nameservers are
given, visible there), so the CA never looks too early.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

from ingressfed.acme.challenge_feed import ChallengeBoard
from ingressfed.acme.order import AcmeFailure, Challenge
from ingressfed.controller import Controller
from ingressfed.core.desired import Desired
from ingressfed.model import RecordSet, RecordType

__all__ = ["DnsChallenges", "HttpChallenges"]

log = logging.getLogger(__name__)

CHALLENGE_TTL = 60


class DnsChallenges:
    """dns-01: TXT records the controller adds to its desired state (``desired``), applied by the
    provider on the next reconcile and removed (record and companion) once withdrawn."""

    def __init__(
        self,
        controller: Controller,
        loop: asyncio.AbstractEventLoop,
        *,
        nameservers: Sequence[tuple[str, int]] = (),
        timeout: float = 60.0,
    ) -> None:
        self.controller = controller
        self.loop = loop
        self.nameservers = tuple(nameservers)
        self.timeout = timeout
        self._values: dict[str, set[str]] = {}
        controller.extra_desired.append(self.desired)

    def desired(self) -> list[Desired]:
        return [
            Desired(
                RecordSet(name, RecordType.TXT, CHALLENGE_TTL, tuple(f'"{v}"' for v in sorted(values))),
                f"acme/{name}",
            )
            for name, values in sorted(self._values.items())
        ]

    def publish(self, challenge: Challenge) -> None:
        asyncio.run_coroutine_threadsafe(self._publish(challenge), self.loop).result(self.timeout + 5)

    def withdraw(self, challenge: Challenge) -> None:
        asyncio.run_coroutine_threadsafe(self._withdraw(challenge), self.loop).result(self.timeout + 5)

    async def _publish(self, challenge: Challenge) -> None:
        name = challenge.name.rstrip(".").lower()
        self._values.setdefault(name, set()).add(challenge.value)
        log.info("acme dns-01: publishing TXT %s for %s", name, challenge.host, extra={"record": name})
        deadline = time.monotonic() + self.timeout
        self.controller.schedule()
        while not self._applied(name, challenge.value):
            if time.monotonic() > deadline:
                raise AcmeFailure(
                    f"TXT {name} was not applied by the DNS provider within {self.timeout:.0f}s"
                )
            await asyncio.sleep(0.1)
        for host, port in self.nameservers:
            while not await _visible(name, challenge.value, host, port):
                if time.monotonic() > deadline:
                    raise AcmeFailure(f"TXT {name} not visible at {host}:{port} within {self.timeout:.0f}s")
                await asyncio.sleep(0.2)

    async def _withdraw(self, challenge: Challenge) -> None:
        name = challenge.name.rstrip(".").lower()
        values = self._values.get(name, set())
        values.discard(challenge.value)
        if not values:
            self._values.pop(name, None)
        log.info("acme dns-01: removing TXT %s for %s", name, challenge.host, extra={"record": name})
        self.controller.schedule()

    def _applied(self, name: str, value: str) -> bool:
        last = self.controller.last
        if last is None:
            return False
        quoted = {value, f'"{value}"'}
        return any(
            r.name == name and r.type is RecordType.TXT and quoted & set(r.values) for r in last.records
        )


async def _visible(name: str, value: str, host: str, port: int) -> bool:
    query = dns.message.make_query(name + ".", dns.rdatatype.TXT)
    try:
        answer = await dns.asyncquery.udp(query, host, port=port, timeout=2)
    except (dns.exception.DNSException, OSError):
        return False
    return any(
        b"".join(r.strings).decode() == value
        for rrset in answer.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for r in rrset
    )


class HttpChallenges:
    """http-01: the pending tokens on a ``ChallengeBoard``, answered by the in-process proxy
    (``answer``) and by remote proxies following ``/v1/feed/acme-challenges``. ``publish`` waits
    (up to ``timeout``) until every remote proxy following the board holds the token."""

    def __init__(
        self,
        board: ChallengeBoard | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        timeout: float = 30.0,
        remote_only: bool = False,
    ) -> None:
        """``remote_only``: no in-process proxy answers, so a token no remote proxy holds yet
        cannot be validated: ``publish`` waits for one to follow (a restarted controller's
        followers reconnect within seconds) instead of sending the CA to certain failure."""
        self.board = board if board is not None else ChallengeBoard()
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.timeout = timeout
        self.remote_only = remote_only

    def publish(self, challenge: Challenge) -> None:
        asyncio.run_coroutine_threadsafe(self._publish(challenge), self.loop).result(self.timeout + 5)

    def withdraw(self, challenge: Challenge) -> None:
        asyncio.run_coroutine_threadsafe(self._withdraw(challenge), self.loop).result(5)

    async def _publish(self, challenge: Challenge) -> None:
        version = self.board.put(challenge.host, challenge.token, challenge.value)
        followers = sorted(self.board.followers())
        log.info(
            "acme http-01: answering token for %s (remote proxies: %s)",
            challenge.host,
            ", ".join(followers) or "none",
        )
        lagging = await self.board.wait_taken(version, self.timeout, at_least_one=self.remote_only)
        if lagging:
            log.warning(
                "acme http-01: proxies %s did not take the token for %s within %.0fs; "
                "asking the CA to validate anyway",
                ", ".join(lagging),
                challenge.host,
                self.timeout,
            )

    async def _withdraw(self, challenge: Challenge) -> None:
        self.board.drop(challenge.token)

    def answer(self, host: str, target: bytes) -> bytes | None:
        """The body for a challenge request, or None when ``target`` is no token being answered."""
        return self.board.answer(host, target)
