"""Which hosts ACME manages: ``tls.acme.hosts`` merged with the hosts Ingresses opt in with the
``federation.ingressfed.io/acme`` annotation. Pure decisions: the snapshot's Ingresses in, the
host set and the problems (for Warning Events on the Ingresses) out.

An Ingress's hosts are taken all together or not at all: one host that cannot be ordered (outside
the federation zone for dns-01, a wildcard over http-01) refuses the Ingress's whole annotation,
so a half-applied opt-in never orders some names and silently drops others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingressfed.kube.objects import ACME_KEY, ObjectRef, Problem
from ingressfed.model import IngressObservation

__all__ = ["HostPlan", "host_of_state_name", "host_problem", "plan_hosts", "state_name"]


def host_problem(host: str, *, zone: str, challenge: str) -> str | None:
    """Why ``host`` cannot be ordered with ``challenge``, or None."""
    name = host.lower().rstrip(".")
    if name.startswith("*.") and challenge != "dns-01":
        return (
            f"{host!r} is a wildcard: CAs validate wildcards with dns-01 only "
            "(set tls.acme.challenge: dns-01, or list the names one by one)"
        )
    base, apex = name.removeprefix("*."), zone.lower().strip(".")
    # The challenge TXT is _acme-challenge.BASE (a wildcard's too): inside the zone, apex included.
    if challenge == "dns-01" and apex and base != apex and not base.endswith("." + apex):
        return (
            f"{host!r} is outside federation.zone {zone!r}; dns-01 writes _acme-challenge TXT "
            "records there (use http-01 for other names)"
        )
    return None


def state_name(host: str) -> str:
    """The state directory's file stem for ``host`` (``*.example.com`` -> ``_wildcard.example.com``:
    no shell glob in file names, and ``_`` never starts a host name label ACME accepts)."""
    return "_wildcard." + host[2:] if host.startswith("*.") else host


def host_of_state_name(stem: str) -> str:
    return "*." + stem[len("_wildcard.") :] if stem.startswith("_wildcard.") else stem


@dataclass(frozen=True, slots=True)
class HostPlan:
    hosts: tuple[str, ...]  # sorted, each once
    problems: tuple[tuple[str, Problem], ...] = ()  # (cluster, problem on its Ingress)


def plan_hosts(
    configured: Iterable[str],
    ingresses: Iterable[IngressObservation],
    *,
    zone: str,
    challenge: str,
) -> HostPlan:
    hosts = {h.lower().rstrip(".") for h in configured}
    problems: list[tuple[str, Problem]] = []
    for ing in ingresses:
        if not ing.acme_hosts:
            continue
        why = [p for p in (host_problem(h, zone=zone, challenge=challenge) for h in ing.acme_hosts) if p]
        if why:
            ref = ObjectRef("Ingress", ing.namespace, ing.name)
            note = (
                f"annotation {ACME_KEY}: {'; '.join(why)}; no ACME certificate is ordered for "
                "this Ingress until every host it opts in can be"
            )
            problems.append((ing.cluster, Problem(ref, note)))
            continue
        hosts.update(ing.acme_hosts)
    return HostPlan(tuple(sorted(hosts)), tuple(problems))
