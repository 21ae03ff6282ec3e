"""Debian's Chromium driven headless by Playwright (its driver only: the browser is the system's)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator

import pytest

CHROMIUM = os.environ.get("INGRESSFED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_browser() -> None:
    """Fail under CI (scripts/setup.sh --test installs both), skip elsewhere, when one is missing."""
    problems = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package (pip install 'ingressfed[test]')")
    if not os.path.exists(CHROMIUM):
        problems.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if problems:
        message = "browser tests need " + " and ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.asynccontextmanager
async def page(*, width: int = 1280, height: int = 900, **context: object) -> AsyncIterator[object]:
    """A fresh page (a new temporary profile each time) that fails the test on any script error."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            ctx = await browser.new_context(viewport={"width": width, "height": height}, **context)
            tab = await ctx.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            yield tab
            assert not errors, f"script errors on the page: {errors}"
        finally:
            await browser.close()


async def until(tab: object, expression: str, *, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression until it is true.

    Playwright's own ``wait_for_function`` compiles its predicate with ``eval`` inside the page, which
    the page's Content-Security-Policy (rightly) forbids; ``evaluate`` goes through the debugger.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await tab.evaluate(expression):  # type: ignore[attr-defined]
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for: {expression}")
        await asyncio.sleep(0.1)
