"""Filter semantics: the API's ReplacePrefixMatch table, redirect Locations, header modifiers."""

from __future__ import annotations

import pytest

from ingressfed.gateway.filters import modify_headers, redirect_location, replace_prefix
from ingressfed.gateway.hostnames import effective_hostnames, intersect
from ingressfed.gateway.resources import HeaderModifier, PathModifier, RequestRedirect


@pytest.mark.parametrize(
    ("path", "prefix", "replacement", "expected"),
    [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
        ("/prefix/one/two", "/prefix", "/", "/one/two"),
        (
            "/prefix/rewrite-path-and-modify-headers/one",
            "/prefix/rewrite-path-and-modify-headers",
            "/prefix",
            "/prefix/one",
        ),
    ],
)
def test_replace_prefix_match_table(path: str, prefix: str, replacement: str, expected: str) -> None:
    assert replace_prefix(path, prefix, replacement) == expected


def loc(
    redirect: RequestRedirect,
    *,
    scheme: str = "http",
    port: int = 80,
    path: str = "/p",
    query: str = "",
    prefix: str | None = None,
) -> str:
    return redirect_location(
        redirect,
        scheme=scheme,
        host="example.com",
        listener_port=port,
        path=path,
        query=query,
        matched_prefix=prefix,
    )


def test_redirect_locations() -> None:
    assert loc(RequestRedirect()) == "http://example.com/p"
    assert loc(RequestRedirect(hostname="example.org")) == "http://example.org/p"
    assert loc(RequestRedirect(scheme="https")) == "https://example.com/p"  # well-known port, left out
    assert loc(RequestRedirect(scheme="https"), port=8080) == "https://example.com/p"
    assert loc(RequestRedirect(), port=8080) == "http://example.com:8080/p"  # the listener's port
    assert loc(RequestRedirect(port=8443, scheme="https")) == "https://example.com:8443/p"
    assert loc(RequestRedirect(port=443, scheme="https")) == "https://example.com/p"
    assert loc(RequestRedirect(port=443)) == "http://example.com:443/p"
    assert loc(RequestRedirect(scheme="http"), scheme="https", port=443) == "http://example.com/p"
    assert loc(RequestRedirect(path=PathModifier("ReplaceFullPath", "/full"))) == "http://example.com/full"
    assert (
        loc(
            RequestRedirect(path=PathModifier("ReplacePrefixMatch", "/replacement-prefix")),
            path="/original-prefix/lemon",
            prefix="/original-prefix",
        )
        == "http://example.com/replacement-prefix/lemon"
    )
    assert loc(RequestRedirect(), query="a=1&b=2") == "http://example.com/p?a=1&b=2"
    v6 = redirect_location(
        RequestRedirect(port=8080),
        scheme="http",
        host="::1",
        listener_port=80,
        path="/",
        query="",
        matched_prefix=None,
    )
    assert v6 == "http://[::1]:8080/"


def test_header_modifier_set_add_remove() -> None:
    before = [
        ("X-Header-Remove", "remove-val"),
        ("X-Header-Add-Append", "append-val-1"),
        ("x-header-set", "set-val"),
        ("Keep", "k"),
    ]
    mod = HeaderModifier(
        set=(("X-Header-Set", "set-overwrites-values"),),
        add=(("X-Header-Add", "header-val-1"), ("X-Header-Add-Append", "header-val-2")),
        remove=("x-header-remove",),
    )
    after = modify_headers(before, mod)
    assert ("Keep", "k") in after
    assert not any(n.lower() == "x-header-remove" for n, _ in after)
    assert [v for n, v in after if n.lower() == "x-header-set"] == ["set-overwrites-values"]
    assert [v for n, v in after if n.lower() == "x-header-add-append"] == ["append-val-1", "header-val-2"]
    assert [v for n, v in after if n.lower() == "x-header-add"] == ["header-val-1"]


@pytest.mark.parametrize(
    ("listener", "route", "expected"),
    [
        ("*", "a.example.com", "a.example.com"),
        ("very.specific.com", "very.specific.com", "very.specific.com"),
        ("very.specific.com", "*.specific.com", "very.specific.com"),
        ("very.specific.com", "non.matching.com", None),
        ("*.wildcard.io", "foo.bar.wildcard.io", "foo.bar.wildcard.io"),
        ("*.wildcard.io", "wildcard.io", None),
        ("*.example.com", "*.foo.example.com", "*.foo.example.com"),
        ("*.foo.example.com", "*.example.com", "*.foo.example.com"),
        ("*.anotherwildcard.io", "*.anotherwildcard.io", "*.anotherwildcard.io"),
        ("*.a.io", "*.b.io", None),
        ("*.com", "example.com", "example.com"),
    ],
)
def test_hostname_intersection_table(listener: str, route: str, expected: str | None) -> None:
    assert intersect(listener, route) == expected


def test_route_without_hostnames_takes_the_listeners() -> None:
    assert effective_hostnames("bar.com", ()) == ("bar.com",)
    assert effective_hostnames(None, ()) == ("*",)
    assert effective_hostnames("*.bar.com", ("a.bar.com", "x.io")) == ("a.bar.com",)
