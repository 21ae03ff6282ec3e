"""moto in server mode on a free loopback port: a stand-in for the Route53 API over real HTTP.

``moto_endpoint`` (session fixture) starts moto's server once per
test session and yields its URL; ``aws_env`` sets fake credentials so boto3's
standard chain finds them. Without moto the tests skip locally and fail under
``CI=true``. Remember that moto is laxer than Route53 (it accepts CREATE of an
existing set, invalid geo codes, mixed routing policies): tests of what Route53
refuses must check the provider's own validation. It runs with one fix
(tests/fakes/moto_route53.py): a DELETE of a routed set deletes that set only, as
Route53 does, not every set with its identifier across the zone.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.ports import free_port

__all__ = ["FAKE_CREDENTIALS", "aws_env", "free_port", "moto_endpoint", "start_moto"]

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _require_moto() -> None:
    if importlib.util.find_spec("moto.server") is None or importlib.util.find_spec("flask") is None:
        message = "moto[server] is not installed (pip install 'moto[server]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def start_moto(*, timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto's server; return the process and its URL once it answers."""
    port = free_port(udp=False)
    env = {**os.environ, **FAKE_CREDENTIALS}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("moto_route53.py")),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {err[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"moto_server did not answer on {url} within {timeout}s") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    _require_moto()
    proc, url = start_moto()
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
