"""API server liveness: probe each member's ``/readyz`` and feed the core's health machine.

This module only reports ``Ready``/``NotReady``/``Offline``. Whether an
Offline member's records stay in DNS (its data plane still answers) is
decided in ``core.health.cluster_serves``, not here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from kubernetes_asyncio.client import ApiClient

from ingressfed.core.health import ClusterHealth, HealthThresholds, ProbeOutcome, observe
from ingressfed.kube.rest import KubeApiError, request_status
from ingressfed.model import ClusterStatus
from ingressfed.store import Store

__all__ = ["Prober", "outcome_of", "probe_once"]

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = HealthThresholds()
HealthListener = Callable[[str, ClusterHealth], None]


def outcome_of(status: int | None) -> ProbeOutcome:
    """200 is ready; any other answer means the server is up but not ready; no answer is unreachable."""
    if status is None:
        return ProbeOutcome.UNREACHABLE
    return ProbeOutcome.OK if status == 200 else ProbeOutcome.NOT_READY


async def probe_once(api: ApiClient, *, limit: float) -> tuple[ProbeOutcome, str]:
    """One ``GET /readyz``: the outcome and a short human reason."""
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that lands
        # just as the probe answers, and the member's probe loop then outlives its member.
        async with asyncio.timeout(limit):
            status, body = await request_status(api, "/readyz", request_timeout=limit)
    except KubeApiError as exc:
        return ProbeOutcome.UNREACHABLE, str(exc)[:300]
    except TimeoutError:
        return ProbeOutcome.UNREACHABLE, f"/readyz did not answer within {limit:g}s"
    outcome = outcome_of(status)
    return outcome, "" if outcome is ProbeOutcome.OK else f"/readyz answered {status}: {body[:200]}"


class Prober:
    """Per-member health; ``run`` is one member's probe loop (a task the source owns)."""

    def __init__(
        self,
        store: Store,
        *,
        thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_health: HealthListener | None = None,
    ) -> None:
        self._store = store
        self._thresholds = thresholds
        self._clock = clock
        self._sleep = sleep
        self._health: dict[str, ClusterHealth] = {}
        self._messages: dict[str, str] = {}
        self.on_health = on_health

    def health(self, name: str) -> ClusterHealth | None:
        return self._health.get(name)

    def message(self, name: str) -> str:
        """Why the last probe failed ("" after a success)."""
        return self._messages.get(name, "")

    def forget(self, name: str) -> None:
        self._health.pop(name, None)
        self._messages.pop(name, None)

    def record(self, name: str, outcome: ProbeOutcome, message: str = "") -> ClusterHealth:
        """Feed one outcome (also used when a member's client cannot even be built)."""
        prev = self._health.get(name, ClusterHealth())
        nxt = observe(prev, outcome, now=self._clock(), thresholds=self._thresholds)
        self._health[name] = nxt
        self._messages[name] = message
        if nxt.status is not prev.status:
            log.info(
                "cluster %s is %s (%s)", name, nxt.status, message or nxt.reason, extra={"cluster": name}
            )
        self._store.set_cluster_status(name, nxt.status)
        if self.on_health is not None:
            self.on_health(name, nxt)
        return nxt

    def mark_unreachable(self, name: str, message: str) -> None:
        self.record(name, ProbeOutcome.UNREACHABLE, message)

    async def run(self, name: str, api: ApiClient, *, iterations: int | None = None) -> None:
        """Probe every ``period`` until cancelled (or ``iterations`` probes)."""
        done = 0
        while iterations is None or done < iterations:
            outcome, message = await probe_once(api, limit=self._thresholds.timeout)
            self.record(name, outcome, message)
            done += 1
            if iterations is None or done < iterations:
                await self._sleep(self._thresholds.period)


def status_of(health: ClusterHealth | None) -> ClusterStatus:
    return health.status if health is not None else ClusterStatus.NOT_READY
