"""The TLS floor, for bench/tls/run.py ``--with-floor``: bench/proxy/floor.py's proxy (uvloop,
httptools, pooled keep-alive backends, no features) behind uvloop's TLS with the same certificate
and ALPN ``http/1.1``. What it costs per request above the plain floor is the TLS transport's
price (OpenSSL, uvloop's SSLProtocol and CPython's ``ssl.SSLObject`` wrapper); what ingressfed costs
above it is ours. Never use it for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.proxy.floor import _Backend, _Client


def context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def serve(port: int, backend: int, ctx: ssl.SSLContext) -> None:
    idle: list[_Backend] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Client(("127.0.0.1", backend), idle), "127.0.0.1", port, ssl=ctx, backlog=1024
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.backend, context(args.cert, args.key)))


if __name__ == "__main__":
    main()
