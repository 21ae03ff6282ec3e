"""Request smuggling vectors: answered 400 by the proxy and never forwarded to a backend."""

from __future__ import annotations

import pytest

from .conftest import BackendServer, raw_exchange, running_proxy

H = b"Host: app.example.com\r\n"

VECTORS = {
    "content-length and transfer-encoding": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
    + H
    + b"\r\n",
    "duplicate content-length": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
    "duplicate equal content-length": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    "content-length list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4, 4\r\n\r\nabcd",
    "signed content-length": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +4\r\n\r\nabcd",
    "invalid chunk size": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n",
    "chunk size overflow": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabcd\r\n",
    "chunk size with bare LF": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n",
    "obs-fold continuation": b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n",
    "obs-fold on transfer-encoding": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding gzip": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nabcd",
    "transfer-encoding gzip, chunked": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding chunked twice": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding in HTTP/1.0": b"POST / HTTP/1.0\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "space before colon": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "bare LF line ends": b"GET / HTTP/1.1\nHost: app.example.com\n\n",
    "bare LF inside headers": b"GET / HTTP/1.1\r\nHost: app.example.com\nX-A: b\r\n\r\n",
    "NUL in header value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\n" + H + b"Host: evil.example.net\r\n\r\n",
    "missing Host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "userinfo in absolute target": b"GET http://user@app.example.com/ HTTP/1.1\r\n" + H + b"\r\n",
}


@pytest.mark.parametrize("vector", sorted(VECTORS))
async def test_smuggling_vector_rejected_and_never_forwarded(
    backends: dict[str, BackendServer], vector: str
) -> None:
    async with running_proxy(backends) as proxy:
        answer = await raw_exchange(proxy.port, VECTORS[vector], read_timeout=2.0)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
        assert answer.count(b"HTTP/1.1") == 1  # nothing after the rejection; the connection is closed
    assert [r for s in backends.values() for r in s.seen] == []


async def test_rejection_after_a_valid_pipelined_request_keeps_order(
    backends: dict[str, BackendServer],
) -> None:
    async with running_proxy(backends) as proxy:
        answer = await raw_exchange(
            proxy.port,
            b"GET /first HTTP/1.1\r\n" + H + b"\r\n" + VECTORS["content-length and transfer-encoding"],
        )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.count(b"HTTP/1.1 400 ") == 1
    assert answer.index(b"HTTP/1.1 400 ") > answer.index(b"HTTP/1.1 200 ")
    assert [r["path"] for s in backends.values() for r in s.seen] == ["/first"]


async def test_garbage_never_breaks_the_proxy(
    backends: dict[str, BackendServer], caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import random

    rng = random.Random(3)
    seeds = [v for _, v in sorted(VECTORS.items())]
    async with running_proxy(backends) as proxy:
        for i in range(150):
            base = bytearray(seeds[i % len(seeds)])
            for _ in range(rng.randint(1, 6)):  # flip, insert or delete a few bytes
                pos = rng.randrange(len(base))
                op = rng.random()
                if op < 0.4:
                    base[pos] = rng.randrange(256)
                elif op < 0.7:
                    base.insert(pos, rng.choice(b"\r\n :;,\x00\t0123456789abcdefABCDEF"))
                else:
                    del base[pos]
            answer = await raw_exchange(proxy.port, bytes(base), read_timeout=0.3)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:60]
        ok = await raw_exchange(proxy.port, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 ")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
