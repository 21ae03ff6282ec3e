"""Loopback ports for servers a test (or bench) starts as a separate process, which must be told
a port before it binds one."""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(*, udp: bool = True) -> int:
    """A 127.0.0.1 port free for TCP right now, and for UDP too unless ``udp`` is False (a DNS
    server binds both). Free now, not reserved: bind it soon."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            if not udp:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no loopback port free for both TCP and UDP")
