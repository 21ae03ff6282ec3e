"""Loading providers by name from entry points, with broken plugins installed beside good ones."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingressfed.errors import ConfigError
from providers import loader
from providers.base import Provider
from providers.inmemory import InMemoryProvider

PLUGINS = {
    "ifedt_good": """
        from providers.inmemory import InMemoryProvider

        class GoodProvider(InMemoryProvider):
            name = "goodplugin"
    """,
    "ifedt_missingdep": """
        import ifedt_no_such_sdk  # the plugin's SDK is not installed
    """,
    "ifedt_explodes": """
        raise RuntimeError("plugin bug at import time")
    """,
    "ifedt_wrongtype": """
        PROVIDER = "not a factory"
        class NotAProvider:
            def __init__(self, *, zone, options):
                self.zone = zone
        def positional_only(zone, options, /):
            raise AssertionError("never called with keywords")
    """,
}

ENTRY_POINTS = """
[ingressfed.providers]
goodplugin = ifedt_good:GoodProvider
missingdep = ifedt_missingdep:Provider
explodes = ifedt_explodes:Provider
wrongtype = ifedt_wrongtype:PROVIDER
notaprovider = ifedt_wrongtype:NotAProvider
noattr = ifedt_wrongtype:Missing
badsignature = ifedt_wrongtype:positional_only
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A plugin distribution on sys.path, the way pip would leave it."""
    for module, code in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(code))
    info = tmp_path / "ifedt_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ifedt-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in PLUGINS:
        sys.modules.pop(module, None)


def test_available_lists_builtin_and_plugins_without_importing(plugins: Path) -> None:
    names = loader.available()
    assert {"inmemory", "route53", "goodplugin", "explodes", "missingdep"} <= set(names)
    assert names == sorted(names)
    assert "ifedt_explodes" not in sys.modules
    assert "ifedt_missingdep" not in sys.modules


def test_builtin_inmemory_loads_and_builds() -> None:
    p = loader.create("inmemory", zone="example.com", options={"maxBatch": 5})
    assert isinstance(p, InMemoryProvider)
    assert isinstance(p, Provider)
    assert p.capabilities.max_batch == 5


def test_good_plugin_works_beside_broken_ones(plugins: Path) -> None:
    p = loader.create("goodplugin", zone="example.org", options={})
    assert p.name == "goodplugin"
    assert p.zone == "example.org"


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        (
            "missingdep",
            ["'missingdep'", "ifedt-plugins", "ifedt_no_such_sdk", "install the plugin's dependencies"],
        ),
        ("explodes", ["'explodes'", "RuntimeError: plugin bug at import time", "fix or reinstall"]),
        ("wrongtype", ["'wrongtype'", "is a str, not a provider factory", "zone= and options="]),
        ("noattr", ["'noattr'", "does not define", "fix the plugin's entry point"]),
        ("nosuchprovider", ["unknown provider 'nosuchprovider'", "inmemory", "ingressfed.providers"]),
    ],
)
def test_broken_plugin_fails_only_when_selected(plugins: Path, name: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        loader.load(name)
    text = str(err.value)
    assert "dns.provider" in text
    for fragment in fragments:
        assert fragment in text


def test_factory_returning_non_provider_is_named(plugins: Path) -> None:
    with pytest.raises(ConfigError, match=r"returned a NotAProvider, which is not a provider") as err:
        loader.create("notaprovider", zone="example.com")
    assert "records" in str(err.value)
    assert "BaseProvider" in str(err.value)


def test_factory_with_wrong_signature_is_named(plugins: Path) -> None:
    with pytest.raises(ConfigError, match=r"must accept the keyword arguments zone= and options="):
        loader.create("badsignature", zone="example.com")


def test_provider_option_errors_pass_through() -> None:
    with pytest.raises(ConfigError, match=r"dns\.options\.maxBatch"):
        loader.create("inmemory", zone="example.com", options={"maxBatch": -1})


def test_builtin_route53_builds_without_network() -> None:
    p = loader.create("route53", zone="example.com", options={"routing": "latency", "batchChangeSize": 100})
    assert p.name == "route53"
    assert p.capabilities.routing
    assert p.capabilities.max_batch == 100


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    monkeypatch.delitem(sys.modules, "providers.route53", raising=False)
    with pytest.raises(ConfigError) as err:
        loader.load("route53")
    assert "pip install 'ingressfed[route53]'" in str(err.value)
    assert "'route53'" in str(err.value)
