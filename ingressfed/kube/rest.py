"""JSON requests and watch streams over a kubernetes-asyncio ApiClient.

The generated typed models are skipped on purpose: deserialising 10,000
objects into them costs time and memory the core never uses. Requests still
go through kubernetes-asyncio (authentication, TLS, token refresh), only the
body stays a plain dict.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

import aiohttp
from kubernetes_asyncio.client import ApiClient

from ingressfed.errors import IngressfedError

__all__ = ["MAX_LINE", "KubeApiError", "request_json", "request_status", "stream_lines"]

log = logging.getLogger(__name__)

# etcd stores objects up to 1.5 MiB; a watch line also carries the event envelope.
MAX_LINE = 4 * 1024 * 1024
_MAX_ERROR_BODY = 64 * 1024


class KubeApiError(IngressfedError):
    """The API server refused or failed a request (``status`` 0: no answer at all)."""

    def __init__(self, status: int, reason: str, *, path: str, message: str = "") -> None:
        self.status = status
        self.reason = reason
        self.path = path
        self.message = message
        super().__init__(f"{path}: HTTP {status} {reason}" + (f": {message}" if message else ""))

    @property
    def transient(self) -> bool:
        return self.status in {0, 429} or self.status >= 500


def _status_error(status: int, body: bytes, path: str) -> KubeApiError:
    reason, message = "", ""
    try:
        doc = json.loads(body[:_MAX_ERROR_BODY])
        if isinstance(doc, dict):
            reason = str(doc.get("reason", ""))[:200]
            message = str(doc.get("message", ""))[:500]
    except ValueError:
        message = body[:200].decode("utf-8", "replace")
    return KubeApiError(status, reason or "Error", path=path, message=message)


async def _call(
    api: ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str | int] | None,
    body: object,
    content_type: str,
    request_timeout: aiohttp.ClientTimeout | float | None,
) -> aiohttp.ClientResponse:
    headers = {"Accept": "application/json", "Content-Type": content_type}
    try:
        resp = await api.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=request_timeout,
        )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise KubeApiError(0, type(exc).__name__, path=path, message=str(exc)[:300]) from exc
    return cast(aiohttp.ClientResponse, resp)


async def request_json(
    api: ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str | int] | None = None,
    body: object = None,
    content_type: str = "application/json",
    request_timeout: aiohttp.ClientTimeout | float | None = 30.0,
) -> dict[str, Any]:
    """One request; the decoded JSON object, or :class:`KubeApiError` for any non-2xx."""
    resp = await _call(
        api, method, path, query=query, body=body, content_type=content_type, request_timeout=request_timeout
    )
    try:
        try:
            data = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KubeApiError(0, type(exc).__name__, path=path, message=str(exc)[:300]) from exc
        if not 200 <= resp.status <= 299:
            raise _status_error(resp.status, data, path)
        if not data:
            return {}
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise KubeApiError(resp.status, "InvalidJSON", path=path, message=str(exc)[:200]) from exc
        if not isinstance(doc, dict):
            raise KubeApiError(resp.status, "InvalidJSON", path=path, message="response is not an object")
        return doc
    finally:
        resp.release()


async def request_status(api: ApiClient, path: str, *, request_timeout: float) -> tuple[int, str]:
    """GET a plain-text endpoint such as ``/readyz``: (HTTP status, start of the body)."""
    resp = await _call(
        api,
        "GET",
        path,
        query=None,
        body=None,
        content_type="application/json",
        request_timeout=request_timeout,
    )
    try:
        data = await resp.content.read(4096)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise KubeApiError(0, type(exc).__name__, path=path, message=str(exc)[:300]) from exc
    finally:
        resp.close()
    return resp.status, data.decode("utf-8", "replace")


async def stream_lines(
    api: ApiClient,
    path: str,
    *,
    query: Mapping[str, str | int],
    request_timeout: aiohttp.ClientTimeout,
) -> AsyncGenerator[bytes, None]:
    """Lines of a streaming GET (a watch); raises :class:`KubeApiError` on non-2xx or a dropped stream.

    aiohttp's ``readline`` rejects lines over 128 KiB; objects may be larger,
    so lines are split here, bounded by :data:`MAX_LINE`.
    """
    resp = await _call(
        api,
        "GET",
        path,
        query=query,
        body=None,
        content_type="application/json",
        request_timeout=request_timeout,
    )
    try:
        if not 200 <= resp.status <= 299:
            try:
                data = await resp.content.read(_MAX_ERROR_BODY)
            except (TimeoutError, aiohttp.ClientError, OSError):
                data = b""
            raise _status_error(resp.status, data, path)
        pending = bytearray()
        try:
            async for chunk in resp.content.iter_any():
                pending += chunk
                while True:
                    cut = pending.find(b"\n")
                    if cut < 0:
                        break
                    line = bytes(pending[:cut])
                    del pending[: cut + 1]
                    if line.strip():
                        yield line
                if len(pending) > MAX_LINE:
                    raise KubeApiError(
                        0, "LineTooLong", path=path, message=f"watch line over {MAX_LINE} bytes"
                    )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KubeApiError(0, type(exc).__name__, path=path, message=str(exc)[:300]) from exc
        if pending.strip():
            yield bytes(pending)
    finally:
        resp.close()  # an unfinished stream must not go back to the pool
