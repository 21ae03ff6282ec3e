"""Google Cloud DNS provider (google-cloud-dns, blocking calls run off the event loop).

Cloud DNS changes are atomic: one ``Change`` holds deletions, which must match
the *current* record sets exactly (name, type, TTL and data), and additions,
which must not collide with a set that remains. An UPDATE is therefore a
deletion of the old set plus an addition of the new one in the same Change.

When somebody else changed the zone between our read and our write, Cloud DNS
answers 409 (an addition collides) or 412/404 (a deletion no longer matches).
We then re-read the zone, rebase the batch on what is really there and retry a
bounded number of times before reporting a transient error.

Record sets are read and written as JSON resources through the library's
authenticated connection (the library cannot represent routing policies; see
:mod:`providers.clouddns_wire`). With ``routing: geolocation`` (or ``latency``,
which Cloud DNS serves the same way: nearest item to the resolver) per-cluster
sets become one ``geo`` routing policy per name and type, one item per GCP
region. Weighted shares (a Service's ``steering: weighted``) become one ``wrr``
(weighted round robin) policy per name and type in every mode, replacing the geo
policy at that Service's names (one policy per resource). Long TXT data is
written as 255-character strings.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, TypeVar

import requests
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import dns
from google.oauth2 import service_account
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from ingressfed.model import Changes, RecordSet, RecordType, Routing
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import Backoff, BatchLimits, apply_in_batches, retrying
from providers.clouddns_wire import ZoneState, change_for, gcp_location, split_txt, wrr_shares
from providers.errortable import ErrorTable, Rule, Scope

__all__ = ["CloudDNSOptions", "CloudDNSProvider"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_NAME_VALUED = (RecordType.CNAME, RecordType.NS)
_SCOPE = "https://www.googleapis.com/auth/ndev.clouddns.readwrite"


class CloudDNSOptions(BaseModel):
    """``dns.options`` for ``provider: clouddns``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    project: str = Field(min_length=1)
    managed_zone: str | None = Field(default=None, alias="managedZone", min_length=1)
    dns_name: str | None = Field(default=None, alias="dnsName", min_length=1)
    endpoint: str | None = None
    anonymous: bool = False
    credentials_file: str | None = Field(default=None, alias="credentialsFile")
    conflict_retries: int = Field(default=3, alias="conflictRetries", ge=0, le=20)
    transient_retries: int = Field(default=3, alias="transientRetries", ge=0, le=20)
    backoff: float = Field(default=0.5, ge=0.0, le=60.0)
    wait_for_change: bool = Field(default=False, alias="waitForChange")
    change_timeout: float = Field(default=120.0, alias="changeTimeout", gt=0)
    max_batch: int = Field(default=1000, alias="maxBatch", ge=1, le=10000)
    routing: Literal["none", "latency", "geolocation"] = "none"


