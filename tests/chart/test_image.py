"""Static checks of the container image recipe; .ci/image-check.sh runs its install steps for real."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
IMAGE_CHECK = (ROOT / ".ci" / "image-check.sh").read_text()


def _stages() -> list[tuple[str, str]]:
    return re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", DOCKERFILE, flags=re.MULTILINE)


def test_multi_stage_on_slim_python() -> None:
    assert [name for _, name in _stages()] == ["builder", "runtime"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE, flags=re.MULTILINE)
    assert all(image == "${PYTHON_IMAGE}" for image, _ in _stages())


def test_runtime_is_non_root_with_ingressfed_entrypoint() -> None:
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert re.search(r"^USER 65532:65532$", runtime, flags=re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["ingressfed"\]$', runtime, flags=re.MULTILINE)
    # Wheels only from the builder: nothing compiled or downloaded in the runtime stage.
    assert "--no-index --find-links /wheels" in runtime
    for tool in ("gcc", "build-essential", "apt-get install", "pip wheel"):
        assert tool not in runtime, tool


def test_image_check_installs_the_same_extras_as_the_image() -> None:
    (docker_extras,) = re.findall(r"^ARG EXTRAS=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    (check_extras,) = re.findall(r'^EXTRAS="(\S+)"$', IMAGE_CHECK, flags=re.MULTILINE)
    assert docker_extras == check_extras == "kube,route53,clouddns"
    for step in ("pip wheel --quiet --no-deps", "--no-index --find-links", "uninstall --quiet --yes pip"):
        assert step in IMAGE_CHECK, step


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set(re.findall(r"^COPY (?!--)(\S+)", DOCKERFILE, flags=re.MULTILINE))
    copied |= {"pyproject.toml", "README.md"}
    build = {"pyproject.toml", "README.md", "setup.py", "buildtools"}
    assert admitted == build | {"ingressfed", "providers", "geo"}
    assert copied <= admitted


def test_image_and_its_check_compile_the_request_path() -> None:
    """ADR 0016: the image ships the mypyc build; the builder has the compiler, the runtime does not."""
    builder = DOCKERFILE.split("AS builder", 1)[1].split("AS runtime", 1)[0]
    assert "INGRESSFED_COMPILE=1" in builder
    assert "gcc" in builder
    assert "INGRESSFED_COMPILE=1" in IMAGE_CHECK
    # image-check fails unless the installed proxy modules are the compiled ones
    assert "compiled" in IMAGE_CHECK and ".so" in IMAGE_CHECK
