"""The command line loads only the chosen command's module (start-up time of every process)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from ingressfed import cli


def test_the_command_map_matches_what_the_modules_register() -> None:
    registered: dict[str, set[str]] = {}
    for name in cli._COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(name).register(sub)
        for command in sub.choices:
            registered.setdefault(command, set()).add(name)
    mapped = {command: set(modules) for command, modules in cli._COMMANDS.items() if modules}
    assert mapped == registered


@pytest.mark.parametrize(
    ("argv", "modules"),
    [
        (["proxy", "--routes", "r.yaml"], ("ingressfed.proxy.commands",)),
        (["--log-level", "DEBUG", "dns-serve"], ("ingressfed.dnsserver.commands",)),
        (["--log-level", "proxy", "run"], ("ingressfed.app",)),  # "proxy" is the option's value
        (["check-config", "f.yaml"], ()),
        (["get", "clusters"], ("ingressfed.status.commands", "ingressfed.kube.commands")),
        (["--help"], cli._COMMAND_MODULES),
        ([], cli._COMMAND_MODULES),
        (["no-such-command"], cli._COMMAND_MODULES),  # argparse then names the valid choices
    ],
)
def test_command_modules(argv: list[str], modules: tuple[str, ...]) -> None:
    assert cli.command_modules(argv) == modules


def test_the_proxy_starts_without_the_kubernetes_client() -> None:
    code = (
        "import sys; from ingressfed import cli; cli.build_parser(['proxy', '--help']);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes_asyncio', 'boto3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for command in cli._COMMANDS:
        assert command in text
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err