def parse_options(options: Mapping[str, Any]) -> CloudDNSOptions:
    # ``zone`` is accepted as a short alias of ``managedZone``.
    raw = dict(options)
    if "zone" in raw:
        if "managedZone" in raw:
            raise ConfigError(["dns.options: give either zone or managedZone, not both"])
        raw["managedZone"] = raw.pop("zone")
    try:
        return CloudDNSOptions.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(
            [f"dns.options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        ) from e


_ROLES = (
    "the identity needs roles/dns.admin on the project, or dns.changes.create + dns.resourceRecordSets.list"
)
ERRORS = ErrorTable(
    provider="clouddns",
    codes={
        "unreachable": Rule(Scope.TRANSIENT),
        "credentials": Rule(Scope.BATCH, "check dns.options.credentialsFile or the workload identity"),
        "unexpected": Rule(Scope.BATCH),
    },
    statuses={
        409: Rule(Scope.TRANSIENT),  # concurrent change: re-read and retry
        412: Rule(Scope.TRANSIENT),
        401: Rule(Scope.BATCH, _ROLES),
        403: Rule(Scope.BATCH, _ROLES),
        404: Rule(Scope.BATCH, "the managed zone is gone: check dns.options.managedZone"),
    },
    default=Rule(Scope.RECORD, error=InvalidRecordError),
)


class _ConcurrentEdit(TransientProviderError):
    """The zone no longer matches what the batch was planned against (409/412/404 on a Change)."""


class CloudDNSProvider(BaseProvider):
    """One Cloud DNS managed zone, found by name (``managedZone``) or by DNS name."""

    name = "clouddns"

    def __init__(self, *, zone: str, options: Mapping[str, Any]) -> None:
        self.opts = parse_options(options)
        self.zone = (self.opts.dns_name or zone).rstrip(".").lower()
        if not self.zone:
            raise ConfigError(["dns.options.dnsName: the zone's DNS name is required (or federation.zone)"])
        self.geo = self.opts.routing != "none"
        # Weighted shares (a Service's steering: weighted) become a wrr policy in every mode.
        self.capabilities = Capabilities(routing=self.geo, weighted=True, max_batch=self.opts.max_batch)
        self._state: ZoneState | None = None  # the zone as last read and written
        self._client: Any = None
        self._zone_handle: Any = None
        self._lock = asyncio.Lock()
        self._backoff = Backoff(base=self.opts.backoff, cap=30.0, attempts=self.opts.transient_retries + 1)
        self.calls: dict[str, int] = {"list": 0, "change": 0}

    # -- client and zone -------------------------------------------------------------------------

    def _make_client(self) -> Any:
        kwargs: dict[str, Any] = {"project": self.opts.project}
        if self.opts.endpoint:
            kwargs["client_options"] = {"api_endpoint": self.opts.endpoint.rstrip("/")}
        if self.opts.anonymous:
            kwargs["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
        elif self.opts.credentials_file:
            kwargs["credentials"] = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                self.opts.credentials_file, scopes=[_SCOPE]
            )
        return dns.Client(**kwargs)

    def _find_zone(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        want = self.zone + "."
        if self.opts.managed_zone:
            mz = client.zone(self.opts.managed_zone)
            mz.reload()
            if (mz.dns_name or "").lower() != want:
                raise PermanentProviderError(
                    f"managed zone {self.opts.managed_zone!r} serves {mz.dns_name!r}, not {want!r}: "
                    "fix dns.options.managedZone or dns.options.dnsName",
                    provider=self.name,
                    batch_wide=True,
                )
            return mz
        found = [z for z in client.list_zones() if (z.dns_name or "").lower() == want]
        if not found:
            raise PermanentProviderError(
                f"no managed zone with DNS name {want!r} in project {self.opts.project!r}: "
                "create it or set dns.options.managedZone",
                provider=self.name,
                batch_wide=True,
            )
        if len(found) > 1:
            names = ", ".join(sorted(z.name for z in found))
            raise PermanentProviderError(
                f"several managed zones serve {want!r} ({names}): set dns.options.managedZone",
                provider=self.name,
                batch_wide=True,
            )
        return found[0]

    async def _zone(self) -> Any:
        if self._zone_handle is None:
            self._zone_handle = await self._call(self._find_zone)
        return self._zone_handle

    async def _call(self, fn: Callable[[], _T]) -> _T:
        """Run one blocking SDK call in a thread, retrying 429/5xx with jittered backoff."""

        async def once() -> _T:
            try:
                return await asyncio.to_thread(fn)
            except ProviderError:
                raise
            except Exception as e:
                raise self._wrap(e) from e

        def throttled(err: BaseException) -> bool:
            status = _status(err.__cause__) if err.__cause__ is not None else None
            return status is not None and (status == 429 or status >= 500)

        return await retrying(once, self._backoff, retry_on=throttled)

    def _wrap(self, e: BaseException) -> ProviderError:
        if isinstance(e, ProviderError):
            return e
        status = _status(e)
        if status is not None:
            err = ERRORS.error(f"HTTP {status}: {_message(e)}", status=status)
        elif isinstance(e, requests.RequestException):
            err = ERRORS.error(f"cannot reach Cloud DNS: {e}", code="unreachable")
        elif isinstance(e, GoogleAuthError):
            err = ERRORS.error(f"credentials: {e}", code="credentials")
        else:
            err = ERRORS.error(f"unexpected error: {e!r}", code="unexpected")
        if status in (401, 403):
            err.args = (f"{err.args[0]} (project {self.opts.project!r})",)
        return err

    # -- protocol ---------------------------------------------------------------------------------

    async def records(self) -> list[RecordSet]:
        async with self._lock:
            return (await self._read()).records()

    async def _read(self) -> ZoneState:
        mz = await self._zone()
        connection = mz._client._connection
        path = f"{mz.path}/rrsets"

        def list_all() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            params: dict[str, str] = {}
            while True:  # follows nextPageToken page by page
                page = connection.api_request(method="GET", path=path, query_params=dict(params))
                out.extend(page.get("rrsets", []))
                token = page.get("nextPageToken")
                if not token:
                    return out
                params["pageToken"] = token

        self.calls["list"] += 1
        state = ZoneState.of(await self._call(list_all), geo=self.geo)
        for (name, rtype), why in sorted(state.foreign.items()):
            log.debug("clouddns: %s %s has a %s; read as foreign", rtype, name, why, extra={"record": name})
        self._state = state
        return state

    async def apply(self, changes: Changes) -> ApplyResult:
        if not changes:
            return ApplyResult(applied=0, failed={})
        async with self._lock:
            return await apply_in_batches(
                self._apply_batch, changes, BatchLimits(max_changes=self.capabilities.max_batch)
            )

    async def _apply_batch(self, changes: Changes) -> None:
        """Apply one batch as one atomic Change; re-read and rebase on concurrent edits."""
        for attempt in range(self.opts.conflict_retries + 1):
            state = self._state if self._state is not None else await self._read()
            deletions, additions = change_for(changes, state, provider=self.name)
            if not deletions and not additions:
                return
            try:
                await self._submit(deletions, additions)
            except _ConcurrentEdit as e:
                self._state = None
                log.info(
                    "clouddns: zone changed under us (%s); re-reading, attempt %d",
                    e,
                    attempt + 1,
                    extra={"zone": self.zone},
                )
                continue
            state.applied(deletions, additions)
            return
        raise TransientProviderError(
            f"zone kept changing during {self.opts.conflict_retries + 1} attempts; retrying next cycle",
            provider=self.name,
        )

    async def _submit(self, deletions: list[dict[str, Any]], additions: list[dict[str, Any]]) -> None:
        mz = await self._zone()
        connection = mz._client._connection

        def create() -> dict[str, Any]:
            body = {"kind": "dns#change", "additions": additions, "deletions": deletions}
            answer: dict[str, Any] = connection.api_request(
                method="POST", path=f"{mz.path}/changes", data=body
            )
            return answer

        self.calls["change"] += 1
        try:
            # Never retried blindly at this level: a 5xx after the server applied the
            # Change would make the retry fail with 409/412, which the caller rebases.
            ch = await asyncio.to_thread(create)
        except Exception as e:
            if _status(e) in (404, 409, 412):
                raise _ConcurrentEdit(f"HTTP {_status(e)}: {_message(e)}", provider=self.name) from e
            err = self._wrap(e)
            if isinstance(err, InvalidRecordError):
                err.record = _record_at_fault(_message(e), deletions, additions)
            raise err from e
        if self.opts.wait_for_change:
            await self._wait_done(mz, ch)

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        """Sets in the form Cloud DNS stores and ``records()`` reads back: TXT data in
        255-character strings; routed sets as one geo item per GCP region; weighted shares as
        one wrr item each (``clouddns_wire.wrr_shares``)."""
        out: list[RecordSet] = []
        routed: dict[tuple[str, RecordType], list[RecordSet]] = {}
        weighted: dict[tuple[str, RecordType], list[RecordSet]] = {}
        plain: list[RecordSet] = []
        for given in desired:
            rs = given
            if rs.type is RecordType.TXT:
                rs = replace(rs, values=tuple(split_txt(v) for v in rs.values))
            if rs.set_identifier is not None and rs.routing is not None and rs.routing.weighted:
                weighted.setdefault((rs.name, rs.type), []).append(rs)
            elif rs.set_identifier is not None and self.geo:
                routed.setdefault((rs.name, rs.type), []).append(rs)
            else:
                plain.append(rs)
        out = super().adjust(plain)
        for (name, rtype), sets in routed.items():
            out.extend(self._geo_items(name, rtype, sets))
        for (name, rtype), sets in weighted.items():
            ttl = max(min(s.ttl for s in sets), self.capabilities.min_ttl)
            shares = [(tuple(s.values), s.routing.weight if s.routing else 0) for s in sets]
            out.extend(wrr_shares(name, rtype, ttl, shares))
        return out

    def _geo_items(self, name: str, rtype: RecordType, sets: list[RecordSet]) -> list[RecordSet]:
        by_location: dict[str, list[RecordSet]] = {}
        ttl = min(s.ttl for s in sets)
        for rs in sets:
            assert rs.routing is not None
            loc = gcp_location(rs.routing)
            if loc is None:
                log.warning(
                    "clouddns: cannot place cluster %s (region %r) in a GCP region for geo routing; "
                    "publishing %s %s unrouted",
                    rs.routing.cluster,
                    rs.routing.region,
                    rtype.value,
                    name,
                    extra={"record": name, "cluster": rs.routing.cluster},
                )
                return [RecordSet(name, rtype, ttl, tuple(v for s in sets for v in s.values))]
            by_location.setdefault(loc, []).append(rs)
        return [
            RecordSet(name, rtype, ttl, tuple(v for m in members for v in m.values), loc, Routing(loc, loc))
            for loc, members in sorted(by_location.items())
        ]

    async def _wait_done(self, mz: Any, ch: dict[str, Any]) -> None:
        deadline = time.monotonic() + self.opts.change_timeout
        delay = 0.2
        connection = mz._client._connection
        path = f"{mz.path}/changes/{ch.get('id')}"
        while ch.get("status") != "done":
            if time.monotonic() > deadline:
                raise TransientProviderError(
                    f"change {ch.get('id')} still {ch.get('status')!r} after {self.opts.change_timeout}s",
                    provider=self.name,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            ch = await self._call(lambda: connection.api_request(method="GET", path=path))

    async def close(self) -> None:
        self._zone_handle = None
        client, self._client = self._client, None
        http = getattr(client, "_http_internal", None)
        if http is not None:
            await asyncio.to_thread(http.close)


_FAULT = re.compile(r"entity\.change\.(additions|deletions)\[(\d+)\]")


def _record_at_fault(
    message: str, deletions: Sequence[Mapping[str, Any]], additions: Sequence[Mapping[str, Any]]
) -> str | None:
    """Cloud DNS names the offending entry as ``entity.change.additions[i]``."""
    m = _FAULT.search(message)
    if m is None:
        return None
    seq = additions if m.group(1) == "additions" else deletions
    i = int(m.group(2))
    return str(seq[i]["name"]).rstrip(".").lower() if i < len(seq) else None


def _status(e: BaseException) -> int | None:
    code = getattr(e, "code", None)
    return code if isinstance(code, int) else None


def _message(e: BaseException) -> str:
    msg = getattr(e, "message", None)
    return str(msg) if msg else str(e)
