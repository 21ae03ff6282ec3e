"""Serving an aiohttp application on loopback for a test or benchmark (a fake controller feed,
an ACME challenge board, a certificate distribution endpoint)."""

from __future__ import annotations

from aiohttp import web

__all__ = ["serve_app"]


async def serve_app(app: web.Application, *, shutdown_timeout: float = 60.0) -> tuple[web.AppRunner, str]:
    """Start ``app`` on a 127.0.0.1 port the kernel picks: its runner (``cleanup()`` stops it) and
    its base URL."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"
