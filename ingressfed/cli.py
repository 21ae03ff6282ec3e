"""The ``ingressfed`` command: one argparse tree; areas add their own subcommands.

Each area module that adds commands exposes ``register(sub)``; a module whose
optional dependencies are missing (no kubernetes-asyncio, say) only loses its
own commands, never the whole CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ingressfed import __version__

__all__ = ["build_parser", "command_modules", "main"]

log = logging.getLogger(__name__)

# Modules that add subcommands, in help order. Missing optional extras skip one module only.
_COMMAND_MODULES = (
    "ingressfed.app",
    "ingressfed.demo",
    "ingressfed.status.commands",  # owns ``get``; before kube.commands, which then skips it
    "ingressfed.kube.commands",
    "ingressfed.proxy.commands",
    "ingressfed.dnsserver.commands",
)
# The modules each command needs, so that `ingressfed proxy` does not import the Kubernetes client,
# the controller and everything else first (a second of CPU per start). Kept equal to what the
# modules register by tests/test_cli.py; a command not listed here (or --help) loads them all.
_COMMANDS: dict[str, tuple[str, ...]] = {
    "check-config": (),
    "run": ("ingressfed.app",),
    "demo": ("ingressfed.demo",),
    "get": ("ingressfed.status.commands", "ingressfed.kube.commands"),
    "join": ("ingressfed.kube.commands",),
    "unjoin": ("ingressfed.kube.commands",),
    "proxy": ("ingressfed.proxy.commands",),
    "dns-serve": ("ingressfed.dnsserver.commands",),
}
_VALUED_OPTIONS = frozenset({"--log-level"})  # global options that take the next word


def command_modules(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The command modules to load for ``argv``: only the chosen command's when it is known."""
    if argv is None:
        return _COMMAND_MODULES
    words = iter(argv)
    for word in words:
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return _COMMANDS.get(word, _COMMAND_MODULES)
        elif word in ("-h", "--help"):
            return _COMMAND_MODULES
    return _COMMAND_MODULES


def _loop_factory() -> Any:
    """uvloop when installed: the proxy and DNS data paths run measurably faster on it."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _check_command(args: argparse.Namespace) -> int:
    from ingressfed.config import check_command

    return check_command(args)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line parser; with ``argv``, only the chosen command's module is loaded."""
    parser = argparse.ArgumentParser(
        prog="ingressfed",
        description="Federated global ingress and DNS for Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"ingressfed {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("check-config", help="validate a federation config file and print every problem")
    check.add_argument("file", help="path to the YAML config")
    check.add_argument(
        "--no-file-checks",
        action="store_true",
        help="do not require the files the config names to exist here (a config rendered for a pod)",
    )
    check.set_defaults(func=_check_command)
    for name in command_modules(argv):
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            log.debug("commands of %s unavailable: %s", name, e)
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func: Any = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        if inspect.iscoroutinefunction(func):
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                result = runner.run(func(args))
        else:
            result = func(args)
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
