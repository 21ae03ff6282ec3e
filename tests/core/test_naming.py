import pytest

from ingressfed.core.naming import in_zone, name_problem, service_level_names
from ingressfed.model import Federation

FED = Federation(name="federation", suffix="example.com")


def test_federation_v1_names() -> None:
    names = service_level_names(
        FED, namespace="default", service="k8shserver", region="us-east1", zone="us-east1-b"
    )
    assert names.zone == "k8shserver.default.federation.svc.us-east1-b.us-east1.example.com"
    assert names.region == "k8shserver.default.federation.svc.us-east1.example.com"
    assert names.global_ == "k8shserver.default.federation.svc.example.com"
    assert names.ladder() == (names.zone, names.region, names.global_)


def test_suffix_trailing_dot_and_case_are_normalised() -> None:
    fed = Federation(name="Fed", suffix="Example.COM.")
    names = service_level_names(fed, namespace="ns", service="s", region="r", zone="z")
    assert names.global_ == "s.ns.fed.svc.example.com"


@pytest.mark.parametrize(
    ("name", "suffix", "inside"),
    [
        ("a.example.com", "example.com", True),
        ("example.com", "example.com", True),
        ("A.Example.com.", "example.com", True),
        ("badexample.com", "example.com", False),
        ("example.com.evil", "example.com", False),
    ],
)
def test_in_zone_is_label_wise(name: str, suffix: str, inside: bool) -> None:
    assert in_zone(name, suffix) is inside


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a.example.com", True),
        ("xn--bcher-kva.example.com", True),
        ("-bad.example.com", False),
        ("under_score.example.com", False),
        ("a" * 64 + ".example.com", False),
        (".".join(["a" * 60] * 5), False),
        ("*.example.com", False),
    ],
)
def test_name_problem(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok
