"""Providers by name, from the entry-point group ``ingressfed.providers``.

Nothing is imported until a provider is selected, so a broken plugin (missing
dependency, import-time error, entry point naming the wrong object) cannot
break start-up: it fails only when chosen, with an error that names the plugin,
its package and the fix. Built-in providers are registered the same way as
third-party ones (see pyproject.toml).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from ingressfed.errors import ConfigError, IngressfedError
from providers.base import Provider, ProviderFactory

__all__ = ["GROUP", "available", "create", "load"]

log = logging.getLogger(__name__)

GROUP = "ingressfed.providers"
# Built-in providers whose SDK is an optional extra of ingressfed.
_EXTRAS = {"route53": "route53", "clouddns": "clouddns"}


def _entry_points() -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        same = found.setdefault(ep.name, [])
        if all(other.value != ep.value for other in same):
            same.append(ep)
    return found


def available() -> list[str]:
    """Names of every registered provider (nothing is imported)."""
    return sorted(_entry_points())


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else "an unknown package"
    return f"provider {ep.name!r} ({ep.value} from {dist})"


def _fail(message: str) -> ConfigError:
    return ConfigError([f"dns.provider: {message}"])


def _import_hint(name: str, err: ImportError) -> str:
    if name in _EXTRAS:
        return f"install its dependencies: pip install 'ingressfed[{_EXTRAS[name]}]'"
    missing = f" (missing module {err.name!r})" if err.name else ""
    return f"install the plugin's dependencies{missing} or reinstall the plugin package"


def load(name: str) -> ProviderFactory:
    """The factory registered as ``name``, imported now.

    Raises ConfigError naming the plugin and the fix when it is unknown,
    ambiguous, cannot be imported or is not callable.
    """
    eps = _entry_points().get(name)
    if not eps:
        known = ", ".join(available()) or "none"
        raise _fail(
            f"unknown provider {name!r} (installed: {known}); install the package that registers it "
            f"under the entry-point group {GROUP!r}, or fix the name"
        )
    if len(eps) > 1:
        raise _fail(
            f"provider {name!r} is registered by several packages ({', '.join(_origin(e) for e in eps)}); "
            "uninstall all but one"
        )
    ep = eps[0]
    try:
        obj = ep.load()
    except ImportError as err:
        raise _fail(f"{_origin(ep)} cannot be imported: {err}; {_import_hint(name, err)}") from err
    except AttributeError as err:
        raise _fail(
            f"{_origin(ep)} names an object its module does not define ({err}); fix the plugin's entry point"
        ) from err
    except Exception as err:  # a plugin's import-time code may raise anything
        raise _fail(
            f"{_origin(ep)} failed while importing: {type(err).__name__}: {err}; "
            "fix or reinstall the plugin package"
        ) from err
    if not callable(obj):
        raise _fail(
            f"{_origin(ep)} is a {type(obj).__name__}, not a provider factory; the entry point must name "
            "a callable taking zone= and options= (usually the provider class)"
        )
    return cast(ProviderFactory, obj)


def create(name: str, *, zone: str, options: Mapping[str, Any] | None = None) -> Provider:
    """Load ``name`` and build it for ``zone`` with ``options`` (dns.options in config)."""
    factory = load(name)
    ep = _entry_points()[name][0]
    try:
        provider = factory(zone=zone, options=dict(options or {}))
    except IngressfedError:
        raise  # the provider's own, already naming the option and the fix
    except TypeError as err:
        raise _fail(
            f"{_origin(ep)} could not be built: {err}; its factory must accept the keyword arguments "
            "zone= and options="
        ) from err
    except Exception as err:
        raise _fail(f"{_origin(ep)} failed to start: {type(err).__name__}: {err}") from err
    if not isinstance(provider, Provider):
        missing = [
            attr
            for attr in ("name", "zone", "capabilities", "records", "apply", "adjust", "close")
            if not hasattr(provider, attr)
        ]
        raise _fail(
            f"{_origin(ep)} returned a {type(provider).__name__}, which is not a provider "
            f"(missing: {', '.join(missing)}); subclass providers.base.BaseProvider"
        )
    log.info("provider %s loaded from %s", name, ep.value, extra={"provider": name})
    return provider
