"""DNS names of federated objects, exactly as Kubernetes Federation v1 spelled them.

prefix = ``<service>.<namespace>.<federation>.svc``
  zone level    ``<prefix>.<zone>.<region>.<suffix>``
  region level  ``<prefix>.<region>.<suffix>``
  global        ``<prefix>.<suffix>``
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingressfed.model import Federation

__all__ = ["LevelNames", "in_zone", "label_problem", "name_problem", "service_level_names"]

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME = 253


@dataclass(frozen=True, slots=True)
class LevelNames:
    zone: str
    region: str
    global_: str

    def ladder(self) -> tuple[str, str, str]:
        """Most specific first: each level falls back (CNAME) to the next."""
        return (self.zone, self.region, self.global_)


def service_level_names(
    fed: Federation, *, namespace: str, service: str, region: str, zone: str
) -> LevelNames:
    prefix = f"{service}.{namespace}.{fed.name}.svc"
    suffix = fed.suffix.rstrip(".").lower()
    return LevelNames(
        zone=f"{prefix}.{zone}.{region}.{suffix}".lower(),
        region=f"{prefix}.{region}.{suffix}".lower(),
        global_=f"{prefix}.{suffix}".lower(),
    )


def in_zone(name: str, suffix: str) -> bool:
    """True when ``name`` is ``suffix`` or below it (label-wise, not string-wise)."""
    name = name.rstrip(".").lower()
    suffix = suffix.rstrip(".").lower()
    return name == suffix or name.endswith("." + suffix)


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot be a DNS label in a published name, or None."""
    if not _LABEL.match(label):
        return (
            f"{label!r} is not a valid DNS label "
            "(1-63 lowercase letters, digits or '-', starting and ending alphanumeric)"
        )
    return None


def name_problem(name: str, *, reserve: int = 0) -> str | None:
    """Why ``name`` cannot be published, or None.

    ``reserve`` keeps room for a longer companion name (ownership TXT) below it.
    """
    limit = MAX_NAME - reserve
    if len(name) > limit:
        return f"name is {len(name)} characters long; at most {limit} can be published here"
    for label in name.split("."):
        problem = label_problem(label)
        if problem:
            return problem
    return None
