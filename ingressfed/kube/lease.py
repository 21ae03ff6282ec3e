"""Leader election with a ``coordination.k8s.io/v1`` Lease, so that one controller replica writes DNS.

The timing rules are pure functions of a ``now`` read from a monotonic clock:

- another replica may take the lease only after it has seen the same lease record, unchanged, for
  ``leaseDurationSeconds`` by its own clock (never by comparing wall-clock ``renewTime``, which would
  trust other hosts' clocks);
- the holder counts itself leader only until ``renew_deadline`` after the start of its last successful
  renewal, which is shorter than the lease duration, so it stops writing before anyone else may start.

The adapter (``LeaderElector``) only reads and writes the Lease with optimistic concurrency
(``metadata.resourceVersion``; a 409 means someone else wrote, so it re-reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType
from typing import Any, Self

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ingressfed.errors import ConfigError

__all__ = [
    "LeaderElector",
    "LeaseRecord",
    "LeaseSettings",
    "Observation",
    "Step",
    "default_identity",
    "holds_leadership",
    "next_step",
    "observe",
    "record_expired",
]

log = logging.getLogger(__name__)

_HTTP_NOT_FOUND = 404
_HTTP_CONFLICT = 409


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """Seconds, as in ``leaderElection`` of the config; ``lease > renew deadline > retry period``."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        problems = []
        if self.retry_period <= 0:
            problems.append("leaderElection.retryPeriod must be > 0 seconds")
        if self.renew_deadline <= self.retry_period:
            problems.append(
                "leaderElection.renewDeadline must be greater than retryPeriod "
                "(a leader needs more than one attempt to renew)"
            )
        if self.lease_duration <= self.renew_deadline:
            problems.append(
                "leaderElection.leaseDuration must be greater than renewDeadline "
                "(the leader must stop before its lease can be taken)"
            )
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The parts of a Lease that election reads; ``holder`` is "" when nobody holds it."""

    holder: str
    lease_duration: float | None
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int
    resource_version: str

    @classmethod
    def from_lease(cls, lease: Any) -> LeaseRecord:
        """From a kubernetes-asyncio ``V1Lease``; malformed fields read as absent."""
        spec = lease.spec
        duration = getattr(spec, "lease_duration_seconds", None) if spec else None
        transitions = getattr(spec, "lease_transitions", None) if spec else None
        return cls(
            holder=str(getattr(spec, "holder_identity", None) or "") if spec else "",
            lease_duration=float(duration) if isinstance(duration, int) and duration > 0 else None,
            acquire_time=getattr(spec, "acquire_time", None) if spec else None,
            renew_time=getattr(spec, "renew_time", None) if spec else None,
            transitions=transitions if isinstance(transitions, int) and transitions >= 0 else 0,
            resource_version=str(lease.metadata.resource_version or ""),
        )


@dataclass(frozen=True, slots=True)
class Observation:
    """A lease record and the local monotonic time it was first seen in this exact form."""

    record: LeaseRecord
    since: float


class Step(Enum):
    ACQUIRE = "acquire"  # write ourselves in as holder (lease free, expired, or ours already)
    WAIT = "wait"  # someone else holds a live lease


def observe(previous: Observation | None, record: LeaseRecord, *, now: float) -> Observation:
    """Restart the expiry clock only when the record changed (a renewal changes resourceVersion)."""
    if previous is not None and previous.record.resource_version == record.resource_version:
        return previous
    return Observation(record, now)


def record_expired(obs: Observation, *, now: float, settings: LeaseSettings) -> bool:
    duration = obs.record.lease_duration if obs.record.lease_duration is not None else settings.lease_duration
    return now >= obs.since + duration


def next_step(obs: Observation | None, *, identity: str, now: float, settings: LeaseSettings) -> Step:
    """Whether ``identity`` may write itself into the lease now."""
    if obs is None or not obs.record.holder or obs.record.holder == identity:
        return Step.ACQUIRE
    return Step.ACQUIRE if record_expired(obs, now=now, settings=settings) else Step.WAIT


def holds_leadership(renewed_at: float | None, *, now: float, settings: LeaseSettings) -> bool:
    """A leader counts as one only until ``renew_deadline`` after its last successful renewal began."""
    return renewed_at is not None and now < renewed_at + settings.renew_deadline


OnChange = Callable[[bool], Awaitable[None] | None]


def default_identity() -> str:
    """``<hostname>_<random>``: the pod name in a cluster, unique even if two processes share a host."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Campaign for a Lease and keep it while alive.

    ``async with LeaderElector(api, "ns", "name", "pod-a") as le:`` starts campaigning in the background;
    leaving the block stops and releases the lease (holder set empty) so another replica takes over at
    once. ``await le.run()`` campaigns in the caller's task instead; cancelling it stops without release,
    as a crash would. Check ``le.is_leader`` right before every write; it turns False on its own once the
    renew deadline passes, even while the campaign task is stuck. ``on_change(leading)`` runs in the
    campaign task, so it must be quick (schedule work, do not do it).
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        identity: str,
        settings: LeaseSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: OnChange | None = None,
    ) -> None:
        if not identity:
            raise ConfigError(["leader election identity must not be empty (use the pod name)"])
        self._api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.settings = settings or LeaseSettings()
        self._clock = clock
        self._wall = wall_clock
        self._on_change = on_change
        self._observed: Observation | None = None
        self._renewed_at: float | None = None
        self._leading = False  # what we last announced through on_change
        self._became_leader = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ state
    @property
    def is_leader(self) -> bool:
        return holds_leadership(self._renewed_at, now=self._clock(), settings=self.settings)

    @property
    def holder(self) -> str:
        """The holder as last observed ("" if none or unknown)."""
        return self._observed.record.holder if self._observed else ""

    async def wait_leader(self) -> None:
        """Return once this replica leads (at once if it already does)."""
        while not self.is_leader:
            self._became_leader.clear()
            if self.is_leader:
                return
            await self._became_leader.wait()

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name=f"leader-election/{self.namespace}/{self.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.release()

    async def run(self) -> None:
        """Campaign and renew until cancelled."""
        while True:
            started = self._clock()
            try:
                acquired = await self._try_acquire_or_renew(started)
            except (ApiException, aiohttp.ClientError, TimeoutError) as e:
                log.warning(
                    "lease %s/%s: cannot reach the API server: %s", self.namespace, self.name, _describe(e)
                )
                acquired = False
            except Exception:
                # Election must outlive surprises (a bug, an odd object); leadership lapses on its own.
                log.exception("lease %s/%s: election attempt failed", self.namespace, self.name)
                acquired = False
            if acquired:
                self._renewed_at = started
            await self._announce()
            await asyncio.sleep(self._sleep_for(acquired))

    def _sleep_for(self, acquired: bool) -> float:
        period = self.settings.retry_period
        if acquired:
            return period
        # Wake at the renew deadline too, so on_change(False) fires on time.
        if self._leading and self._renewed_at is not None:
            left = self._renewed_at + self.settings.renew_deadline - self._clock()
            return max(0.0, min(period, left))
        # Followers spread out retries so replicas do not hit the API server in lock step.
        return period * (1 + 0.2 * random.random())

    async def _announce(self) -> None:
        leading = self.is_leader
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self._became_leader.set()
            log.info("lease %s/%s: %s became leader", self.namespace, self.name, self.identity)
        else:
            log.warning("lease %s/%s: %s stopped leading", self.namespace, self.name, self.identity)
        await self._notify(leading)

    async def _notify(self, leading: bool) -> None:
        if self._on_change is None:
            return
        try:
            result = self._on_change(leading)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("lease %s/%s: on_change hook failed", self.namespace, self.name)

    async def release(self) -> None:
        """Stop leading and hand the lease back (holder empty), if it is still ours."""
        was_leader = self._leading
        self._renewed_at = None
        await self._announce()
        obs = self._observed
        if not was_leader or obs is None or obs.record.holder != self.identity:
            return
        try:
            for _ in range(2):
                now = self._wall()
                body = self._body(
                    holder=None,
                    duration=1,
                    acquire=now,
                    renew=now,
                    transitions=obs.record.transitions,
                    rv=obs.record.resource_version,
                )
                try:
                    await self._api.replace_namespaced_lease(
                        self.name, self.namespace, body, _request_timeout=self.settings.retry_period
                    )
                except ApiException as e:
                    if e.status != _HTTP_CONFLICT:
                        raise
                    # Our own last renewal may have landed after we stopped waiting for its answer.
                    fresh = await self._read()
                    if fresh is None or fresh.record.holder != self.identity:
                        return
                    obs = fresh
                    continue
                log.info("lease %s/%s: released by %s", self.namespace, self.name, self.identity)
                return
            log.warning("lease %s/%s: release kept conflicting; it will expire", self.namespace, self.name)
        except (ApiException, aiohttp.ClientError, TimeoutError) as e:
            # The API server is away: the lease will expire instead.
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, _describe(e))

    # ------------------------------------------------------------------ API
    async def _try_acquire_or_renew(self, started: float) -> bool:
        for _ in range(2):  # one re-read after a conflict
            obs = self._observed
            if obs is None or obs.record.holder != self.identity:
                obs = await self._read()
                if obs is None:
                    return await self._create()
            if next_step(obs, identity=self.identity, now=self._clock(), settings=self.settings) is Step.WAIT:
                self._renewed_at = None  # someone else holds it: stop at once, not at the deadline
                return False
            record = obs.record
            now = self._wall()
            ours = record.holder == self.identity
            body = self._body(
                holder=self.identity,
                duration=_seconds(self.settings.lease_duration),
                acquire=record.acquire_time if ours and record.acquire_time else now,
                renew=now,
                transitions=record.transitions if ours else record.transitions + 1,
                rv=record.resource_version,
            )
            try:
                written = await self._api.replace_namespaced_lease(
                    self.name, self.namespace, body, _request_timeout=self.settings.retry_period
                )
            except ApiException as e:
                if e.status != _HTTP_CONFLICT:
                    raise
                log.info("lease %s/%s: conflict, re-reading", self.namespace, self.name)
                self._observed = None
                continue
            self._observed = observe(self._observed, LeaseRecord.from_lease(written), now=started)
            if not ours:
                log.info(
                    "lease %s/%s: %s took over from %r",
                    self.namespace,
                    self.name,
                    self.identity,
                    record.holder,
                )
            return True
        return False

    async def _read(self) -> Observation | None:
        try:
            lease = await self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.settings.retry_period
            )
        except ApiException as e:
            if e.status == _HTTP_NOT_FOUND:
                self._observed = None
                return None
            raise
        self._observed = observe(self._observed, LeaseRecord.from_lease(lease), now=self._clock())
        return self._observed

    async def _create(self) -> bool:
        now = self._wall()
        body = self._body(
            holder=self.identity,
            duration=_seconds(self.settings.lease_duration),
            acquire=now,
            renew=now,
            transitions=0,
            rv=None,
        )
        started = self._clock()
        try:
            created = await self._api.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.settings.retry_period
            )
        except ApiException as e:
            if e.status == _HTTP_CONFLICT:  # another replica created it first
                return False
            raise
        self._observed = observe(None, LeaseRecord.from_lease(created), now=started)
        log.info("lease %s/%s: created, %s leads", self.namespace, self.name, self.identity)
        return True

    def _body(
        self,
        *,
        holder: str | None,
        duration: int,
        acquire: datetime,
        renew: datetime,
        transitions: int,
        rv: str | None,
    ) -> Any:
        return client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace, resource_version=rv),
            spec=client.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=duration,
                acquire_time=acquire,
                renew_time=renew,
                lease_transitions=transitions,
            ),
        )


def _seconds(value: float) -> int:
    """leaseDurationSeconds is an integer field; round up so others never wait less than we assume."""
    return max(1, int(-(-value // 1)))


def _describe(e: BaseException) -> str:
    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
