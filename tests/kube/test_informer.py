"""The generic informer against the fake API server: pages, 410, backoff, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ingressfed.kube.informer import Informer, Resource
from ingressfed.kube.rest import KubeApiError
from tests.kube.conftest import FAST, eventually, service

SERVICES = Resource("/api/v1/services", "Service")


class Recorder:
    """A WatchHandler that keeps the set the informer says exists."""

    def __init__(self) -> None:
        self.objects: dict[str, Mapping[str, Any]] = {}
        self._pending: dict[str, Mapping[str, Any]] = {}
        self.relists = 0
        self.pages: list[int] = []
        self.errors: list[KubeApiError] = []

    def relist_started(self) -> None:
        self._pending = {}

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None:
        self.pages.append(len(objects))
        for o in objects:
            self._pending[o["metadata"]["name"]] = o

    def relist_finished(self) -> None:
        self.objects, self._pending = self._pending, {}
        self.relists += 1

    def changed(self, event: str, obj: Mapping[str, Any]) -> None:
        if event == "DELETED":
            self.objects.pop(obj["metadata"]["name"], None)
        else:
            self.objects[obj["metadata"]["name"]] = obj

    def failed(self, error: KubeApiError) -> None:
        self.errors.append(error)


async def test_paginated_list_then_iterations_hook(clusters) -> None:
    (fake,), _ = await clusters(1)
    for i in range(120):
        fake.add(service(f"s{i}"))
    rec = Recorder()
    async with fake.api_client() as api:
        informer = Informer(api, SERVICES, rec, options=FAST)
        await informer.run(iterations=3)  # exactly the three list pages
    assert rec.pages == [50, 50, 20]
    assert len(rec.objects) == 120 and informer.synced
    assert fake.count(verb="list", resource="services") == 3


async def test_410_at_watch_start_relists(clusters) -> None:
    (fake,), _ = await clusters(1)
    fake.add(service("a"))
    rec = Recorder()
    async with fake.api_client() as api:
        informer = Informer(api, SERVICES, rec, options=FAST)
        fake.fail(410, times=1, verb="watch", resource="services")
        task = asyncio.create_task(informer.run())
        try:
            await eventually(lambda: rec.relists == 2, what="relist after 410")
            fake.add(service("b"))
            await eventually(lambda: set(rec.objects) == {"a", "b"})
            assert not rec.errors  # 410 is routine, not a problem
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_errors_back_off_with_growing_delays(clusters) -> None:
    (fake,), _ = await clusters(1)
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)

    fake.fail(503, times=4, verb="list", resource="services")
    rec = Recorder()
    async with fake.api_client() as api:
        informer = Informer(api, SERVICES, rec, options=FAST, rand=lambda: 0.0, sleep=sleep)
        await informer.run(iterations=5)
    assert [e.status for e in rec.errors] == [503] * 4
    assert delays == [0.005, 0.01, 0.02, 0.04]
    assert rec.relists == 1


async def test_cancellation_propagates_from_a_hanging_watch(clusters) -> None:
    (fake,), _ = await clusters(1)
    rec = Recorder()
    async with fake.api_client() as api:
        informer = Informer(api, SERVICES, rec, options=FAST)
        fake.hang(verb="watch", resource="services")
        task = asyncio.create_task(informer.run())
        await eventually(lambda: fake.count(verb="watch", resource="services") >= 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
