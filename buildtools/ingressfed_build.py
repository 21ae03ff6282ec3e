"""ingressfed's build backend: setuptools' own, plus mypyc when ``INGRESSFED_COMPILE=1`` (ADR 0016).

The compiled build is the same source, compiled to C by mypyc: the proxy's per-request modules run
about twice as fast, and nothing else changes. It is off unless asked for, because it needs a C
compiler and Python's headers, and because pure Python is the reference every module must also pass.
The container image, the benchmarks and the test command ask for it.

Only the wheel hooks compile. An editable install stays pure: compiled modules beside the source
would shadow every later edit of it.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  the hooks this backend does not change
    build_editable,
    build_sdist,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

COMPILE_ENV = "INGRESSFED_COMPILE"
MYPYC_REQUIREMENT = "mypy>=1.10"  # mypyc ships in mypy's wheel

# The modules a proxied request runs through (HTTP/1.1, TLS and HTTP/2), and the pure decisions they
# call per request. Each must keep to what mypyc compiles: no monkeypatching, no dynamic attributes,
# declared types that hold at run time (mypyc checks them).
COMPILED = (
    "ingressfed/proxy/http1.py",
    "ingressfed/proxy/request.py",
    "ingressfed/proxy/exchange.py",
    "ingressfed/proxy/upstream.py",
    "ingressfed/proxy/routing.py",
    "ingressfed/proxy/table.py",
    "ingressfed/proxy/engine.py",
    "ingressfed/proxy/registry.py",
    "ingressfed/proxy/deadlines.py",
    "ingressfed/proxy/health.py",
    "ingressfed/proxy/metrics.py",
    "ingressfed/proxy/budget.py",
    "ingressfed/proxy/rates.py",
    "ingressfed/proxy/clock.py",
    "ingressfed/proxy/https.py",
    "ingressfed/proxy/http2.py",
    "ingressfed/proxy/hpack_in.py",
    "ingressfed/proxy/hpack_out.py",
)
# mypyc type-checks what it compiles. Its own configuration (not the project's strict one) lets the
# isolated build environment lack the runtime dependencies: their types are Any there, which costs
# the compiled code nothing, as it calls them through Python's C API either way.
MYPYC_CONFIG = "buildtools/mypyc.ini"


def compiling() -> bool:
    value = os.environ.get(COMPILE_ENV, "0")
    if value not in ("0", "1"):
        raise SystemExit(
            f"{COMPILE_ENV}={value!r} is not understood: set it to 1 to compile the proxy's request "
            "path with mypyc (needs gcc and the Python headers), or 0 (or unset) for pure Python"
        )
    return value == "1"


# setuptools runs setup.py to find the build's requirements, before mypy is installed.
_asking = {"requirements": False}


def extensions() -> list[Any]:
    """setup.py's ``ext_modules``: the compiled modules, or none."""
    if not compiling() or _asking["requirements"]:
        return []
    from mypyc.build import mypycify

    return list(mypycify(["--config-file", MYPYC_CONFIG, *COMPILED], opt_level="3", group_name="ingressfed"))


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    _asking["requirements"] = True
    try:
        requires = list(_setuptools.get_requires_for_build_wheel(config_settings))
    finally:
        _asking["requirements"] = False
    return [*requires, MYPYC_REQUIREMENT] if compiling() else requires


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    if compiling():
        raise SystemExit(
            f"{COMPILE_ENV}=1 with an editable install: compiled modules in the source tree would "
            "shadow every later edit of it. Build a wheel instead (pip wheel . or pip install .), "
            f"or unset {COMPILE_ENV}."
        )
    return list(_setuptools.get_requires_for_build_editable(config_settings))


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))
