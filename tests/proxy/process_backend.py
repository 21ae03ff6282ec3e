"""A backend in its own process, so a test can freeze it (SIGSTOP) like a hung cluster:
``python tests/proxy/process_backend.py NAME`` prints its port, then answers every request with
``200`` and its name (keep-alive, HTTP/1.1)."""

from __future__ import annotations

import asyncio
import sys


async def _serve(name: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(name), name))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(name: str) -> None:
    server = await asyncio.start_server(lambda r, w: _serve(name.encode(), r, w), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
