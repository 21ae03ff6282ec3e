"""Startup failures of ``ingressfed run``: one line naming the setting and the fix, exit 1, no
traceback unless ``--log-level DEBUG`` (issue 13, finding 5)."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingressfed.startup import bind_error
from tests.fakes.kube.server import FakeKubeAPI
from tests.fakes.ports import free_port
from tests.kube.conftest import crd


def _config(tmp: Path, **sections: Any) -> Path:
    (tmp / "objects.yaml").write_text("services: []\n")
    doc: dict[str, Any] = {
        "federation": {"name": "federation", "zone": "example.com"},
        "dns": {"provider": "inmemory"},
        "clusters": [{"name": "us", "region": "us-east1", "zone": "us-east1-b"}],
        "source": {"kind": "static", "file": "objects.yaml"},
        "proxy": {"enabled": False},
        "dnsServer": {"listen": f"127.0.0.1:{free_port()}"},
        "controller": {"listen": f"127.0.0.1:{free_port()}"},
    }
    doc.update(sections)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def _run(config: Path, *extra: str) -> tuple[int, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingressfed.cli",
        *extra,
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode().splitlines()


def _the_line(lines: list[str]) -> str:
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    errors = [line for line in lines if line.startswith("ingressfed: ")]
    assert len(errors) == 1, "\n".join(lines)
    assert not any(" ERROR " in line for line in lines), "\n".join(lines)  # no second copy in the log
    return errors[0]


@pytest.fixture
def busy_port():  # a TCP port someone else listens on
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


async def test_controller_port_in_use(tmp_path: Path, busy_port: int) -> None:
    config = _config(tmp_path, controller={"listen": f"127.0.0.1:{busy_port}"})
    code, lines = await _run(config)
    assert code == 1
    line = _the_line(lines)
    assert line.startswith(f"ingressfed: controller.listen: 127.0.0.1:{busy_port} is already in use;")
    assert "set controller.listen to a free port" in line
    code, lines = await _run(config, "--log-level", "DEBUG")
    assert code == 1 and any("Traceback" in line for line in lines)  # the details, when asked for


async def test_dns_port_in_use(tmp_path: Path, busy_port: int) -> None:
    config = _config(tmp_path, dnsServer={"listen": f"127.0.0.1:{busy_port}"})
    code, lines = await _run(config)
    assert code == 1
    assert _the_line(lines).startswith(
        f"ingressfed: dnsServer.listen: 127.0.0.1:{busy_port} is already in use"
    )


def test_the_listener_whose_port_failed_is_named() -> None:
    exc = OSError(98, "error while attempting to bind on address ('0.0.0.0', 8081): address already in use")
    err = bind_error({"proxy.listen": "0.0.0.0:8080", "proxy.adminListen": "0.0.0.0:8081"}, exc)
    assert err.setting == "proxy.adminListen" and "0.0.0.0:8081 is already in use" in str(err)


def _kube(tmp: Path, kubeconfig: Path) -> Path:
    return _config(
        tmp,
        source={"kind": "kubernetes", "hostKubeconfig": {"path": str(kubeconfig), "context": "host"}},
        clusters=[],
    )


async def test_unreadable_host_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [this is: not a kubeconfig\n")
    code, lines = await _run(_kube(tmp_path, kubeconfig))
    assert code == 1
    line = _the_line(lines)
    assert line.startswith("ingressfed: source.hostKubeconfig: cannot load kubeconfig")
    assert line.endswith("point source.hostKubeconfig at a readable kubeconfig and context")


async def test_missing_crd_in_the_host(tmp_path: Path) -> None:
    async with FakeKubeAPI(name="host", identity="host") as host:
        kubeconfig = host.write_kubeconfig(tmp_path / "kubeconfig", context="host")
        code, lines = await _run(_kube(tmp_path, kubeconfig))
    assert code == 1
    line = _the_line(lines)
    assert (
        "source.hostKubeconfig: the FederatedCluster CRD (federatedclusters.ingressfed.io/v1alpha1)" in line
    )
    assert line.endswith("install it: kubectl apply -f charts/ingressfed/crds/")


async def test_refused_token_for_the_host(tmp_path: Path) -> None:
    async with FakeKubeAPI(name="host", identity="host") as host:
        host.add(crd())
        kubeconfig = host.write_kubeconfig(tmp_path / "kubeconfig", context="host", token="revoked")
        code, lines = await _run(_kube(tmp_path, kubeconfig))
    assert code == 1
    line = _the_line(lines)
    assert "source.hostKubeconfig: the host API server" in line and "(401 Unauthorized)" in line
    assert line.endswith("renew the token of that kubeconfig's user (in a pod: the ServiceAccount token)")
