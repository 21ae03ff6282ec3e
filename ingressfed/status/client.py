"""Reads a controller's (or a proxy's) read API for the CLI; every failure says what to do next."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ingressfed.errors import IngressfedError

__all__ = ["StatusClientError", "fetch", "normalise_url"]

log = logging.getLogger(__name__)


class StatusClientError(IngressfedError):
    """The read API could not be read; the message names the URL and the fix."""


def normalise_url(url: str) -> str:
    """``host:port`` or ``http(s)://host:port[/prefix]`` -> base URL without a trailing slash."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StatusClientError(f"--controller: {url!r} must be http(s)://HOST:PORT or HOST:PORT")
    return text.rstrip("/")


async def fetch(base: str, path: str, *, token: str | None, seconds: float = 10.0) -> Any:
    """GET ``base + path`` and decode the JSON body."""
    url = base + path
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
            session.get(url, headers=headers) as resp,
        ):
            body = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise StatusClientError(
            f"no controller answers at {base} ({exc or type(exc).__name__});"
            " is it running, with status.enabled?"
        ) from exc
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    detail = doc.get("detail") if isinstance(doc, dict) else None
    if status == 401:
        hint = (
            "pass the token with --token-file FILE"
            if token is None
            else "the token in --token-file is not accepted"
        )
        raise StatusClientError(f"{url}: 401 unauthorized: {hint}")
    if status == 404 and detail is None:
        raise StatusClientError(f"{url}: 404: no read API here; enable status.enabled on the controller")
    if status != 200 or doc is None:
        raise StatusClientError(f"{url}: {status}: {detail or body[:200].decode(errors='replace')}")
    return doc
