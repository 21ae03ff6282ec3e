"""Proxy routes from a snapshot: which clusters serve each Ingress host and path."""

from __future__ import annotations

from collections import defaultdict

from ingressfed.model import Backend, Route, Snapshot, Steering

__all__ = ["desired_routes"]


def desired_routes(snap: Snapshot) -> tuple[Route, ...]:
    """One Route per (host, path, pathType), with a backend in every cluster that has it.

    Health is not filtered here: the proxy ranks healthy clusters first from its
    own live checks, which are fresher than any snapshot.
    """
    known = {c.name for c in snap.clusters}
    backends: dict[tuple[str, str, str], set[Backend]] = defaultdict(set)
    # A route's steering policy: from the first Ingress (by cluster, namespace, name) that sets one.
    steering: dict[tuple[str, str, str], Steering] = {}
    redirects: dict[tuple[str, str, str], bool] = {}
    for ing in sorted(snap.ingresses, key=lambda i: (i.cluster, i.namespace, i.name)):
        if ing.cluster not in known:
            continue
        target = ing.addresses[0] if ing.addresses else (ing.hostnames[0] if ing.hostnames else None)
        if target is None:
            continue
        for rule in ing.rules:
            key = (rule.host.rstrip(".").lower(), rule.path or "/", rule.path_type)
            backends[key].add(Backend(cluster=ing.cluster, host=target, port=ing.port))
            if ing.steering is not None:
                steering.setdefault(key, ing.steering)
            if ing.https_redirect is not None:
                redirects.setdefault(key, ing.https_redirect)
    return tuple(
        Route(
            host=h,
            path=p,
            path_type=t,
            backends=tuple(sorted(b, key=lambda x: (x.cluster, x.host, x.port))),
            steering=steering.get((h, p, t)),
            https_redirect=redirects.get((h, p, t)),
        )
        for (h, p, t), b in sorted(backends.items())
    )
