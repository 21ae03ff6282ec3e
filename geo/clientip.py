"""Which address is the client: forwarding headers are believed only from trusted proxies (pure).

Walks the forwarding chain from the right (the hop nearest to us), skipping
addresses of trusted proxies, and takes the first untrusted one: everything
left of it was written by the client itself and may be forged. An entry that
does not parse ("unknown", an obfuscated ``_node``, garbage) stops the walk
and the last address that did parse is the client.

Exactly one header is believed, chosen in configuration (``geo.clientAddressHeader``):
``X-Forwarded-For`` or ``Forwarded`` (RFC 7239). The other is never read, so a client cannot add
a second, unchecked chain that a trusted load balancer did not write (the load balancer appends
to one of them only).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Literal

__all__ = ["CLIENT_HEADERS", "ClientHeader", "TrustedProxies", "client_address", "parse_address"]

ClientHeader = Literal["X-Forwarded-For", "Forwarded"]
CLIENT_HEADERS: tuple[ClientHeader, ...] = ("X-Forwarded-For", "Forwarded")

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _unmap(ip: _Address) -> _Address:
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_address(text: str) -> _Address | None:
    """One node address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``,
    ``2001:db8::1``, ``[2001:db8::1]``, ``[2001:db8::1]:80``. None when malformed."""
    value = text.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        rest = value[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        value = value[1:end]
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            return None
        value = host
    try:
        return _unmap(ipaddress.ip_address(value))
    except ValueError:
        return None


class TrustedProxies:
    """The CIDRs whose forwarding headers are believed."""

    __slots__ = ("_networks",)

    def __init__(self, cidrs: Sequence[str]) -> None:
        networks: list[_Network] = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {cidr!r} is not a CIDR such as 10.0.0.0/8: {exc}") from None
        self._networks: tuple[_Network, ...] = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, ip: str | _Address) -> bool:
        addr = parse_address(ip) if isinstance(ip, str) else _unmap(ip)
        if addr is None:
            return False
        return any(addr.version == n.version and addr in n for n in self._networks)


def _split_outside_quotes(text: str, sep: str) -> Iterator[str]:
    start = 0
    quoted = False
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def _forwarded_for(element: str) -> str | None:
    """The ``for=`` node of one RFC 7239 forwarded-element, unquoted; None if absent."""
    for pair in _split_outside_quotes(element, ";"):
        key, eq, value = pair.strip().partition("=")
        if not eq or key.strip().lower() != "for":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\", "")
        return value
    return None


def _hops(chain: str | None, header: ClientHeader) -> list[str | None]:
    """Claimed addresses, left (client) to right (nearest proxy); None marks an element without one."""
    if chain is None or not chain.strip():
        return []
    if header == "Forwarded":
        return [_forwarded_for(e) for e in _split_outside_quotes(chain, ",")]
    return [e.strip() for e in chain.split(",")]


def client_address(peer: str, *, chain: str | None, header: ClientHeader, trusted: TrustedProxies) -> str:
    """The client's address as text (IPv4-mapped IPv6 peers reported as IPv4): the socket peer when
    it is not trusted, else the rightmost address of ``chain`` (the value of ``header``) that is not
    a trusted proxy.

    A header that appears several times must be passed joined with ``", "`` in
    arrival order (HTTP list semantics), or a client could hide a forged hop.
    """
    peer_ip = parse_address(peer)
    if peer_ip is None:
        return peer
    current = peer_ip
    if not trusted.trusts(current):
        return str(current)
    for hop in reversed(_hops(chain, header)):
        ip = parse_address(hop) if hop is not None else None
        if ip is None:
            break
        current = ip
        if not trusted.trusts(ip):
            break
    return str(current)
