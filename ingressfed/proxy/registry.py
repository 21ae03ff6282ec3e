"""The open client connections of one proxy and its upstream connects in flight, for drain and close."""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["ConnectionRegistry", "Tracked"]


class Tracked(Protocol):
    """A client connection as the registry sees it."""

    @property
    def busy(self) -> bool: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def check_timeouts(self, now: float) -> None: ...


class ConnectionRegistry:
    def __init__(self, *, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.clients: set[Tracked] = set()
        self.per_address: dict[str, int] = {}  # open connections per untrusted client address
        self.connecting: set[asyncio.Task[None]] = set()  # upstream connects in progress
        self.no_clients = asyncio.Event()  # set when the last client connection closes
        self.draining = False

    def admit(self, client: Tracked, address: str, *, exempt: bool) -> str | None:
        """Register a new connection, or say which cap refuses it ("total" or "per_client")."""
        if len(self.clients) >= self.max_connections:
            return "total"
        if not exempt:
            count = self.per_address.get(address, 0)
            if count >= self.max_per_client:
                return "per_client"
            self.per_address[address] = count + 1
        self.clients.add(client)
        return None

    def remove(self, client: Tracked, address: str, *, exempt: bool) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        if not exempt:
            count = self.per_address.get(address, 0) - 1
            if count > 0:
                self.per_address[address] = count
            else:
                self.per_address.pop(address, None)
        if not self.clients:
            self.no_clients.set()

    def track(self, task: asyncio.Task[None]) -> None:
        # The loop keeps only weak references to tasks; the registry keeps this one alive.
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    def check_timeouts(self, now: float) -> None:
        for client in list(self.clients):
            client.check_timeouts(now)

    def close_idle(self) -> None:
        for client in list(self.clients):
            if not client.busy:
                client.close()

    async def wait_empty(self, grace: float) -> None:
        if not self.clients:
            return
        self.no_clients.clear()
        try:
            async with asyncio.timeout(grace):
                await self.no_clients.wait()
        except TimeoutError:
            pass

    def abort_all(self) -> None:
        for client in list(self.clients):
            client.abort()
        for task in list(self.connecting):
            task.cancel()
