"""What HTTPRoute filters do to a request or a response: pure functions of their pieces.

Headers are ``(name, value)`` pairs in arrival order; names compare case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingressfed.gateway.resources import HeaderModifier, PathModifier, RequestRedirect

__all__ = ["modify_headers", "redirect_location", "replace_prefix", "rewritten_path"]

WELL_KNOWN_PORTS = {"http": 80, "https": 443}


def modify_headers(headers: Sequence[tuple[str, str]], mod: HeaderModifier) -> list[tuple[str, str]]:
    """``set`` replaces every value of a name, ``add`` appends one more, ``remove`` drops them all."""
    drop = {n.lower() for n in mod.remove} | {n.lower() for n, _ in mod.set}
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    out.extend(mod.set)
    out.extend(mod.add)
    return out


def replace_prefix(path: str, prefix: str, replacement: str) -> str:
    """ReplacePrefixMatch, element-wise as the API's table defines it.

    ``/foo/bar`` with prefix ``/foo`` and ``/xyz`` -> ``/xyz/bar``; with ``""`` or ``/`` -> ``/bar``;
    ``/foo`` with prefix ``/foo`` and ``""`` -> ``/``. Trailing slashes of prefix and replacement
    do not count.
    """
    stem = prefix.rstrip("/")
    rest = path[len(stem) :] if path.startswith(stem) else path
    result = replacement.rstrip("/") + rest
    return result or "/"


def rewritten_path(path: str, modifier: PathModifier | None, matched_prefix: str | None) -> str:
    if modifier is None:
        return path
    if modifier.type == "ReplaceFullPath":
        return modifier.value or "/"
    if matched_prefix is None:
        return path
    return replace_prefix(path, matched_prefix, modifier.value)


def _authority(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return shown if WELL_KNOWN_PORTS.get(scheme) == port else f"{shown}:{port}"


def redirect_location(
    redirect: RequestRedirect,
    *,
    scheme: str,
    host: str,
    listener_port: int,
    path: str,
    query: str,
    matched_prefix: str | None,
) -> str:
    """The Location of a RequestRedirect.

    Port: the filter's, else the well-known port of a scheme the filter sets, else the port the
    request arrived on; it is left out of the Location when it is the scheme's well-known port.
    The query string is kept.
    """
    new_scheme = redirect.scheme or scheme
    if redirect.port is not None:
        port = redirect.port
    elif redirect.scheme is not None:
        port = WELL_KNOWN_PORTS.get(redirect.scheme, listener_port)
    else:
        port = listener_port
    new_host = redirect.hostname or host
    new_path = rewritten_path(path, redirect.path, matched_prefix)
    tail = f"?{query}" if query else ""
    return f"{new_scheme}://{_authority(new_host, port, new_scheme)}{new_path}{tail}"
