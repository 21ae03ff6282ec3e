from __future__ import annotations

import pytest

from geo.distance import great_circle_km
from geo.regions import REGIONS, cluster_location, region_location, region_of_zone
from ingressfed.model import Cluster, Location


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        (Location(51.5074, -0.1278), Location(40.7128, -74.0060), 5570),  # London - New York
        (Location(35.6762, 139.6503), Location(-33.8688, 151.2093), 7820),  # Tokyo - Sydney
        (Location(0, 0), Location(0, 180), 20015),  # half the equator
        (Location(90, 0), Location(-90, 0), 20015),  # pole to pole
    ],
)
def test_great_circle_matches_known_distances(a: Location, b: Location, km: float) -> None:
    assert great_circle_km(a, b) == pytest.approx(km, rel=0.01)
    assert great_circle_km(b, a) == pytest.approx(great_circle_km(a, b))


def test_distance_to_self_is_zero() -> None:
    here = Location(52.37, 4.90)
    assert great_circle_km(here, here) == 0


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("us-east1-b", "us-east1"),
        ("europe-west1-b", "europe-west1"),
        ("asia-east1-a", "asia-east1"),
        ("northamerica-northeast1-c", "northamerica-northeast1"),
        ("us-east-1a", "us-east-1"),
        ("ap-southeast-2c", "ap-southeast-2"),
        ("us-gov-west-1a", "us-gov-west-1"),
        ("us-west-2-lax-1a", "us-west-2"),
        ("eastus-1", "eastus"),
        ("westeurope-3", "westeurope"),
        ("us-east1", "us-east1"),  # already a region
        ("eu-west-1", "eu-west-1"),
        ("East US", "eastus"),
        ("my-lab-zone", "my-lab-zone"),  # unknown scheme: unchanged
    ],
)
def test_region_of_zone(zone: str, region: str) -> None:
    assert region_of_zone(zone) == region


@pytest.mark.parametrize(
    ("region", "near", "max_km"),
    [
        ("us-east1", Location(33.2, -80.0), 50),  # Moncks Corner, SC
        ("europe-west1", Location(50.47, 3.87), 50),  # St. Ghislain
        ("asia-east1", Location(24.07, 120.54), 50),  # Changhua
        ("us-east-1", Location(38.95, -77.45), 50),  # Ashburn / Dulles
        ("eu-west-1", Location(53.35, -6.26), 50),  # Dublin
        ("westeurope", Location(52.37, 4.90), 50),  # Amsterdam
        ("EastUS", Location(37.4, -79.8), 50),
    ],
)
def test_region_coordinates_are_near_the_city(region: str, near: Location, max_km: float) -> None:
    found = region_location(region)
    assert found is not None
    assert great_circle_km(found, near) < max_km


def test_region_table_is_sane() -> None:
    assert len(REGIONS) > 100
    for name, loc in REGIONS.items():
        assert name == name.lower()
        assert -90 <= loc.lat <= 90 and -180 <= loc.lon <= 180, name
    assert region_location("mars-north1") is None


def test_cluster_location_declared_wins_then_region_then_zone() -> None:
    declared = Location(1.0, 2.0)
    assert cluster_location(Cluster("a", "us-east1", "us-east1-b", location=declared)) == declared
    assert cluster_location(Cluster("b", "us-east1", "us-east1-b")) == region_location("us-east1")
    assert cluster_location(Cluster("c", "", "europe-west1-b")) == region_location("europe-west1")
    assert cluster_location(Cluster("d", "on-prem", "rack-7")) is None
