"""The compiled build's rules, checked without building (buildtools/ingressfed_build.py, ADR 0016)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "buildtools"))

import ingressfed_build  # noqa: E402  (the build backend lives outside the packages)


def test_every_compiled_module_exists_and_has_no_third_party_base_class() -> None:
    for path in ingressfed_build.COMPILED:
        source = (ROOT / path).read_text()
        assert ingressfed_build.third_party_bases(path, source) == [], path


def test_a_class_on_a_third_party_base_is_named() -> None:
    source = (
        "import asyncio\nfrom prometheus_client.registry import Collector\nimport hpack\n"
        "class A(asyncio.Protocol): ...\nclass B(Collector): ...\nclass C(hpack.Decoder): ...\n"
        "class D(Exception): ...\n"
    )
    assert ingressfed_build.third_party_bases("m.py", source) == [
        "m.py:5 class B(Collector)",
        "m.py:6 class C(hpack.Decoder)",
    ]


def test_the_compile_switch_takes_only_0_or_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGRESSFED_COMPILE", "yes")
    with pytest.raises(SystemExit, match="INGRESSFED_COMPILE='yes' is not understood"):
        ingressfed_build.compiling()
    monkeypatch.setenv("INGRESSFED_COMPILE", "1")
    assert ingressfed_build.compiling()
    monkeypatch.delenv("INGRESSFED_COMPILE")
    assert not ingressfed_build.compiling()
