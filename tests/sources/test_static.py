import os
from pathlib import Path

import yaml

from ingressfed.model import Cluster, ClusterStatus
from ingressfed.sources.static import StaticSource
from ingressfed.store import Store


def write(path: Path, doc: object, *, bump: int) -> None:
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    # mtime resolution can hide two writes in one tick: move it explicitly.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def svc(cluster: str, name: str, ip: str) -> dict:
    return {"cluster": cluster, "namespace": "default", "name": name, "readyEndpoints": 1, "addresses": [ip]}


def make(tmp_path: Path) -> tuple[Store, StaticSource, Path]:
    store = Store()
    store.set_cluster(Cluster("a", "r", "z"))
    store.set_cluster(Cluster("b", "r", "z"))
    path = tmp_path / "objects.yaml"
    return store, StaticSource(path, store), path


def test_loads_and_reloads_on_change(tmp_path: Path) -> None:
    store, source, path = make(tmp_path)
    write(path, {"services": [svc("a", "web", "10.0.0.1"), svc("b", "web", "10.0.0.2")]}, bump=1)
    assert source.load_once()
    assert {(s.cluster, s.addresses) for s in store.snapshot().services} == {
        ("a", ("10.0.0.1",)),
        ("b", ("10.0.0.2",)),
    }
    assert not source.load_once(), "unchanged file is not re-read"
    write(
        path,
        {"services": [svc("a", "web", "10.0.0.9")], "clusters": [{"name": "b", "status": "Offline"}]},
        bump=2,
    )
    assert source.load_once()
    snap = store.snapshot()
    assert [(s.cluster, s.addresses) for s in snap.services] == [("a", ("10.0.0.9",))]
    assert snap.cluster("b") is not None and snap.cluster("b").status is ClusterStatus.OFFLINE  # type: ignore[union-attr]


def test_bad_file_keeps_last_good_state(tmp_path: Path) -> None:
    store, source, path = make(tmp_path)
    write(path, {"services": [svc("a", "web", "10.0.0.1")]}, bump=1)
    source.load_once()
    before = store.snapshot()
    write(path, {"services": [svc("a", "web", "not-an-ip"), svc("b", "ok", "10.0.0.2")]}, bump=2)
    assert not source.load_once()
    assert store.snapshot() == before
    assert source.last_error is not None and "services[0]" in source.last_error


def test_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    _, source, _ = make(tmp_path)
    assert not source.load_once()
    assert source.last_error is not None and "not found" in source.last_error
