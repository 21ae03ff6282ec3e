"""Both UDP readers over real loopback sockets: bursts that fill several
``recvmmsg`` batches, datagrams that get no reply in the middle of a batch,
several clients at once, IPv6, and a reply too long for its slot."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import dns.message
import dns.rcode
import pytest

from ingressfed.dnsserver import udp
from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.server import DnsServer
from tests.dnsserver.conftest import ZONE, make_index

NAMES = ["www", "alias", "chain1", "txt", "big", "mid", "g", "zl", "nothere", "a.b"]
TYPES = ["A", "AAAA", "TXT", "MX"]


def burst(rng: random.Random, count: int) -> list[bytes]:
    """Queries with distinct IDs, with garbage that gets no reply or FORMERR mixed in."""
    out: list[bytes] = []
    for i in range(count):
        r = rng.random()
        if r < 0.05:
            out.append(bytes([i % 256, 1, 2]))  # too short for a header: dropped
        elif r < 0.10:
            out.append(i.to_bytes(2, "big") + b"\x81\x00" + b"\x00" * 8)  # a response: dropped
        elif r < 0.15:
            out.append(i.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05")  # FORMERR
        else:
            q = dns.message.make_query(
                f"{rng.choice(NAMES)}.{ZONE}", rng.choice(TYPES), use_edns=rng.random() < 0.5
            )
            q.id = i
            out.append(q.to_wire())
    return out


def blast(
    server_addr: tuple[str, int], family: int, packets: list[list[bytes]], counts: list[int]
) -> list[list[bytes]]:
    """Send every client's packets before reading any reply (so they queue at the
    server in one go), then read each client's ``counts`` replies and any extra
    that arrives soon after."""
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in packets]
    try:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            s.bind((server_addr[0], 0))
        for s, mine in zip(socks, packets, strict=True):
            for p in mine:
                s.sendto(p, server_addr)
        replies: list[list[bytes]] = [[] for _ in socks]
        for s, got, count in zip(socks, replies, counts, strict=True):
            while True:
                s.settimeout(10.0 if len(got) < count else 0.05)
                try:
                    got.append(s.recv(65535))
                except TimeoutError:
                    break
        return replies
    finally:
        for s in socks:
            s.close()


def expected(index: object, packets: list[bytes], ip: str) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for p in packets:
        resp = answer(index, p, ip)  # type: ignore[arg-type]
        if resp is not None:
            out[int.from_bytes(p[:2], "big")] = resp
    return out


@pytest.mark.parametrize("batching", [True, False], ids=["recvmmsg", "recvfrom"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_bursts_from_several_clients_get_exactly_the_answers(batching: bool, host: str) -> None:
    if batching and not udp.batching_available():
        pytest.fail("recvmmsg/sendmmsg not found in the C library of this Linux machine")
    index = make_index()
    rng = random.Random(12)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    async with DnsServer(index, host=host, port=0, udp_batching=batching) as srv:
        kind = udp.MmsgReader if batching else udp.RecvfromReader
        assert isinstance(srv._udp, kind)
        # 3 clients x 150 datagrams: several full batches of 64 and replies to send in runs.
        packets = [burst(rng, 150) for _ in range(3)]
        queries_before = srv.queries
        t0 = time.monotonic()
        wants = [expected(index, mine, host) for mine in packets]
        replies = await asyncio.to_thread(blast, (host, srv.port), family, packets, list(map(len, wants)))
        assert time.monotonic() - t0 < 30
        for want, got in zip(wants, replies, strict=True):
            # Each reply came back to the client that asked, once, byte for byte.
            assert sorted(got) == sorted(want.values())
            assert any(dns.message.from_wire(r).rcode() == dns.rcode.FORMERR for r in got)
        assert srv.queries - queries_before == sum(map(len, packets))


async def test_a_reply_longer_than_its_slot_still_reaches_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    if not udp.batching_available():
        pytest.fail("recvmmsg/sendmmsg not found in the C library of this Linux machine")
    real = udp._reply
    long_reply = b"\x00" * 9000

    def reply(srv: DnsServer, index: object, data: bytes, ip: str, memo: dict[bytes, bytes]) -> bytes | None:
        if b"\x04long" in data:
            return data[:2] + long_reply
        return real(srv, index, data, ip, memo)  # type: ignore[arg-type]

    monkeypatch.setattr(udp, "_reply", reply)
    index = make_index()
    async with DnsServer(index, host="127.0.0.1", port=0) as srv:
        assert isinstance(srv._udp, udp.MmsgReader)
        qs = [dns.message.make_query(f"{n}.{ZONE}", "A") for n in ("www", "long", "alias")]
        for i, q in enumerate(qs):
            q.id = 100 + i
        replies = await asyncio.to_thread(
            blast, ("127.0.0.1", srv.port), socket.AF_INET, [[q.to_wire() for q in qs]], [3]
        )
        by_id = {int.from_bytes(r[:2], "big"): r for r in replies[0]}
        assert by_id[101] == (101).to_bytes(2, "big") + long_reply
        assert by_id[100] == answer(index, qs[0].to_wire(), "127.0.0.1")
        assert by_id[102] == answer(index, qs[2].to_wire(), "127.0.0.1")
