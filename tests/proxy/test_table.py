"""The routing table's path matching, pure: Kubernetes Exact and Prefix semantics, element-wise."""

from __future__ import annotations

import pytest

from ingressfed.model import Backend, Route
from ingressfed.proxy.table import build_table

from .conftest import US

HOST = "app.example.com"
PATHS = [
    ("/", "Prefix"),
    ("/foo", "Prefix"),
    ("/foo/bar/", "Prefix"),
    ("/foo/exact", "Exact"),
    ("/a/b", "Prefix"),
]


def table():
    routes = [
        Route(host=HOST, path=path, path_type=ptype, backends=(Backend(US.name, "127.0.0.1", 8000 + i),))
        for i, (path, ptype) in enumerate(PATHS)
    ]
    return build_table(routes, [US], version=1, locate=lambda c: c.location)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("/foo", "/foo"),
        ("/foo/", "/foo"),
        ("/foo/x", "/foo"),
        ("/foobar", "/"),  # element-wise: /foo is not a prefix of /foobar
        ("/foo/bar", "/foo/bar/"),  # a Prefix path's trailing slash is ignored
        ("/foo/bar/", "/foo/bar/"),
        ("/foo/bar/baz/qux", "/foo/bar/"),  # longest matching prefix wins
        ("/foo/barn", "/foo"),
        ("/foo/exact", "/foo/exact"),  # Exact beats every prefix
        ("/foo/exact/", "/foo"),  # ... but only for the exact path
        ("/a", "/"),
        ("/a/b/c", "/a/b"),
        ("//a/b", "/"),
    ],
)
def test_prefix_and_exact_semantics(path: str, expected: str) -> None:
    found = table().lookup(HOST, path)
    want = [p for p, _ in PATHS].index(expected)
    assert found is not None and found.route.backends[0].port == 8000 + want, found


def test_no_root_prefix_means_no_match_outside_the_paths() -> None:
    routes = [Route(host=HOST, path="/api", backends=(Backend(US.name, "127.0.0.1", 8000),))]
    t = build_table(routes, [US], version=1, locate=lambda c: c.location)
    assert t.lookup(HOST, "/api/v1").route.path == "/api"  # type: ignore[union-attr]
    assert t.lookup(HOST, "/apis") is None
    assert t.lookup(HOST, "/") is None
    assert t.lookup("other.example.com", "/api") is None
