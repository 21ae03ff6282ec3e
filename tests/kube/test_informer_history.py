"""The informer against a short watch history: resume without replay, compaction without loss."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from ingressfed.kube.informer import Informer, Resource
from ingressfed.kube.rest import KubeApiError
from tests.kube.conftest import FAST, eventually, service

SERVICES = Resource("/api/v1/services", "Service")


def _rv(obj: Mapping[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


class Log:
    """A WatchHandler that keeps everything it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []  # (type, name, resourceVersion)
        self.listed: list[tuple[str, int]] = []  # (name, resourceVersion) from every list page
        self.objects: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self.relists = 0
        self.errors: list[KubeApiError] = []

    def relist_started(self) -> None:
        self._pending = {}

    def relisted_page(self, objects: Sequence[Mapping[str, Any]]) -> None:
        for o in objects:
            self._pending[o["metadata"]["name"]] = _rv(o)
            self.listed.append((o["metadata"]["name"], _rv(o)))

    def relist_finished(self) -> None:
        self.objects, self._pending = self._pending, {}
        self.relists += 1

    def changed(self, event: str, obj: Mapping[str, Any]) -> None:
        name = obj["metadata"]["name"]
        self.events.append((event, name, _rv(obj)))
        if event == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = _rv(obj)

    def failed(self, error: KubeApiError) -> None:
        self.errors.append(error)


async def _running(informer: Informer) -> asyncio.Task[None]:
    return asyncio.create_task(informer.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_resumed_watch_replays_nothing_it_already_delivered(clusters) -> None:
    """After a dropped stream the informer resumes from the last event it saw, not from its list.

    Without the line that moves the informer's resourceVersion forward on each event, the resumed
    watch replays a and b (or, past the history window, relists): this test then fails.
    """
    (fake,), _ = await clusters(1)
    log = Log()
    async with fake.api_client() as api:
        informer = Informer(api, SERVICES, log, options=FAST)
        task = await _running(informer)
        try:
            await eventually(lambda: log.relists == 1 and fake.open_watches == 1, what="first watch")
            fake.add(service("a"))
            fake.add(service("b"))
            await eventually(lambda: set(log.objects) == {"a", "b"}, what="a and b")
            watches = fake.count(verb="watch", resource="services")
            assert fake.drop_watches() == 1
            await eventually(
                lambda: fake.count(verb="watch", resource="services") > watches and fake.open_watches == 1,
                what="the resumed watch",
            )
            fake.add(service("c"))
            await eventually(lambda: set(log.objects) == {"a", "b", "c"}, what="c")
        finally:
            await _stop(task)
    assert [(t, n) for t, n, _ in log.events] == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert log.relists == 1
    assert [e.status for e in log.errors] == [0]  # the cut stream, and nothing else


async def test_compaction_during_a_watch_replays_nothing_and_loses_nothing(clusters) -> None:
    """Writes go on while history is compacted under an open watch (410 mid-stream, then a relist)."""
    (fake,), _ = await clusters(1)
    log = Log()
    writes: list[tuple[str, int]] = []  # (name, resourceVersion) of every write the test made
    async with fake.api_client() as api:
        informer = Informer(api, SERVICES, log, options=FAST)
        task = await _running(informer)
        try:
            await eventually(lambda: log.relists == 1 and fake.open_watches == 1, what="first watch")
            for i in range(30):
                obj = fake.add(service(f"s{i % 7}", ip=f"10.0.0.{i + 1}"))
                writes.append((obj["metadata"]["name"], _rv(obj)))
                if i == 15:
                    fake.compact(expire_watches=True)
                await asyncio.sleep(0)  # let the stream interleave with the writes
            final = {o["metadata"]["name"]: _rv(o) for o in fake.objects("services")}
            await eventually(lambda: log.objects == final, what="the informer's set equals the server's")
        finally:
            await _stop(task)
    assert log.relists == 2, "compaction must cost exactly one relist"
    # Nothing replayed: watch events arrive in resourceVersion order, each at most once, and never
    # repeat what a list already delivered.
    rvs = [rv for _, _, rv in log.events]
    assert rvs == sorted(set(rvs))
    listed = set(log.listed)
    assert not [e for e in log.events if (e[1], e[2]) in listed]
    # Nothing lost: every write reached the handler, as an event or inside a later list.
    delivered = {(n, rv) for _, n, rv in log.events}
    for name, rv in writes:
        assert (name, rv) in delivered or any(n == name and lrv >= rv for n, lrv in listed), (name, rv)
    assert not log.errors  # 410 is routine


async def test_a_watch_older_than_the_history_window_gets_410_and_relists(tmp_path) -> None:
    """The fake keeps a short per-type history (like the watch cache): an old resume is refused."""
    from tests.fakes.kube.server import FakeKubeAPI

    async with FakeKubeAPI(history_size=5) as fake, fake.api_client() as api:
        log = Log()
        informer = Informer(api, SERVICES, log, options=FAST)
        await informer.run(iterations=1)  # the list only
        for i in range(8):
            fake.add(service(f"s{i}"))
        fake.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other-type"}})
        task = await _running(informer)
        try:
            await eventually(lambda: log.relists == 2 and len(log.objects) == 8, what="relist after 410")
        finally:
            await _stop(task)
        assert log.events == [] and not log.errors
