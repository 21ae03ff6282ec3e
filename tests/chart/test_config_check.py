"""docs/operations.md's config check for the chart works outside the pod (issue 13, finding 6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingressfed.config import check_config
from tests.chart.test_chart import VALUE_SETS, _config, _render


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_config_checks_outside_the_pod(value_set: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(_render(value_set))))
    assert check_config(path, check_files=False) == []


def test_the_documented_commands(tmp_path: Path) -> None:
    """The exact recipe of docs/operations.md: without --no-file-checks the pod's mounts are missing."""
    rendered = _render(VALUE_SETS[0])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(rendered)))
    cli = [sys.executable, "-m", "ingressfed.cli", "check-config"]
    strict = subprocess.run([*cli, str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert strict.returncode == 1 and "controller.feedTokenFile" in strict.stderr
    ok = subprocess.run(
        [*cli, "--no-file-checks", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "the files it names were not checked" in ok.stdout
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "ingressfed check-config --no-file-checks" in docs
