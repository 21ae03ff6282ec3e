"""Reads the ``kubernetes.io/tls`` Secrets that federated Ingresses name in ``spec.tls`` and
that HTTPS listeners of the global Gateway name in ``tls.certificateRefs``.

After each reconcile the controller hands over the snapshot (``submit``); ``run`` fetches every
referenced Secret by name (``get`` only: no list or watch of Secrets, see docs/tls.md) from the
Ingress's own namespace in its member cluster, every ``interval`` seconds and on change, and passes
the resulting certificate offers to ``on_offers`` (the in-process proxy's catalogue, the feed).
Each bad case becomes one Warning Event on the Ingress (again only after it went away and came
back): a missing or unreadable Secret, a wrong type, a mismatched key, an expired or not yet valid
certificate, one that does not cover the host, malformed PEM. A Secret that cannot be read any more
(member unreachable, Secret deleted or forbidden) keeps its last offer while an Ingress names it,
so its hosts keep their certificates; an Ingress that drops the entry drops the offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
import time
from collections.abc import Callable, Sequence

from kubernetes_asyncio.client import ApiClient
from prometheus_client import CollectorRegistry, Gauge

from ingressfed.kube.rest import KubeApiError, request_json
from ingressfed.kube.status import event_body
from ingressfed.model import Snapshot
from ingressfed.tls.book import Offer
from ingressfed.tls.secrets import SecretProblem, TlsRef, offer_from_secret, problems_of, tls_refs

__all__ = ["TlsSecretReader"]

log = logging.getLogger(__name__)

EVENT_REASON = "InvalidTLSSecret"
EventKey = tuple[str, str, str, str]  # cluster, namespace, ingress, message


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TlsSecretReader:
    def __init__(
        self,
        client_for: Callable[[str], ApiClient | None],
        *,
        on_offers: Callable[[list[Offer]], None],
        on_problems: Callable[[list[SecretProblem]], None] | None = None,
        interval: float = 30.0,
        instance: str | None = None,
        clock: Callable[[], datetime.datetime] = _utcnow,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._client_for = client_for
        self._on_offers = on_offers
        self._on_problems = on_problems
        self._interval = interval
        self._instance = instance or socket.gethostname()
        self._clock = clock
        self._refs: list[TlsRef] = []
        self._known: dict[TlsRef, Offer] = {}  # last offer read per reference (kept while unreachable)
        self._emitted: set[EventKey] = set()
        self._wake = asyncio.Event()
        self.events = 0
        self.problems: list[SecretProblem] = []
        self._problem_gauge = Gauge(
            "ingressfed_tls_secret_problems",
            "Ingress spec.tls entries whose Secret cannot serve, by reason (SecretNotFound, KeyMismatch…)",
            ["reason"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    def submit(self, snapshot: Snapshot, extra: Sequence[TlsRef] = ()) -> None:
        """The references of ``snapshot``'s Ingresses, plus ``extra`` (Gateway listeners')."""
        refs = tls_refs(snapshot) + list(extra)
        if refs != self._refs:
            self._refs = refs
            self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
            except KubeApiError as exc:
                log.warning("TLS Secrets not read this round: %s", exc)

    async def sync(self) -> list[SecretProblem]:
        """Read every referenced Secret once, hand over the offers, report the problems."""
        offers: list[tuple[TlsRef, Offer]] = []
        problems: list[SecretProblem] = []
        known: dict[TlsRef, Offer] = {}
        for ref in self._refs:
            result = await self._read(ref)
            if result is None or isinstance(result, SecretProblem):
                if result is not None:
                    problems.append(result)
                # Unreachable, deleted or forbidden while the Ingress still names it: the host
                # keeps serving what was last read, with the Event saying why it is stale.
                if ref in self._known:
                    known[ref] = self._known[ref]
                    offers.append((ref, known[ref]))
                continue
            known[ref] = result
            offers.append((ref, result))
        self._known = known
        problems += problems_of(offers, now=self._clock())
        # Every offer goes to the catalogue, bad ones too: it refuses them there and keeps each
        # host's last good certificate, so a broken update never removes a working one.
        self._on_offers([offer for _, offer in offers])
        self.problems = problems
        if self._on_problems is not None:
            self._on_problems(problems)
        counts: dict[str, int] = {}
        for problem in problems:
            counts[problem.reason] = counts.get(problem.reason, 0) + 1
        self._problem_gauge.clear()
        for reason, count in counts.items():
            self._problem_gauge.labels(reason).set(count)
        await self._report(problems)
        return problems

    async def _read(self, ref: TlsRef) -> Offer | SecretProblem | None:
        api = self._client_for(ref.cluster)
        if api is None:
            return None
        path = f"/api/v1/namespaces/{ref.secret_ns}/secrets/{ref.secret}"
        try:
            secret = await request_json(api, "GET", path)
        except KubeApiError as exc:
            if exc.status == 404:
                return SecretProblem(
                    ref, "SecretNotFound", f"no Secret {ref.secret} in namespace {ref.secret_ns}"
                )
            if exc.status == 403:
                return SecretProblem(
                    ref,
                    "SecretForbidden",
                    f"the member account may not get Secrets in namespace {ref.secret_ns}; "
                    "grant it get on secrets there (see docs/tls.md)",
                )
            log.info("Secret %s/%s in %s not read: %s", ref.secret_ns, ref.secret, ref.cluster, exc)
            return None
        return offer_from_secret(secret, ref)

    async def _report(self, problems: list[SecretProblem]) -> None:
        current: set[EventKey] = set()
        for problem in problems:
            ref = problem.ref
            note = problem.message()
            key = (ref.cluster, ref.namespace, ref.ingress, note)
            current.add(key)
            if key in self._emitted:
                continue
            log.warning("%s: %s", ref.subject, note, extra={"cluster": ref.cluster, "reason": problem.reason})
            api = self._client_for(ref.cluster)
            if api is None:
                continue
            body = event_body(
                kind=ref.kind,
                namespace=ref.namespace,
                name=ref.ingress,
                uid="",
                note=note,
                reason=EVENT_REASON,
                instance=self._instance,
                now=time.time(),
            )
            try:
                await request_json(api, "POST", f"/api/v1/namespaces/{ref.namespace}/events", body=body)
            except KubeApiError as exc:
                log.warning("cannot record event on %s: %s", ref.subject, exc)
                if exc.transient:
                    continue
            else:
                self.events += 1
            self._emitted.add(key)
        self._emitted &= current
