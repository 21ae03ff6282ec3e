"""Client of the external-dns webhook provider protocol: any external-dns webhook serves ingressfed.

The protocol (external-dns ``provider/webhook``), media type
``application/external.dns.webhook+json;version=1`` in ``Accept`` and ``Content-Type``:

- ``GET /``: negotiation; answers the provider's domain filter
  ``{"include": [...], "exclude": [...], "regexInclude": "...", "regexExclude": "..."}``;
- ``GET /records``: the endpoints it holds
  (``dnsName, targets, recordType, setIdentifier, recordTTL, labels, providerSpecific``);
- ``POST /records``: ``{"create", "updateOld", "updateNew", "delete"}`` lists; 204 on success;
- ``POST /adjustendpoints``: endpoints in, the endpoints the provider would store out.

We send camelCase; answers in PascalCase (older Go servers without JSON tags) are accepted.
Changes outside the negotiated domain filter are never sent: they fail alone. 5xx answers
are retried a bounded number of times with jittered backoff; 4xx is permanent and carries
the server's message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    PermanentProviderError,
)
from ingressfed.model import ChangeAction, Changes, RecordSet, RecordType
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import Backoff, BatchLimits, apply_in_batches, retrying
from providers.errortable import ErrorTable, Rule, Scope

__all__ = ["MEDIA_TYPE", "DomainFilter", "WebhookOptions", "WebhookProvider"]

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/external.dns.webhook+json;version=1"


class Endpoint(TypedDict, total=False):
    dnsName: str
    targets: list[str]
    recordType: str
    setIdentifier: str
    recordTTL: int
    labels: dict[str, str]
    providerSpecific: list[dict[str, str]]


class WireChanges(TypedDict):
    create: list[Endpoint]
    updateOld: list[Endpoint]
    updateNew: list[Endpoint]
    delete: list[Endpoint]


class WebhookOptions(BaseModel):
    """``dns.options`` for ``provider: webhook``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    url: str = Field(default="http://localhost:8888", pattern=r"^https?://")
    timeout: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=3, ge=0, le=20)  # extra attempts after a 5xx
    backoff: float = Field(default=0.5, ge=0, le=60)
    max_batch: int = Field(default=100, alias="maxBatch", ge=1, le=10000)
    adjust_endpoints: bool = Field(default=True, alias="adjustEndpoints")
    headers: dict[str, str] = Field(default_factory=dict)


