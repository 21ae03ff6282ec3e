"""Loopback ports for servers a test (or bench) starts as a separate process, which must be told
a port before it binds one."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_ports"]


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


def free_ports(count: int, *, udp: bool = True) -> list[int]:
    """``count`` distinct ports, each as ``free_port`` gives. Calling ``free_port`` again and
    again can hand out the same port twice (each is released before the next is picked), and a
    process told to bind two things on one port fails with EADDRINUSE."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            port = free_port(udp=udp)
            if port in ports:
                continue
            hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(hold)
            try:
                hold.bind(("127.0.0.1", port))  # keeps it out of the next picks
            except OSError:
                continue
            ports.append(port)
        return ports
    finally:
        for hold in held:
            hold.close()
