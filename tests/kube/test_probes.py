"""The member probe loop (``Prober.run``): its cancellation is never lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ingressfed.core.health import HealthThresholds
from ingressfed.kube import probes
from ingressfed.kube.probes import Prober
from ingressfed.model import ClusterStatus
from ingressfed.store import Store


async def test_probe_loop_stops_when_cancelled_as_a_probe_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI hang: on Python 3.11 ``asyncio.wait_for`` hands back the probe's answer when the member's
    cancellation lands in the same tick, so the probe loop outlived its member and the source's
    teardown waited for it forever."""
    answers: list[asyncio.Future[tuple[int, str]]] = []

    async def readyz(api: Any, path: str, *, request_timeout: float) -> tuple[int, str]:
        answer: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        answers.append(answer)
        return await answer

    monkeypatch.setattr(probes, "request_status", readyz)
    store = Store()
    prober = Prober(store, thresholds=HealthThresholds(period=0.01, timeout=5))
    task = asyncio.create_task(prober.run("c0", api=None))  # type: ignore[arg-type]
    for _ in range(3):  # a few probes answered normally first
        while len(answers) < 1 or answers[-1].done():
            await asyncio.sleep(0.005)
        answers[-1].set_result((200, "ok"))
    while answers[-1].done():
        await asyncio.sleep(0.005)
    assert prober.health("c0") is not None and prober.health("c0").status is ClusterStatus.READY  # type: ignore[union-attr]
    answers[-1].set_result((200, "ok"))  # the answer arrives ...
    task.cancel()  # ... in the same tick as the member's cancellation
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled(), (
        f"the probe loop ignored its cancellation ({len(answers)} probes)"
    )
