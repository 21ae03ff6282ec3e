"""Malformed and hostile input: the server never crashes or stalls, and answers a normal query afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket

import dns.edns
import dns.message
import dns.rcode

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.server import DnsServer
from tests.dnsserver.client import tcp, udp, values
from tests.dnsserver.conftest import ZONE, make_index

SEED = 20261127


def valid_queries() -> list[bytes]:
    out = []
    for name, qtype in (
        (f"www.{ZONE}", "A"),
        (f"alias.{ZONE}", "AAAA"),
        (f"nope.{ZONE}", "TXT"),
        ("x.org", "A"),
    ):
        out.append(dns.message.make_query(name, qtype).to_wire())
        out.append(dns.message.make_query(name, qtype, use_edns=0, want_dnssec=True).to_wire())
        out.append(
            dns.message.make_query(
                name, qtype, use_edns=0, options=[dns.edns.ECSOption("198.51.100.0", 24)]
            ).to_wire()
        )
    return out


def mutate(rng: random.Random, base: bytes) -> bytes:
    data = bytearray(base)
    kind = rng.randrange(7)
    if kind == 0:  # flip bits
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del data[rng.randrange(len(data)) :]
    elif kind == 2:  # append junk
        data += rng.randbytes(rng.randint(1, 40))
    elif kind == 3:  # wreck one of the section counts
        i = rng.choice((4, 6, 8, 10))
        data[i : i + 2] = rng.randbytes(2)
    elif kind == 4:  # compression pointers and huge labels inside the question
        i = rng.randrange(12, len(data))
        data[i] = rng.choice((0xC0, 0xFF, 0x3F, 0x40))
    elif kind == 5:  # random bytes keeping the header
        data[12:] = rng.randbytes(rng.randint(0, 80))
    else:  # opcode / flag soup
        data[2] = rng.randrange(256)
        data[3] = rng.randrange(256)
    return bytes(data)


def corpus(count: int) -> list[bytes]:
    rng = random.Random(SEED)
    bases = valid_queries()
    out: list[bytes] = []
    for i in range(count):
        if i % 4 == 0:
            out.append(rng.randbytes(rng.randint(0, 300)))
        else:
            out.append(mutate(rng, rng.choice(bases)))
    return out


def test_answer_function_survives_mutations() -> None:
    index = make_index()
    for packet in corpus(20000):
        resp = answer(index, packet, "127.0.0.1")
        if resp is not None:
            assert resp[:2] == packet[:2]  # always the query's ID
            assert resp[2] & 0x80  # always a response
            assert len(resp) <= 1232 or len(packet) < 12


async def test_udp_fuzz_then_normal_query(server: DnsServer) -> None:
    packets = corpus(3000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        for i, packet in enumerate(packets):
            s.sendto(packet, ("127.0.0.1", server.port))
            if i % 200 == 0:
                await asyncio.sleep(0)  # let the server drain instead of overflowing its buffer
    r = await udp(server.port, f"www.{ZONE}", "A")
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}
    assert server.failures.count == 0


async def test_tcp_fuzz_streams_then_normal_query(server: DnsServer) -> None:
    rng = random.Random(SEED + 1)
    packets = corpus(1500)
    for chunk in range(0, len(packets), 150):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        stream = bytearray()
        for packet in packets[chunk : chunk + 150]:
            prefix = len(packet) if rng.random() < 0.9 else rng.randrange(65536)
            stream += prefix.to_bytes(2, "big") + packet
        writer.write(bytes(stream))
        writer.write(b"\x00")  # end on half a length prefix
        await writer.drain()
        writer.close()
        # the server reads until it has answered or discarded everything, then closes
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
    r = await tcp(server.port, f"www.{ZONE}", "A")
    assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}
    assert server.failures.count == 0


async def test_slow_partial_tcp_is_cut_off_and_service_continues(server: DnsServer) -> None:
    # server fixture: idle timeout 1 s; a peer dripping bytes without completing a query is closed
    query = dns.message.make_query(f"www.{ZONE}", "A").to_wire()
    framed = len(query).to_bytes(2, "big") + query
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    closed = False
    for i in range(len(framed) - 1):
        writer.write(framed[i : i + 1])
        try:
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1), 0.1)
        except TimeoutError:
            continue
        except ConnectionError:
            data = b""
        if data == b"":
            closed = True
            break
    writer.close()
    assert closed, "a connection that never completed a query was kept open"
    # idle connections that said nothing are closed too; and UDP kept working all along
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
    r = await udp(server.port, f"www.{ZONE}", "A")
    assert r.rcode() == dns.rcode.NOERROR
    for rd, _ in idle:
        assert await asyncio.wait_for(rd.read(), 3) == b""
    for _, w in idle:
        w.close()
    r = await tcp(server.port, f"www.{ZONE}", "A")
    assert r.rcode() == dns.rcode.NOERROR


async def test_connection_limit_refuses_extra_then_recovers() -> None:
    async with DnsServer(make_index(), port=0, max_tcp_connections=4, tcp_idle_timeout=0.5) as srv:
        conns = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(4)]
        await asyncio.sleep(0.05)
        extra_r, extra_w = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await asyncio.wait_for(extra_r.read(), 3) == b""  # over the limit: closed at once
        extra_w.close()
        for rd, _ in conns:
            assert await asyncio.wait_for(rd.read(), 3) == b""  # idle ones time out
        for _, w in conns:
            w.close()
        r = await tcp(srv.port, f"www.{ZONE}", "A")
        assert r.rcode() == dns.rcode.NOERROR


def test_memo_gives_the_same_bytes_as_answering_afresh() -> None:
    index = make_index()
    memo: dict[bytes, bytes] = {}
    packets = corpus(3000) + valid_queries()
    for client in ("127.0.0.1", "198.51.100.9"):
        for packet in packets + packets:  # second pass served from the memo
            assert answer(index, packet, client, memo=memo) == answer(index, packet, client)
    assert memo  # it was used
