"""ingressfed's build backend: setuptools' own, plus mypyc when ``INGRESSFED_COMPILE=1`` (ADR 0016).

The compiled build is the same source, compiled to C by mypyc: the proxy's per-request modules run
about twice as fast, and nothing else changes. It is off unless asked for, because it needs a C
compiler and Python's headers, and because pure Python is the reference every module must also pass.
The container image, the benchmarks and the test command ask for it.

Only the wheel hooks compile. An editable install stays pure: compiled modules beside the source
would shadow every later edit of it.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
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
# declared types that hold at run time (mypyc checks them), and no class whose base comes from a
# third-party package (``third_party_bases`` refuses the build): in the isolated build environment
# that base is Any to mypyc, and such a class (prometheus_client's Collector in proxy/metrics,
# hpack's Decoder, in a module since removed) crashed the interpreter at run time.
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
    "ingressfed/proxy/budget.py",
    "ingressfed/proxy/rates.py",
    "ingressfed/proxy/clock.py",
    "ingressfed/proxy/tallies.py",
    "ingressfed/proxy/ports.py",
    "ingressfed/proxy/https.py",
    "ingressfed/proxy/http2.py",
    "ingressfed/proxy/h2frames.py",
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


def third_party_bases(path: str, source: str) -> list[str]:
    """``path:line class Name(base)`` for each class in ``source`` whose base is imported from a
    package that is neither the standard library nor ours."""
    tree = ast.parse(source, path)
    foreign: dict[str, str] = {}  # local name -> the package it came from
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                foreign[alias.asname or alias.name] = node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                foreign[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
    ours = {"ingressfed", "providers", "geo"}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for base in node.bases:
            root = base
            while isinstance(root, ast.Attribute):
                root = root.value
            package = foreign.get(root.id) if isinstance(root, ast.Name) else None
            if package and package not in sys.stdlib_module_names and package not in ours:
                found.append(f"{path}:{node.lineno} class {node.name}({ast.unparse(base)})")
    return found


def extensions() -> list[Any]:
    """setup.py's ``ext_modules``: the compiled modules, or none."""
    if not compiling() or _asking["requirements"]:
        return []
    refused = [line for path in COMPILED for line in third_party_bases(path, Path(path).read_text())]
    if refused:
        raise SystemExit(
            "these classes cannot be compiled with mypyc here (their base is a third-party class): "
            + "; ".join(refused)
            + ". Take the module out of COMPILED in buildtools/ingressfed_build.py, or keep the "
            "class in a module that is not compiled."
        )
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
