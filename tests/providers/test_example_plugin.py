"""The example plugin package (examples/ingressfed-provider-example), loaded by name through
the entry-point group exactly as ingressfed loads any third-party provider.

CI installs it (``pip install ./examples/ingressfed-provider-example``); under ``CI=true`` a
missing plugin is a failure, locally a skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingressfed.errors import ConfigError
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from ingressfed.testing import ProviderContract
from providers import loader
from providers.base import Provider

ZONE = "example.com"
PLUGIN = "example-file"


def require_plugin() -> None:
    if PLUGIN not in loader.available():
        msg = f"plugin {PLUGIN!r} is not installed: pip install ./examples/ingressfed-provider-example"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


class TestExamplePluginContract(ProviderContract):
    @pytest.fixture
    async def provider(self, tmp_path: Path) -> AsyncIterator[Provider]:
        require_plugin()
        p = loader.create(PLUGIN, zone=ZONE, options={"path": str(tmp_path / "zone.json"), "maxBatch": 10})
        yield p
        await p.close()

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        return None


def test_plugin_is_listed_and_comes_from_its_own_package() -> None:
    require_plugin()
    assert PLUGIN in loader.available()
    factory = loader.load(PLUGIN)
    assert factory.__module__.startswith("ingressfed_provider_example")


def test_plugin_options_are_validated_with_field_names(tmp_path: Path) -> None:
    require_plugin()
    with pytest.raises(ConfigError, match=r"dns\.options\.path"):
        loader.create(PLUGIN, zone=ZONE, options={})
    with pytest.raises(ConfigError, match=r"dns\.options\.colour"):
        loader.create(PLUGIN, zone=ZONE, options={"path": str(tmp_path / "z.json"), "colour": "blue"})


async def test_plugin_state_lives_in_its_file(tmp_path: Path) -> None:
    require_plugin()
    path = tmp_path / "zone.json"
    first = loader.create(PLUGIN, zone=ZONE, options={"path": str(path)})
    rs = a("www.example.com", "192.0.2.1")
    result = await first.apply(Changes((Change(ChangeAction.CREATE, new=rs),)))
    assert result.failed == {}
    on_disk = json.loads(path.read_text())
    assert on_disk["records"] == [
        {"name": "www.example.com", "type": "A", "ttl": 30, "values": ["192.0.2.1"]}
    ]
    second = loader.create(PLUGIN, zone=ZONE, options={"path": str(path)})
    assert await second.records() == [rs]
    # A refused batch leaves the file as it was: the conflicting CREATE fails alone.
    result = await second.apply(
        Changes((Change(ChangeAction.CREATE, new=a("www.example.com", "192.0.2.9")),))
    )
    assert "www.example.com" in result.failed
    assert await first.records() == [rs]
