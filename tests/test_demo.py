"""`ingressfed demo` started as a subprocess and used the way the README says."""

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.fakes.ports import free_ports

PREFIX = "k8shserver.default.federation.svc"


def query(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=2)


def answers(port: int, name: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rrset in query(port, name).answer:
        out.setdefault(dns.rdatatype.to_text(rrset.rdtype), set()).update(r.to_text() for r in rrset)
    return out


def get(proxy: int, client_ip: str) -> str:
    req = urllib.request.Request(
        f"http://127.0.0.1:{proxy}/", headers={"Host": "k8shserver.example.com", "X-Forwarded-For": client_ip}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    names = ("dns", "proxy", "admin", "controller", "control", "https", "edge")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    workdir = tmp_path_factory.mktemp("demo")
    cmd = [
        sys.executable,
        "-m",
        "ingressfed.cli",
        "demo",
        "--workdir",
        str(workdir),
        "--dns-listen",
        f"127.0.0.1:{ports['dns']}",
        "--proxy-listen",
        f"127.0.0.1:{ports['proxy']}",
        "--proxy-admin-listen",
        f"127.0.0.1:{ports['admin']}",
        "--controller-listen",
        f"127.0.0.1:{ports['controller']}",
        "--control",
        f"127.0.0.1:{ports['control']}",
        "--https-listen",
        f"127.0.0.1:{ports['https']}",
        "--edge-port",
        str(ports["edge"]),
    ]
    log = open(workdir / "demo.log", "w")  # noqa: SIM115 - outlives this block: the process writes it
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "Ctrl-C stops the demo" in Path(workdir / "demo.log").read_text():
                break
            assert proc.poll() is None, Path(workdir / "demo.log").read_text()
            time.sleep(0.1)
        else:
            pytest.fail("demo did not start: " + Path(workdir / "demo.log").read_text())
        ports["workdir"] = workdir  # type: ignore[assignment]
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert proc.returncode == 0, Path(workdir / "demo.log").read_text()


def wait_for(pred, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def ctl(ports: dict[str, int], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressfed.cli", "demo", *args, "--control", f"127.0.0.1:{ports['control']}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_dns_names_of_all_levels(demo: dict[str, int]) -> None:
    port = demo["dns"]
    assert answers(port, f"{PREFIX}.example.com") == {"A": {"127.0.0.11", "127.0.0.12", "127.0.0.13"}}
    assert answers(port, f"{PREFIX}.europe-west1.example.com") == {"A": {"127.0.0.12"}}
    assert answers(port, f"{PREFIX}.us-east1-b.us-east1.example.com") == {"A": {"127.0.0.11"}}
    # The Ingress host resolves to an edge: a querier with no location gets the first cluster's.
    assert answers(port, "k8shserver.example.com") == {"A": {"127.0.0.21"}}
    txt = query(port, f"_ingressfed.{PREFIX}.example.com", "TXT").answer
    assert "ingressfed/owner=ingressfed-demo" in txt[0].to_text()


def test_proxy_sends_clients_to_the_nearest_cluster(demo: dict[str, int]) -> None:
    assert "cluster cluster-europe-west1-b" in get(demo["proxy"], "81.2.69.160")
    assert "cluster cluster-asia-east1-a" in get(demo["proxy"], "1.0.16.1")
    assert "cluster cluster-us-east1-b" in get(demo["proxy"], "8.8.8.8")


def test_cluster_down_and_up(demo: dict[str, int]) -> None:
    port = demo["dns"]
    region = f"{PREFIX}.europe-west1.example.com"
    down = ctl(demo, "down", "cluster-europe-west1-b")
    assert down.returncode == 0, down.stderr
    got = wait_for(lambda: answers(port, region).get("CNAME"))
    assert got == {f"{PREFIX}.example.com."}
    assert wait_for(lambda: answers(port, f"{PREFIX}.example.com") == {"A": {"127.0.0.11", "127.0.0.13"}})
    # The European client is now served by the next nearest cluster, without an error.
    assert "cluster cluster-us-east1-b" in get(demo["proxy"], "81.2.69.160")
    up = ctl(demo, "up", "cluster-europe-west1-b")
    assert up.returncode == 0, up.stderr
    assert wait_for(lambda: answers(port, region) == {"A": {"127.0.0.12"}})
    assert wait_for(lambda: "cluster cluster-europe-west1-b" in get(demo["proxy"], "81.2.69.160"))


def test_unknown_cluster_is_a_clear_error(demo: dict[str, int]) -> None:
    r = ctl(demo, "down", "cluster-nowhere")
    assert r.returncode == 1 and "unknown cluster 'cluster-nowhere'" in r.stderr


def test_metrics_endpoint(demo: dict[str, int]) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{demo['controller']}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    assert "ingressfed_reconciles_total" in body and "ingressfed_records_owned" in body


def test_the_printed_https_commands_work_over_http11_and_http2(demo: dict[str, int]) -> None:
    import shlex
    import shutil

    if shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is not installed (scripts/setup.sh --test installs it)")
        pytest.skip("curl is not installed")
    printed = Path(demo["workdir"], "demo.log").read_text()  # type: ignore[call-overload]
    commands = [line.strip() for line in printed.splitlines() if line.strip().startswith("curl --cacert")]
    assert len(commands) == 2, printed
    for command, version in zip(commands, ("1.1", "2"), strict=True):
        assert f"{demo['workdir']}/ca.pem" in command
        done = subprocess.run(
            [*shlex.split(command), "-sS", "-w", "\\n%{http_version}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        body, _, got = done.stdout.rpartition("\n")
        assert "You've hit k8shserver" in body
        assert got == version


def geo_answer(port: int, subnet: str) -> set[str]:
    import dns.edns

    address, prefix = subnet.split("/")
    q = dns.message.make_query(
        "k8shserver.example.com", "A", use_edns=0, options=[dns.edns.ECSOption(address, int(prefix))]
    )
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
    return {rd.to_text() for rrset in r.answer for rd in rrset}


def edge_get(demo: dict[str, int], address: str) -> str:
    req = urllib.request.Request(
        f"http://{address}:{demo['edge']}/", headers={"Host": "k8shserver.example.com"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read().decode()


def test_edges_are_printed_and_answer_per_subnet(demo: dict[str, int]) -> None:
    printed = Path(demo["workdir"], "demo.log").read_text()  # type: ignore[arg-type]
    for line in (
        f"edge edge-us-east1 cluster-us-east1-b http://127.0.0.21:{demo['edge']}",
        f"edge edge-europe-west1 cluster-europe-west1-b http://127.0.0.22:{demo['edge']}",
        f"edge edge-asia-east1 cluster-asia-east1-a http://127.0.0.23:{demo['edge']}",
    ):
        assert line in printed.splitlines()
    assert "+subnet=81.2.69.0/24 k8shserver.example.com A" in printed
    assert geo_answer(demo["dns"], "81.2.69.0/24") == {"127.0.0.22"}
    assert geo_answer(demo["dns"], "1.0.16.0/24") == {"127.0.0.23"}
    assert geo_answer(demo["dns"], "8.8.8.0/24") == {"127.0.0.21"}
    # Each edge is answered by its own cluster.
    assert wait_for(lambda: "cluster cluster-europe-west1-b" in edge_get(demo, "127.0.0.22"))
    assert "cluster cluster-asia-east1-a" in edge_get(demo, "127.0.0.23")
    assert "cluster cluster-us-east1-b" in edge_get(demo, "127.0.0.21")


def test_edge_down_and_up(demo: dict[str, int]) -> None:
    down = ctl(demo, "edge-down", "edge-europe-west1")
    assert down.returncode == 0, down.stderr
    # Within the health window the European clients resolve to the next nearest edge.
    moved = wait_for(
        lambda: geo_answer(demo["dns"], "81.2.69.0/24") not in ({"127.0.0.22"}, set()), timeout=15
    )
    assert moved, geo_answer(demo["dns"], "81.2.69.0/24")
    up = ctl(demo, "edge-up", "edge-europe-west1")
    assert up.returncode == 0, up.stderr
    assert wait_for(lambda: geo_answer(demo["dns"], "81.2.69.0/24") == {"127.0.0.22"}, timeout=15)
    r = ctl(demo, "edge-down", "edge-nowhere")
    assert r.returncode == 1 and "unknown edge 'edge-nowhere'" in r.stderr


def test_get_certificates_lists_the_demo_certificate(demo: dict[str, int]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingressfed.cli",
            "get",
            "certificates",
            "--controller",
            f"http://127.0.0.1:{demo['controller']}",
            "--token-file",
            str(Path(demo["workdir"], "edge-token")),  # type: ignore[call-overload]
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["HOST", "SOURCE", "NOT-AFTER", "STATUS"]
    [row] = rows
    host, source, not_after, status = row.split()
    assert host == "k8shserver.example.com"
    assert source.startswith("file:") and source.endswith("/certs/k8shserver.example.com")
    assert status == "Ready" and not_after.endswith("Z")
    assert "PRIVATE" not in done.stdout


def test_get_edges_lists_the_three_edges(demo: dict[str, int]) -> None:
    def get_edges(*extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ingressfed.cli", "get", "edges", "--controller",
             f"http://127.0.0.1:{demo['controller']}", *extra],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert wait_for(lambda: get_edges().count(" Live ") == 3, timeout=15), get_edges()
    lines = get_edges().splitlines()
    assert lines[0].split() == ["NAME", "CLUSTER", "ADDRESSES", "STATUS", "AGE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["edge-europe-west1"][:3] == ["cluster-europe-west1-b", "127.0.0.22", "Live"]
    assert "BACKENDS UP" in get_edges("-o", "wide").splitlines()[0]
    assert '"name": "edge-asia-east1"' in get_edges("-o", "json")
