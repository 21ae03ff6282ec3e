"""The ACME loop: load the certificates kept in the state directory, order the hosts that have
none or whose certificate is within ``renewBeforeDays`` of expiry, back off after failures
(honouring a CA's ``Retry-After``), and offer the results to the certificate catalogue as group
``acme``. Only the leader orders; every replica serves what the state directory holds.

The hosts are ``tls.acme.hosts`` plus those Ingresses opt in by annotation (``observe``, after
each reconcile; acme/hosts.py decides). A host that leaves is no longer renewed and its
certificate no longer offered; its files stay in the state directory, so a host that comes back
is served again without a new order (CAs rate-limit duplicate orders).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable

from ingressfed.acme.challenges import DnsChallenges, HttpChallenges
from ingressfed.acme.hosts import HostPlan, plan_hosts
from ingressfed.acme.order import AcmeFailure, Challenge, RateLimited, order_certificate
from ingressfed.acme.renewal import Attempt, after_failure, due
from ingressfed.acme.state import AcmeState
from ingressfed.config import AcmeSection
from ingressfed.kube.objects import Problem
from ingressfed.model import Snapshot
from ingressfed.tls.book import Offer
from ingressfed.tls.catalog import CertificateCatalog

__all__ = ["AcmeManager"]

log = logging.getLogger(__name__)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AcmeManager:
    GROUP = "acme"

    def __init__(
        self,
        section: AcmeSection,
        catalog: CertificateCatalog,
        *,
        dns: DnsChallenges | None = None,
        http: HttpChallenges | None = None,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime.datetime] = _utcnow,
        zone: str = "",
        annotations: bool = False,
    ) -> None:
        """``annotations``: Ingress hosts will arrive through ``observe`` (a Kubernetes source);
        until the first observation every kept certificate is offered, so a restart serves them
        at once."""
        self.section = section
        self.zone = zone
        self.plan = HostPlan(tuple(sorted(set(section.hosts))))
        self._observed = not annotations
        self._wake = asyncio.Event()
        self.catalog = catalog
        self.state = AcmeState(section.state_dir)
        self.dns = dns
        self.http = http
        self.is_leader = is_leader
        self.clock = clock
        self.attempts: dict[str, Attempt] = {}
        self.issued = 0
        # Told the offers at start and after each issuance (the certificate feed for remote proxies).
        self.listeners: list[Callable[[list[Offer]], None]] = []

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.plan.hosts

    def observe(self, snapshot: Snapshot) -> list[tuple[str, Problem]]:
        """Take the hosts the snapshot's Ingresses opt in; returns (cluster, problem) for each
        Ingress whose annotation is refused (the caller reports them as Warning Events)."""
        plan = plan_hosts(
            self.section.hosts, snapshot.ingresses, zone=self.zone, challenge=self.section.challenge
        )
        changed = plan.hosts != self.plan.hosts or not self._observed
        if changed:
            gone = sorted(set(self.plan.hosts) - set(plan.hosts))
            added = sorted(set(plan.hosts) - set(self.plan.hosts))
            if gone or added:
                log.info("acme: hosts now %s (added %s, left %s)", list(plan.hosts), added, gone)
        self.plan = plan
        self._observed = True
        if changed:
            self.load()
            self._wake.set()
        return list(plan.problems)

    def waiting(self) -> list[tuple[str, str, str]]:
        """(host, source, status) of managed hosts with no certificate kept yet, for
        ``get certificates``: ``Pending`` (being ordered, or next in line) or
        ``OrderFailed:retry-at-<time>`` while a failed order backs off."""
        out = []
        for host in self.hosts:
            if self.state.not_after(host) is not None:
                continue
            attempt = self.attempts.get(host)
            status = "Pending"
            if attempt is not None and attempt.not_before is not None:
                status = f"OrderFailed:retry-at-{attempt.not_before:%Y-%m-%dT%H:%M:%SZ}"
            out.append((host, f"acme:{host}", status))
        return out

    def load(self) -> None:
        managed = set(self.hosts) if self._observed else None
        offers = [o for o in self.state.offers() if managed is None or o.source[len("acme:") :] in managed]
        self.catalog.offer(self.GROUP, offers)
        self.catalog.refresh(self.clock())
        for listener in self.listeners:
            listener(offers)

    def _publishers(self) -> tuple[Callable[[Challenge], None], Callable[[Challenge], None]]:
        if self.section.challenge == "dns-01":
            if self.dns is None:
                raise AcmeFailure("dns-01 needs the controller's DNS provider")
            return self.dns.publish, self.dns.withdraw
        if self.http is None:
            raise AcmeFailure("http-01 needs the proxy's plain listener")
        return self.http.publish, self.http.withdraw

    async def run_once(self) -> None:
        """One pass over the hosts (leader only)."""
        if not self.is_leader():
            return
        renew_before = datetime.timedelta(days=self.section.renew_before_days)
        for host in self.hosts:
            now = self.clock()
            attempt = self.attempts.get(host, Attempt())
            if not due(self.state.not_after(host), now, renew_before) or not attempt.allowed(now):
                continue
            if not await self._order(host, attempt):
                return  # one failure per pass: a CA in trouble is not asked again at once for the rest

    async def _order(self, host: str, attempt: Attempt) -> bool:
        log.info("acme: ordering a certificate for %s from %s", host, self.section.directory_url)
        eab = (self.section.eab.kid, self.section.eab.hmac()) if self.section.eab else None
        try:
            publish, withdraw = self._publishers()
            chain, key = await asyncio.to_thread(
                order_certificate,
                self.section.directory_url,
                self.state.account_key(),
                (host,),
                kind=self.section.challenge,
                publish=publish,
                withdraw=withdraw,
                email=self.section.email,
                eab=eab,
                timeout=self.section.propagation_timeout,
            )
        except RateLimited as exc:
            self.attempts[host] = after_failure(attempt, self.clock(), retry_after=exc.retry_after)
            log.warning(
                "acme: %s rate limited by the CA, next try at %s: %s",
                host,
                self.attempts[host].not_before,
                exc,
            )
            return False
        except AcmeFailure as exc:
            self.attempts[host] = after_failure(attempt, self.clock(), retry_after=None)
            log.error(
                "acme: order for %s failed, next try at %s: %s", host, self.attempts[host].not_before, exc
            )
            return False
        self.state.save(host, chain, key)
        self.attempts.pop(host, None)
        self.issued += 1
        log.info("acme: certificate for %s issued, not after %s", host, self.state.not_after(host))
        self.load()
        return True

    def _sleep_for(self) -> float:
        now = self.clock()
        wait = self.section.check_interval
        for attempt in self.attempts.values():
            if attempt.not_before is not None:
                wait = min(wait, (attempt.not_before - now).total_seconds())
        return max(1.0, wait)

    async def run(self) -> None:
        self.load()
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("acme: pass failed")
            # A host opted in by an Ingress is ordered now, not at the next check interval.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sleep_for()):
                    await self._wake.wait()
            self._wake.clear()
