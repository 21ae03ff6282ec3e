"""The build a benchmark measures: the checkout's wheel with the request path compiled (ADR 0016).

    tree = compiled.tree()          # .bench/compiled/<digest>: built once per source state
    env = compiled.env(tree)        # for the server's subprocess: that tree first on its path

The image ships this build, so benchmarks measure it by default; ``source()`` is the checkout itself,
pure Python, for comparing the two. The digest covers every file the wheel is built from, so an edit
rebuilds and an unchanged checkout reuses the last build (a build takes a minute or two here).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SOURCES = ("pyproject.toml", "setup.py", "buildtools", "ingressfed", "providers", "geo")


def _digest() -> str:
    h = hashlib.sha256()
    for name in _SOURCES:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def tree() -> Path:
    """The compiled build of the checkout as it is now, unpacked (built here if it is not yet)."""
    where = ROOT / ".bench" / "compiled" / _digest()
    if (where / "ingressfed").is_dir():
        return where
    print(f"bench: building the compiled wheel of {ROOT} (INGRESSFED_COMPILE=1) ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        # From a copy of just what the wheel is built from: setuptools packs whatever an earlier
        # build left in build/lib, a compiled module since taken off the list included.
        src = Path(tmp) / "src"
        src.mkdir()
        for name in (*_SOURCES, "README.md"):
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(ROOT / name, src / name)
        build_env = {**os.environ, "INGRESSFED_COMPILE": "1"}
        pip = [sys.executable, "-m", "pip"]
        subprocess.run(
            [*pip, "wheel", "--quiet", "--no-deps", "-w", tmp, str(src)], check=True, env=build_env
        )
        (wheel,) = Path(tmp).glob("ingressfed-*.whl")
        partial = where.with_name(where.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [*pip, "install", "--quiet", "--no-deps", "--target", str(partial), str(wheel)], check=True
        )
    for extra in [*partial.glob("*.dist-info"), partial / "bin"]:
        shutil.rmtree(extra, ignore_errors=True)
    partial.rename(where)
    return where


def source() -> Path:
    """The checkout itself: pure Python."""
    return ROOT


def env(tree: Path) -> dict[str, str]:
    """The environment for a server subprocess that runs ``tree``'s ingressfed (the checkout follows,
    for ``bench`` and ``tests``)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}


def describe(tree: Path) -> str:
    return "compiled (mypyc)" if tree != ROOT else "pure Python (source)"