def parse_options(options: Mapping[str, Any]) -> WebhookOptions:
    try:
        return WebhookOptions.model_validate(dict(options))
    except ValidationError as e:
        raise ConfigError(
            [f"dns.options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        ) from e


def _field(obj: Mapping[str, Any], camel: str) -> Any:
    """Read ``camel`` or its PascalCase spelling (Go servers without JSON tags)."""
    if camel in obj:
        return obj[camel]
    pascal = camel[0].upper() + camel[1:]
    if pascal in obj:
        return obj[pascal]
    # Go's own spelling of the acronyms: DNSName, RecordTTL.
    return obj.get({"dnsName": "DNSName"}.get(camel, pascal))


@dataclass(frozen=True, slots=True)
class DomainFilter:
    """external-dns DomainFilter semantics: an entry matches itself and its subdomains (an entry
    with a leading dot only subdomains); regexes, when given, replace the lists."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    regex_include: str = ""
    regex_exclude: str = ""

    @classmethod
    def parse(cls, body: Any) -> DomainFilter:
        if not isinstance(body, Mapping):
            raise ValueError("negotiation answer is not a JSON object")

        def names(key: str) -> tuple[str, ...]:
            value = _field(body, key)
            if value is None:
                return ()
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of strings")
            return tuple(v.strip().rstrip(".").lower() for v in value if v.strip())

        def regex(key: str) -> str:
            value = _field(body, key) or ""
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
            if value:
                try:
                    re.compile(value)
                except re.error as e:
                    raise ValueError(f"{key} is not a valid regular expression: {e}") from e
            return value

        # "filters" is what an early version of the protocol documented.
        include = names("include") or names("filters")
        return cls(include, names("exclude"), regex("regexInclude"), regex("regexExclude"))

    def matches(self, name: str) -> bool:
        name = name.rstrip(".").lower()
        if self.regex_include or self.regex_exclude:
            if self.regex_exclude and re.search(self.regex_exclude, name):
                return False
            return not self.regex_include or re.search(self.regex_include, name) is not None
        if self.include and not any(_under(name, f) for f in self.include):
            return False
        return not any(_under(name, f) for f in self.exclude)


def _under(name: str, entry: str) -> bool:
    if entry.startswith("."):
        return name.endswith(entry)
    return name == entry or name.endswith("." + entry)


def _unquote_txt(value: str) -> str:
    """Model TXT (presentation, quoted) -> external-dns target (raw text)."""
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    if not strings:
        return value
    return "".join(re.sub(r"\\(.)", r"\1", s) for s in strings)


def _quote_txt(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_endpoint(rs: RecordSet) -> Endpoint:
    targets = [_unquote_txt(v) for v in rs.values] if rs.type is RecordType.TXT else list(rs.values)
    ep: Endpoint = {"dnsName": rs.name, "targets": targets, "recordType": rs.type.value, "recordTTL": rs.ttl}
    if rs.set_identifier is not None:
        ep["setIdentifier"] = rs.set_identifier
    return ep


def from_endpoint(obj: Any) -> RecordSet | None:
    """Endpoint JSON -> RecordSet; None for record types ingressfed does not model."""
    if not isinstance(obj, Mapping):
        raise ValueError("endpoint is not a JSON object")
    name, rtype, targets = _field(obj, "dnsName"), _field(obj, "recordType"), _field(obj, "targets")
    ttl = _field(obj, "recordTTL") or 0
    if not isinstance(name, str) or not name:
        raise ValueError("endpoint without dnsName")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ValueError(f"endpoint {name}: targets must be a list of strings")
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise ValueError(f"endpoint {name}: recordTTL must be an integer")
    try:
        t = RecordType(str(rtype))
    except ValueError:
        return None
    values = tuple(_quote_txt(v) for v in targets) if t is RecordType.TXT else tuple(targets)
    set_id = _field(obj, "setIdentifier") or None
    return RecordSet(name, t, ttl, values, set_identifier=set_id if isinstance(set_id, str) else None)


_WRONG_URL = Rule(Scope.BATCH, "is dns.options.url the webhook provider's address?")
# The external-dns webhook protocol's answers: statuses that say nothing about any one record.
ERRORS = ErrorTable(
    provider="webhook",
    codes={
        "unreachable": Rule(Scope.TRANSIENT),
        "not-json": Rule(Scope.BATCH, "is dns.options.url an external-dns webhook provider?"),
    },
    statuses={
        401: Rule(Scope.BATCH, "the webhook provider refused our credentials (dns.options.headers)"),
        403: Rule(Scope.BATCH, "the webhook provider refused our credentials (dns.options.headers)"),
        404: _WRONG_URL,
        405: _WRONG_URL,
        406: Rule(Scope.BATCH, "the webhook provider does not speak this protocol version"),
        415: Rule(Scope.BATCH, "the webhook provider does not speak this protocol version"),
    },
    default=Rule(Scope.RECORD),
)


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class WebhookProvider(BaseProvider):
    """Speaks to an external-dns webhook provider (usually a sidecar on localhost:8888)."""

    name = "webhook"

    def __init__(self, *, zone: str, options: Mapping[str, Any]) -> None:
        self.opts = parse_options(options)
        self.zone = zone.rstrip(".").lower()
        self.capabilities = Capabilities(routing=False, max_batch=self.opts.max_batch)
        self.filter: DomainFilter | None = None
        self._session: aiohttp.ClientSession | None = None
        self._backoff = Backoff(base=self.opts.backoff, cap=30.0, attempts=self.opts.retries + 1)
        self._adjusted: dict[RecordSet, RecordSet] = {}
        self.calls: dict[str, int] = {"negotiate": 0, "records": 0, "apply": 0, "adjust": 0}

    # -- HTTP ------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.opts.url.rstrip("/") + path

    async def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.opts.timeout))
        headers = {"Accept": MEDIA_TYPE, **self.opts.headers}
        data = None
        if body is not None:
            headers["Content-Type"] = MEDIA_TYPE
            data = json.dumps(body).encode()

        async def once() -> tuple[int, Any, str]:
            assert self._session is not None
            try:
                async with self._session.request(method, self._url(path), data=data, headers=headers) as resp:
                    raw = await resp.read()
                    ctype = resp.headers.get("Content-Type", "")
                    if resp.status >= 400:
                        raise _HTTPError(resp.status, _error_text(raw))
                    parsed = json.loads(raw) if raw.strip() else None
                    return resp.status, parsed, ctype
            except TimeoutError as e:
                raise ERRORS.error(
                    f"{method} {path}: no complete answer from {self.opts.url} within {self.opts.timeout:g}s "
                    "(dns.options.timeout; raise it for a slow webhook provider)",
                    code="unreachable",
                ) from e
            except aiohttp.ClientError as e:
                raise ERRORS.error(
                    f"{method} {path}: cannot reach {self.opts.url}: {e}", code="unreachable"
                ) from e
            except ValueError as e:
                raise ERRORS.error(f"{method} {path}: answer is not JSON: {e}", code="not-json") from e

        try:
            return await retrying(
                once, self._backoff, retry_on=lambda e: isinstance(e, _HTTPError) and e.status >= 500
            )
        except _HTTPError as e:
            suffix = f" (after {self._backoff.attempts} attempts)" if e.status >= 500 else ""
            raise ERRORS.error(f"{method} {path}: {e}{suffix}", status=e.status) from e

    async def negotiate(self) -> DomainFilter:
        self.calls["negotiate"] += 1
        _, body, ctype = await self._request("GET", "/")
        if ctype.replace(" ", "").lower() != MEDIA_TYPE:
            raise PermanentProviderError(
                f"GET / answered Content-Type {ctype!r}, not {MEDIA_TYPE!r}: is dns.options.url "
                "an external-dns webhook provider?",
                provider=self.name,
            )
        try:
            self.filter = DomainFilter.parse(body if body is not None else {})
        except ValueError as e:
            raise PermanentProviderError(f"GET /: bad domain filter: {e}", provider=self.name) from e
        if not self.filter.matches(self.zone) and not self.filter.include:
            log.warning("webhook domain filter excludes the zone %s", self.zone, extra={"zone": self.zone})
        return self.filter

    async def _filter(self) -> DomainFilter:
        return self.filter if self.filter is not None else await self.negotiate()

    def _in_scope(self, f: DomainFilter, name: str) -> bool:
        return (name == self.zone or name.endswith("." + self.zone)) and f.matches(name)

    # -- protocol ----------------------------------------------------------------------------------

    async def records(self) -> list[RecordSet]:
        f = await self._filter()
        self.calls["records"] += 1
        _, body, _ = await self._request("GET", "/records")
        if body is None:
            return []
        if not isinstance(body, list):
            raise PermanentProviderError(
                "GET /records: expected a JSON list of endpoints", provider=self.name
            )
        out: list[RecordSet] = []
        for obj in body:
            try:
                rs = from_endpoint(obj)
            except ValueError as e:
                raise PermanentProviderError(f"GET /records: {e}", provider=self.name) from e
            if rs is not None and self._in_scope(f, rs.name):
                out.append(rs)
        return out

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        # What the remote /adjustendpoints rewrote before is applied here too, so a plan
        # compares like with like and does not flap.
        return [self._adjusted.get(rs, rs) for rs in super().adjust(desired)]

    async def apply(self, changes: Changes) -> ApplyResult:
        if not changes:
            return ApplyResult(applied=0, failed={})
        f = await self._filter()
        outside = {c.record.name for c in changes.items if not self._in_scope(f, c.record.name)}
        inside = Changes(tuple(c for c in changes.items if c.record.name not in outside))
        result = await apply_in_batches(
            self._apply_batch, inside, BatchLimits(max_changes=self.opts.max_batch)
        )
        reason = f"{self.name}: outside the webhook provider's domain filter; not sent"
        return ApplyResult(result.applied, {**result.failed, **dict.fromkeys(outside, reason)})

    async def _apply_batch(self, changes: Changes) -> None:
        try:
            await self._post(changes)
        except PermanentProviderError as e:
            if e.batch_wide or isinstance(e, InvalidRecordError):
                raise
            # A 4xx about the content: the record at fault is found by isolation.
            only = changes.items[0].record.name if len(changes) == 1 else None
            raise InvalidRecordError(
                str(e).removeprefix(f"{self.name}: "), provider=self.name, record=only
            ) from e

    async def _post(self, changes: Changes) -> None:
        news = await self._adjust_remote([c.new for c in changes.items if c.new is not None])
        body: WireChanges = {"create": [], "updateOld": [], "updateNew": [], "delete": []}
        for c in changes.items:
            if c.action is ChangeAction.CREATE:
                assert c.new is not None
                body["create"].append(to_endpoint(news[c.new]))
            elif c.action is ChangeAction.DELETE:
                assert c.old is not None
                body["delete"].append(to_endpoint(c.old))
            else:
                assert c.old is not None and c.new is not None
                if c.old.type != c.new.type:
                    # external-dns never updates across types: delete and create instead.
                    body["delete"].append(to_endpoint(c.old))
                    body["create"].append(to_endpoint(news[c.new]))
                else:
                    body["updateOld"].append(to_endpoint(c.old))
                    body["updateNew"].append(to_endpoint(news[c.new]))
        self.calls["apply"] += 1
        await self._request("POST", "/records", body)

    async def _adjust_remote(self, sets: Sequence[RecordSet]) -> dict[RecordSet, RecordSet]:
        """Ask the webhook how it would store ``sets`` (one call per batch) and remember
        any rewrite, so that ``adjust`` applies it from then on."""
        if not self.opts.adjust_endpoints or not sets:
            return {rs: rs for rs in sets}
        self.calls["adjust"] += 1
        _, body, _ = await self._request("POST", "/adjustendpoints", [to_endpoint(rs) for rs in sets])
        if not isinstance(body, list):
            raise PermanentProviderError("POST /adjustendpoints: expected a JSON list", provider=self.name)
        got: dict[tuple[str, RecordType, str | None], RecordSet] = {}
        for obj in body:
            try:
                rs = from_endpoint(obj)
            except ValueError as e:
                raise PermanentProviderError(f"POST /adjustendpoints: {e}", provider=self.name) from e
            if rs is not None:
                got[rs.key] = rs
        out: dict[RecordSet, RecordSet] = {}
        for rs in sets:
            adjusted = got.get(rs.key)
            if adjusted is None:
                raise InvalidRecordError(
                    f"{rs.name} {rs.type}: the webhook provider's adjustendpoints dropped it",
                    provider=self.name,
                    record=rs.name,
                )
            if adjusted != rs:
                self._adjusted[rs] = adjusted
            out[rs] = adjusted
        return out

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _error_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:500] or "(empty body)"
    if isinstance(obj, Mapping):
        for key in ("message", "error", "Message", "Error"):
            if isinstance(obj.get(key), str):
                return str(obj[key])[:500]
    return text[:500]
