from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from ingressfed.feed.view import FeedFormatError, FeedView, decode_view, encode_view, view_to_wire
from tests.feed.conftest import sample_view


def test_round_trip() -> None:
    view = replace(sample_view(3), version=42, epoch="abc")
    assert decode_view(encode_view(view)) == view
    assert decode_view(encode_view(view).decode()) == view


def test_canonical_order_and_same_content() -> None:
    view = sample_view()
    shuffled = replace(
        view,
        records=tuple(reversed(view.records)),
        clusters=tuple(reversed(view.clusters)),
        version=9,
        epoch="other",
    )
    assert shuffled != view
    assert shuffled.same_content(view)
    assert not sample_view(2).same_content(view)
    assert shuffled.canonical().records == view.canonical().records


def test_newer_than() -> None:
    a = replace(sample_view(), version=5, epoch="e1")
    assert a.newer_than(None)
    assert a.newer_than(replace(a, version=4))
    assert not a.newer_than(a)
    assert not a.newer_than(replace(a, version=6))
    # a different controller instance replaces whatever was held
    assert a.newer_than(replace(a, version=600, epoch="e0"))


def wire() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(view_to_wire(replace(sample_view(), version=1, epoch="e"))))
    return doc


def mutate(path: str, value: Any) -> dict[str, Any]:
    doc = wire()
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is KeyError:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("format", "something/v9", "format: 'something/v9' is not supported"),
        ("version", "7", "version: must be int, got str"),
        ("version", True, "version: must be int, got bool"),
        ("version", -1, "version: -1 must be >= 0"),
        ("epoch", KeyError, "epoch: is required"),
        ("records", {}, "records: must be list, got dict"),
        ("records.0", "A 1.2.3.4", "records[0]: must be an object, got str"),
        ("records.0.type", "MX", "records[0].type: 'MX' must be one of A, AAAA"),
        ("records.0.ttl", -5, "records[0].ttl: -5 must be between 0 and 2147483647"),
        ("records.0.values.0", 5, "records[0].values[0]: must be str, got int"),
        (
            "records.1.routing.location.lat",
            91,
            "records[1].routing.location.lat: 91.0 must be between -90 and 90",
        ),
        ("records.1.routing.weight", None, "records[1].routing.weight: must be int, got null"),
        ("routes.0.backends.0.port", 70000, "routes[0].backends[0].port: 70000 must be between 1 and 65535"),
        ("routes.0.host", KeyError, "routes[0].host: is required"),
        (
            "clusters.1.status",
            "Sleeping",
            "clusters[1].status: 'Sleeping' must be one of Ready, NotReady, Offline",
        ),
        ("clusters.0.dataPlaneHealthy", "yes", "clusters[0].dataPlaneHealthy: must be bool, got str"),
        ("clusters.0.location", [1, 2], "clusters[0].location: must be an object, got list"),
    ],
)
def test_bad_documents_name_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(FeedFormatError) as info:
        decode_view(json.dumps(mutate(path, value)))
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"null", b"\xff\xfe"])
def test_not_a_document(data: bytes) -> None:
    with pytest.raises(FeedFormatError):
        decode_view(data)


def test_integer_coordinates_are_accepted() -> None:
    view = decode_view(json.dumps(mutate("clusters.0.location", {"lat": 33, "lon": -80})))
    assert view.clusters[0].location is not None and view.clusters[0].location.lat == 33.0
    assert isinstance(view, FeedView)


def test_route_steering_travels_and_is_validated() -> None:
    from ingressfed.model import Steering, SteeringKind

    steering = Steering(
        kind=SteeringKind.WEIGHTED, weights=(("a", 90), ("b", 10)), capacity=(("a", 50),), affinity_cookie="c"
    )
    view = sample_view(1)
    view = replace(view, routes=(replace(view.routes[0], steering=steering),))
    assert decode_view(encode_view(view)) == view
    assert "maxRate" not in json.loads(encode_view(view))["routes"][0]["steering"]  # as older feeds
    limited = replace(view, routes=(replace(view.routes[0], steering=replace(steering, rates=(("a", 7),))),))
    assert json.loads(encode_view(limited))["routes"][0]["steering"]["maxRate"] == "a=7"
    assert decode_view(encode_view(limited)) == limited
    doc = json.loads(encode_view(view))
    doc["routes"][0]["steering"]["kind"] = "fastest"
    with pytest.raises(FeedFormatError) as info:
        decode_view(json.dumps(doc))
    assert str(info.value).startswith("routes[0].steering: 'fastest' is not a steering policy")
