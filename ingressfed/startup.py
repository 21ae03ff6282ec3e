"""Startup failures as one line that names the setting and the fix.

A port already in use, an unreadable kubeconfig, a missing CRD or a refused token are the operator's
to fix, not bugs: ``ingressfed run`` prints ``ingressfed: <setting>: <problem>; <fix>`` and exits 1.
The traceback is logged only at DEBUG (``--log-level DEBUG``).
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator, Mapping

from ingressfed.errors import IngressfedError

__all__ = ["StartupError", "bind_error", "binding"]


class StartupError(IngressfedError):
    """The process cannot start as configured; the message is one line: setting, problem, fix."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(" ".join(f"{setting}: {problem}; {fix}".split()))


def bind_error(settings: Mapping[str, str], exc: OSError) -> StartupError:
    """The StartupError for a failed listen; ``settings`` maps setting names to their addresses.

    Several listeners start together (the proxy's data and admin ports): the one whose port the
    error names is blamed (pure: only the error's text and the settings are read).
    """
    setting, address = next(iter(settings.items()))
    text = str(exc)
    for name, addr in settings.items():
        port = addr.rsplit(":", 1)[-1]
        if re.search(rf"[,:]\s*{re.escape(port)}\b", text):
            setting, address = name, addr
            break
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            setting,
            f"{address} is already in use",
            f"stop what listens there or set {setting} to a free port",
        )
    if exc.errno == errno.EACCES:
        return StartupError(
            setting,
            f"no permission to listen on {address}",
            f"use a port above 1024 in {setting} (or grant CAP_NET_BIND_SERVICE)",
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return StartupError(
            setting, f"{address} is not an address of this host", f"set {setting} to a local address"
        )
    reason = exc.strerror or str(exc)
    return StartupError(setting, f"cannot listen on {address}: {reason}", f"check {setting}")


@contextlib.contextmanager
def binding(settings: Mapping[str, str]) -> Iterator[None]:
    """Turn an OSError raised while the block starts listeners into a StartupError."""
    try:
        yield
    except OSError as exc:
        raise bind_error(settings, exc) from exc
