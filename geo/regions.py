"""Built-in coordinates of public cloud regions, and zone -> region mapping (pure).

Coordinates are approximate: the city (or metro area) each provider names for
the region, to two decimals. That is all ranking needs; a cluster's declared
``location`` always wins over this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from ingressfed.model import Cluster, Location

__all__ = ["REGIONS", "Placement", "cluster_location", "member_location", "region_location", "region_of_zone"]

_L = Location

_GCP: Final = {
    "africa-south1": _L(-26.20, 28.05),  # Johannesburg
    "asia-east1": _L(24.05, 120.52),  # Changhua County, Taiwan
    "asia-east2": _L(22.32, 114.17),  # Hong Kong
    "asia-northeast1": _L(35.68, 139.69),  # Tokyo
    "asia-northeast2": _L(34.69, 135.50),  # Osaka
    "asia-northeast3": _L(37.57, 126.98),  # Seoul
    "asia-south1": _L(19.08, 72.88),  # Mumbai
    "asia-south2": _L(28.61, 77.21),  # Delhi
    "asia-southeast1": _L(1.35, 103.70),  # Jurong West, Singapore
    "asia-southeast2": _L(-6.21, 106.85),  # Jakarta
    "australia-southeast1": _L(-33.87, 151.21),  # Sydney
    "australia-southeast2": _L(-37.81, 144.96),  # Melbourne
    "europe-central2": _L(52.23, 21.01),  # Warsaw
    "europe-north1": _L(60.57, 27.20),  # Hamina
    "europe-north2": _L(59.33, 18.07),  # Stockholm
    "europe-southwest1": _L(40.42, -3.70),  # Madrid
    "europe-west1": _L(50.45, 3.82),  # St. Ghislain, Belgium
    "europe-west2": _L(51.51, -0.13),  # London
    "europe-west3": _L(50.11, 8.68),  # Frankfurt
    "europe-west4": _L(53.44, 6.83),  # Eemshaven, Netherlands
    "europe-west6": _L(47.38, 8.54),  # Zurich
    "europe-west8": _L(45.46, 9.19),  # Milan
    "europe-west9": _L(48.86, 2.35),  # Paris
    "europe-west10": _L(52.52, 13.40),  # Berlin
    "europe-west12": _L(45.07, 7.69),  # Turin
    "me-central1": _L(25.29, 51.53),  # Doha
    "me-central2": _L(26.43, 50.10),  # Dammam
    "me-west1": _L(32.09, 34.78),  # Tel Aviv
    "northamerica-northeast1": _L(45.50, -73.57),  # Montreal
    "northamerica-northeast2": _L(43.65, -79.38),  # Toronto
    "northamerica-south1": _L(20.59, -100.39),  # Queretaro
    "southamerica-east1": _L(-23.55, -46.63),  # Sao Paulo
    "southamerica-west1": _L(-33.45, -70.67),  # Santiago
    "us-central1": _L(41.26, -95.86),  # Council Bluffs, Iowa
    "us-east1": _L(33.20, -80.01),  # Moncks Corner, South Carolina
    "us-east4": _L(39.04, -77.49),  # Ashburn, Virginia
    "us-east5": _L(39.96, -83.00),  # Columbus, Ohio
    "us-south1": _L(32.78, -96.80),  # Dallas
    "us-west1": _L(45.59, -121.18),  # The Dalles, Oregon
    "us-west2": _L(34.05, -118.24),  # Los Angeles
    "us-west3": _L(40.76, -111.89),  # Salt Lake City
    "us-west4": _L(36.17, -115.14),  # Las Vegas
}

_AWS: Final = {
    "af-south-1": _L(-33.92, 18.42),  # Cape Town
    "ap-east-1": _L(22.32, 114.17),  # Hong Kong
    "ap-east-2": _L(25.03, 121.57),  # Taipei
    "ap-northeast-1": _L(35.68, 139.69),  # Tokyo
    "ap-northeast-2": _L(37.57, 126.98),  # Seoul
    "ap-northeast-3": _L(34.69, 135.50),  # Osaka
    "ap-south-1": _L(19.08, 72.88),  # Mumbai
    "ap-south-2": _L(17.39, 78.49),  # Hyderabad
    "ap-southeast-1": _L(1.35, 103.82),  # Singapore
    "ap-southeast-2": _L(-33.87, 151.21),  # Sydney
    "ap-southeast-3": _L(-6.21, 106.85),  # Jakarta
    "ap-southeast-4": _L(-37.81, 144.96),  # Melbourne
    "ap-southeast-5": _L(3.14, 101.69),  # Kuala Lumpur
    "ap-southeast-7": _L(13.76, 100.50),  # Bangkok
    "ca-central-1": _L(45.50, -73.57),  # Montreal
    "ca-west-1": _L(51.05, -114.07),  # Calgary
    "cn-north-1": _L(39.90, 116.41),  # Beijing
    "cn-northwest-1": _L(37.51, 105.19),  # Ningxia
    "eu-central-1": _L(50.11, 8.68),  # Frankfurt
    "eu-central-2": _L(47.38, 8.54),  # Zurich
    "eu-north-1": _L(59.33, 18.07),  # Stockholm
    "eu-south-1": _L(45.46, 9.19),  # Milan
    "eu-south-2": _L(41.65, -0.88),  # Aragon, Spain
    "eu-west-1": _L(53.35, -6.26),  # Dublin
    "eu-west-2": _L(51.51, -0.13),  # London
    "eu-west-3": _L(48.86, 2.35),  # Paris
    "il-central-1": _L(32.09, 34.78),  # Tel Aviv
    "me-central-1": _L(25.20, 55.27),  # UAE
    "me-south-1": _L(26.07, 50.56),  # Bahrain
    "mx-central-1": _L(20.59, -100.39),  # Queretaro
    "sa-east-1": _L(-23.55, -46.63),  # Sao Paulo
    "us-east-1": _L(39.04, -77.49),  # Northern Virginia
    "us-east-2": _L(39.96, -83.00),  # Ohio
    "us-gov-east-1": _L(39.96, -83.00),  # Ohio
    "us-gov-west-1": _L(45.84, -119.70),  # Oregon
    "us-west-1": _L(37.77, -122.42),  # Northern California
    "us-west-2": _L(45.84, -119.70),  # Oregon
}

_AZURE: Final = {
    "australiacentral": _L(-35.31, 149.12),  # Canberra
    "australiaeast": _L(-33.86, 151.21),  # New South Wales
    "australiasoutheast": _L(-37.81, 144.96),  # Victoria
    "brazilsouth": _L(-23.55, -46.63),  # Sao Paulo State
    "canadacentral": _L(43.65, -79.38),  # Toronto
    "canadaeast": _L(46.82, -71.22),  # Quebec City
    "centralindia": _L(18.58, 73.92),  # Pune
    "centralus": _L(41.59, -93.62),  # Iowa
    "chilecentral": _L(-33.45, -70.67),  # Santiago
    "eastasia": _L(22.27, 114.19),  # Hong Kong
    "eastus": _L(37.37, -79.82),  # Virginia
    "eastus2": _L(36.67, -78.39),  # Virginia
    "francecentral": _L(46.38, 2.37),  # Paris area
    "germanywestcentral": _L(50.11, 8.68),  # Frankfurt
    "indonesiacentral": _L(-6.21, 106.85),  # Jakarta
    "israelcentral": _L(32.09, 34.78),  # Israel
    "italynorth": _L(45.46, 9.19),  # Milan
    "japaneast": _L(35.68, 139.77),  # Tokyo, Saitama
    "japanwest": _L(34.69, 135.50),  # Osaka
    "koreacentral": _L(37.57, 126.98),  # Seoul
    "koreasouth": _L(35.18, 129.08),  # Busan
    "malaysiawest": _L(3.14, 101.69),  # Kuala Lumpur
    "mexicocentral": _L(20.59, -100.39),  # Queretaro
    "newzealandnorth": _L(-36.85, 174.76),  # Auckland
    "northcentralus": _L(41.88, -87.63),  # Illinois
    "northeurope": _L(53.35, -6.26),  # Ireland
    "norwayeast": _L(59.91, 10.75),  # Oslo
    "polandcentral": _L(52.23, 21.01),  # Warsaw
    "qatarcentral": _L(25.29, 51.53),  # Doha
    "southafricanorth": _L(-25.73, 28.22),  # Johannesburg
    "southcentralus": _L(29.42, -98.50),  # Texas
    "southeastasia": _L(1.28, 103.83),  # Singapore
    "southindia": _L(12.98, 80.16),  # Chennai
    "spaincentral": _L(40.42, -3.70),  # Madrid
    "swedencentral": _L(60.67, 17.14),  # Gavle
    "switzerlandnorth": _L(47.45, 8.56),  # Zurich
    "uaenorth": _L(25.27, 55.32),  # Dubai
    "uksouth": _L(51.51, -0.13),  # London
    "ukwest": _L(51.48, -3.18),  # Cardiff
    "westcentralus": _L(40.89, -110.23),  # Wyoming
    "westeurope": _L(52.37, 4.90),  # Netherlands
    "westindia": _L(19.08, 72.87),  # Mumbai
    "westus": _L(37.78, -122.42),  # California
    "westus2": _L(47.23, -119.85),  # Washington
    "westus3": _L(33.45, -112.07),  # Phoenix
}

# The three naming schemes never collide (GCP "us-east1", AWS "us-east-1",
# Azure "eastus"), so one flat table serves all of them.
REGIONS: Final = MappingProxyType({**_GCP, **_AWS, **_AZURE})

# us-east1-b (GCP) -> us-east1
_GCP_ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
# us-east-1a (AWS availability zone) -> us-east-1; us-west-2-lax-1a (local zone) -> us-west-2
_AWS_ZONE = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-[0-9]+)(?:[a-z]|-[a-z]+-[0-9]+[a-z])$")
# eastus-1 (Azure availability zone label) -> eastus
_AZURE_ZONE = re.compile(r"^([a-z0-9]+)-[0-9]+$")


def _normalise(name: str) -> str:
    # Azure display names ("East US") and labels ("eastus") denote the same region.
    return name.strip().lower().replace(" ", "")


def region_location(region: str) -> Location | None:
    """Approximate location of a public GCP, AWS or Azure region; None when unknown."""
    return REGIONS.get(_normalise(region))


def region_of_zone(zone: str) -> str:
    """Region of a zone: ``us-east1-b`` -> ``us-east1``, ``us-east-1a`` -> ``us-east-1``,
    ``eastus-1`` -> ``eastus``.

    A name that is already a region, or matches no provider's scheme, is
    returned normalised but otherwise unchanged.
    """
    name = _normalise(zone)
    if name in REGIONS:
        return name
    for pattern in (_GCP_ZONE, _AWS_ZONE, _AZURE_ZONE):
        m = pattern.match(name)
        if m:
            return m.group(1)
    return name


LocationSource = Literal["declared", "region", "zone", "unknown"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a member is, and what said so (shown on the FederatedCluster's status)."""

    location: Location | None
    source: LocationSource


def member_location(*, declared: Location | None, region: str, zone: str) -> Placement:
    """The one rule for every member, from the config or a FederatedCluster alike.

    A declared location wins; else the built-in table's entry for the region (declared or observed
    from node labels, whichever the member has), else for its zone's region; else unknown (ranking
    then falls back to the configured default order).
    """
    if declared is not None:
        return Placement(declared, "declared")
    if region:
        found = region_location(region)
        if found is not None:
            return Placement(found, "region")
    if zone:
        found = region_location(region_of_zone(zone))
        if found is not None:
            return Placement(found, "zone")
    return Placement(None, "unknown")


def cluster_location(cluster: Cluster) -> Location | None:
    """The declared location, else the table's entry for its region (or its zone's region)."""
    return member_location(declared=cluster.location, region=cluster.region, zone=cluster.zone).location
