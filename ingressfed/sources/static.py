"""A source that reads clusters' Services and Ingresses from a YAML file.

For the demo and for backends that are not Kubernetes. The file is re-read
when its modification time or size changes; a file that fails validation is
reported and ignored, so the last good state keeps being served (nothing is
half-applied).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingressfed.errors import ConfigError
from ingressfed.model import ClusterStatus, IngressObservation, ServiceObservation
from ingressfed.store import Store

__all__ = ["StaticObjectsLike", "StaticSource"]

log = logging.getLogger(__name__)


class StaticObjectsLike(Protocol):
    @property
    def services(self) -> tuple[ServiceObservation, ...]: ...

    @property
    def ingresses(self) -> tuple[IngressObservation, ...]: ...

    @property
    def cluster_status(self) -> Mapping[str, ClusterStatus]: ...


@dataclass
class _Stamp:
    mtime_ns: int
    size: int


def _load_objects(path: Path) -> StaticObjectsLike:
    from ingressfed.config import load_objects

    return load_objects(path)


class StaticSource:
    def __init__(
        self,
        path: str | Path,
        store: Store,
        *,
        loader: Callable[[Path], StaticObjectsLike] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.store = store
        self.loader: Callable[[Path], StaticObjectsLike] = loader or _load_objects
        self.interval = interval
        self._stamp: _Stamp | None = None
        self.loads = 0
        self.last_error: str | None = None

    def _stat(self) -> _Stamp | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return _Stamp(st.st_mtime_ns, st.st_size)

    def load_once(self) -> bool:
        """Read the file if it changed and apply it; True when the store was updated from it."""
        objects = self.read_if_changed()
        if objects is None:
            return False
        self.apply(objects)
        return True

    def read_if_changed(self) -> StaticObjectsLike | None:
        """The file's objects if it changed since the last read (blocking I/O; no store access)."""
        stamp = self._stat()
        if stamp is None:
            if self.last_error is None:
                self.last_error = f"{self.path}: file not found"
                log.error("static objects file missing", extra={"path": str(self.path)})
            return None
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            objects = self.loader(self.path)
        except ConfigError as e:
            self.last_error = str(e)
            log.error("static objects file rejected, keeping the last good state:\n%s", e)
            return None
        self.last_error = None
        self.loads += 1
        return objects

    def apply(self, objects: StaticObjectsLike) -> None:
        services: dict[str, list[ServiceObservation]] = defaultdict(list)
        ingresses: dict[str, list[IngressObservation]] = defaultdict(list)
        for s in objects.services:
            services[s.cluster].append(s)
        for i in objects.ingresses:
            ingresses[i.cluster].append(i)
        known = set(self.store.cluster_names())
        for name in sorted((set(services) | set(ingresses)) - known):
            log.warning("objects name a cluster that is not a member; ignored", extra={"cluster": name})
        for cluster in known:
            self.store.replace_objects(cluster, services.get(cluster, []), ingresses.get(cluster, []))
        for cluster, status in objects.cluster_status.items():
            if cluster in known:
                self.store.set_cluster_status(cluster, status)

    async def run(self) -> None:
        while True:
            # Reading and parsing block: do them in a thread, but touch the Store only here.
            objects = await asyncio.to_thread(self.read_if_changed)
            if objects is not None:
                self.apply(objects)
            await asyncio.sleep(self.interval)
