"""Suite-wide test settings.

``INGRESSFED_TEST_LOOP=uvloop`` runs every asyncio test on uvloop, the loop the proxy, the DNS
server and the CLI use in production (scripts/test.sh sets it for the compiled modules' tests:
compiled code checks the types uvloop's objects really have, ADR 0016). Unset: asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest

_LOOPS = ("asyncio", "uvloop")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    wanted = os.environ.get("INGRESSFED_TEST_LOOP", "asyncio")
    if wanted not in _LOOPS:
        raise pytest.UsageError(f"INGRESSFED_TEST_LOOP={wanted!r}: use one of {', '.join(_LOOPS)}")
    if wanted == "asyncio":
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    factory: Any = uvloop.new_event_loop
    return {"uvloop": factory}
