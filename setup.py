"""setuptools entry for the compiled modules only; everything else is in pyproject.toml (ADR 0016)."""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "buildtools"))
import ingressfed_build  # buildtools/ is the build backend's own path

setup(ext_modules=ingressfed_build.extensions())
