"""Amazon Route53 (boto3; every call off the event loop in a worker thread).

Zone: ``hostedZoneId``, or found by the provider's zone name (``zoneType``
public/private picks one when both exist). Credentials: boto3's standard chain
(environment, shared profile via ``profile``, web identity / IRSA, instance
role). ``endpointUrl`` points it elsewhere (moto in tests).

What is sent is only what real Route53 accepts, checked here before sending
(moto, used in tests, is laxer): names, values, TTLs; one routing policy per
name and type; latency ``Region`` from the real list (botocore's service
model); geolocation continent/country codes from the real sets; no CREATE of a
set known to exist. Requests stay within Route53's limits (1000
ResourceRecord elements and 32,000 value characters, an UPSERT counting twice;
``batchChangeSize`` changes). Throttling and PriorRequestNotComplete are
retried with jittered backoff; a batch refused for one record is split so the
others apply and the bad one is reported.

Routing (``routing: latency | geolocation``): per-cluster sets (the core's
``set_identifier`` + ``Routing``) become latency records (Region: the
cluster's region when it is an AWS region, else ``latencyRegions`` mapping,
else the AWS region nearest the cluster's location) or geolocation records
(``geolocation`` mapping per cluster, else the continent of its region) plus a
default (``*``) set with every target, so no client goes unanswered. Clusters
landing on the same region or location share one set. ``healthCheckIds`` (per
cluster) or ``healthCheck`` (create an HTTP check per routed set's first
address) attach Route53 health checks.

Weighted shares (``Routing.weighted``: a Service's ``steering: weighted``)
become weighted records (SetIdentifier = cluster, Weight) in every routing
mode: Route53 allows one routing policy per name and type, and the split is
the Service owner's explicit policy, so at that Service's names it replaces
the federation's latency or geolocation records (other names keep them).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import boto3
import botocore.session
import iso3166
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from geo.distance import great_circle_km
from geo.regions import region_location
from ingressfed.errors import (
    ConfigError,
    InvalidRecordError,
    PermanentProviderError,
    ProviderError,
    RecordConflictError,
    RecordNotFoundError,
    TransientProviderError,
)
from ingressfed.model import Change, ChangeAction, Changes, RecordKey, RecordSet, RecordType, Routing
from providers.base import ApplyResult, BaseProvider, Capabilities
from providers.batching import Backoff, BatchLimits, Cost, apply_in_batches, group_key, groups, retrying
from providers.errortable import ErrorTable, Rule, Scope
from providers.inmemory import record_problem

if TYPE_CHECKING:
    from mypy_boto3_route53.client import Route53Client
    from mypy_boto3_route53.literals import ResourceRecordSetRegionType
    from mypy_boto3_route53.type_defs import ChangeTypeDef, ResourceRecordSetTypeDef

__all__ = [
    "CONTINENTS",
    "COUNTRIES",
    "LATENCY_REGIONS",
    "Route53Options",
    "Route53Provider",
    "RoutingMode",
    "change_cost",
    "decode_name",
    "from_rrset",
    "routed_problem",
    "to_changes",
    "to_rrset",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _latency_regions() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("route53")
    return frozenset(model.shape_for("ResourceRecordSetRegion").metadata["enum"])


# The Region values Route53 accepts on latency records, as the SDK's service model lists them.
LATENCY_REGIONS: frozenset[str] = _latency_regions()
CONTINENTS: frozenset[str] = frozenset({"AF", "AN", "AS", "EU", "OC", "NA", "SA"})
# ISO 3166-1 alpha-2, plus "*": Route53's default location.
COUNTRIES: frozenset[str] = frozenset(iso3166.countries_by_alpha2) | {"*"}

MAX_RECORDS = 1000  # ResourceRecord elements per request, an UPSERT counting twice
MAX_CHARS = 32000  # characters of Value elements per request, an UPSERT counting twice
MAX_VALUE = 4000  # characters per Value element
MAX_SET_IDENTIFIER = 128
MAX_WEIGHT = 255  # Route53's Weight is 0..255
MAX_WEIGHTED_SETS = 100  # weighted sets per name and type
DEFAULT_SET = "default"
HEALTH_CHECK_TAG = "ingressfed/zone"  # on health checks ingressfed created: the zone they serve

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_NAME_IN_MESSAGE = re.compile(r"(?:name='|Name=)([^',\]\s]+)")
_OCTAL = re.compile(r"\\(\d{3})")

# Cloud region name prefixes -> continent, for geolocation without an explicit mapping.
_CONTINENT_BY_PREFIX = (
    ("northamerica-", "NA"),
    ("southamerica-", "SA"),
    ("australia-", "OC"),
    ("europe-", "EU"),
    ("africa-", "AF"),
    ("asia-", "AS"),
    ("us-", "NA"),
    ("ca-", "NA"),
    ("mx-", "NA"),
    ("sa-", "SA"),
    ("eu-", "EU"),
    ("af-", "AF"),
    ("ap-", "AS"),
    ("me-", "AS"),
    ("il-", "AS"),
)
_CONTINENT_EXCEPTIONS = {"ap-southeast-2": "OC", "ap-southeast-4": "OC", "ap-southeast-6": "OC"}


class RoutingMode(StrEnum):
    NONE = "none"
    LATENCY = "latency"
    GEOLOCATION = "geolocation"


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class GeoTarget(_Options):
    continent: str | None = None
    country: str | None = None


class HealthCheckOptions(_Options):
    protocol: Literal["HTTP", "HTTPS", "TCP"] = "HTTP"
    port: int = Field(80, ge=1, le=65535)
    path: str = "/healthz"
    request_interval: Literal[10, 30] = 30
    failure_threshold: int = Field(3, ge=1, le=10)


class Route53Options(_Options):
    """``dns.options`` for provider route53 (camelCase keys)."""

    hosted_zone_id: str | None = None
    zone_type: Literal["public", "private", "any"] = "any"
    endpoint_url: str | None = None
    region: str = "us-east-1"  # the API's signing region; Route53 is global
    profile: str | None = None
    routing: RoutingMode = RoutingMode.NONE
    latency_regions: dict[str, str] = Field(default_factory=dict)  # cluster region -> AWS region
    geolocation: dict[str, GeoTarget] = Field(default_factory=dict)  # cluster -> continent/country
    health_check_ids: dict[str, str] = Field(default_factory=dict)  # cluster -> existing check id
    health_check: HealthCheckOptions | None = None
    batch_change_size: int = Field(1000, ge=1, le=1000)
    max_retries: int = Field(5, ge=0, le=20)
    retry_base_delay: float = Field(0.2, ge=0, le=60)
    retry_max_delay: float = Field(10.0, ge=0, le=300)
    list_page_size: int = Field(300, ge=1, le=300)


def _parse_options(options: Mapping[str, Any]) -> Route53Options:
    try:
        parsed = Route53Options.model_validate(dict(options))
    except ValidationError as err:
        raise ConfigError(
            [
                "dns.options." + ".".join(str(p) for p in e["loc"]) + f": {e['msg']}"
                for e in err.errors(include_url=False)
            ]
        ) from err
    problems: list[str] = []
    for src, region in parsed.latency_regions.items():
        if region not in LATENCY_REGIONS:
            problems.append(
                f"dns.options.latencyRegions.{src}: {region!r} is not a Route53 latency region "
                f"(one of {', '.join(sorted(LATENCY_REGIONS))})"
            )
    for cluster, target in parsed.geolocation.items():
        problem = _geo_problem(target.continent, target.country)
        if problem:
            problems.append(f"dns.options.geolocation.{cluster}: {problem}")
    if problems:
        raise ConfigError(problems)
    return parsed


# --- mapping between RecordSet and Route53 ---------------------------------------------------


def decode_name(name: str) -> str:
    """Route53's presentation of a name (``\\052.example.com.``) -> ours (``*.example.com``)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), name).rstrip(".").lower()


def _fqdn(name: str) -> str:
    return name + "."


def _value_out(rs: RecordSet, value: str) -> str:
    return _fqdn(value) if rs.type is RecordType.CNAME else value


def to_rrset(rs: RecordSet, *, health_check_id: str | None = None) -> ResourceRecordSetTypeDef:
    raw: ResourceRecordSetTypeDef = {
        "Name": _fqdn(rs.name),
        "Type": rs.type.value,
        "TTL": rs.ttl,
        "ResourceRecords": [{"Value": _value_out(rs, v)} for v in rs.values],
    }
    if rs.set_identifier is not None and rs.routing is not None:
        raw["SetIdentifier"] = rs.set_identifier
        if rs.routing.weighted:
            raw["Weight"] = rs.routing.weight
        elif rs.routing.continent or rs.routing.country:
            geo: dict[str, str] = {}
            if rs.routing.continent:
                geo["ContinentCode"] = rs.routing.continent
            if rs.routing.country:
                geo["CountryCode"] = rs.routing.country
            raw["GeoLocation"] = geo  # type: ignore[typeddict-item]
        else:
            raw["Region"] = cast("ResourceRecordSetRegionType", rs.routing.region)
        if health_check_id:
            raw["HealthCheckId"] = health_check_id
    return raw


def from_rrset(raw: Mapping[str, Any]) -> RecordSet | None:
    """Our view of one Route53 set; None for what we never write (alias sets, other types)."""
    try:
        rtype = RecordType(raw["Type"])
    except ValueError:
        return None
    if "ResourceRecords" not in raw:  # alias sets carry AliasTarget instead
        return None
    values = tuple(str(r["Value"]) for r in raw["ResourceRecords"])
    ident = raw.get("SetIdentifier")
    routing = None
    if ident is not None:
        geo = raw.get("GeoLocation") or {}
        routing = Routing(
            cluster=str(ident),
            region=str(raw.get("Region", "")),
            weight=int(raw["Weight"]) if "Weight" in raw else 100,
            continent=geo.get("ContinentCode"),
            country=geo.get("CountryCode"),
            weighted="Weight" in raw,
        )
    return RecordSet(decode_name(str(raw["Name"])), rtype, int(raw.get("TTL", 0)), values, ident, routing)


def to_changes(
    change: Change,
    *,
    health: Callable[[RecordSet], str | None] = lambda rs: None,
    existing_health: Callable[[RecordSet], str | None] = lambda rs: None,
) -> list[ChangeTypeDef]:
    """One of our changes as Route53 changes: an UPDATE within one type is an UPSERT,
    a type change a DELETE of the old set and a CREATE of the new (same batch).

    ``health`` gives the health check to attach to a set written; ``existing_health``
    the one a set being deleted carries now (a DELETE must match the set exactly)."""

    def write(action: Literal["CREATE", "UPSERT"], rs: RecordSet) -> ChangeTypeDef:
        return {"Action": action, "ResourceRecordSet": to_rrset(rs, health_check_id=health(rs))}

    def delete(rs: RecordSet) -> ChangeTypeDef:
        return {"Action": "DELETE", "ResourceRecordSet": to_rrset(rs, health_check_id=existing_health(rs))}

    if change.action is ChangeAction.CREATE:
        assert change.new is not None
        return [write("CREATE", change.new)]
    if change.action is ChangeAction.DELETE:
        assert change.old is not None
        return [delete(change.old)]
    assert change.old is not None and change.new is not None
    if change.old.key == change.new.key:
        return [write("UPSERT", change.new)]
    return [delete(change.old), write("CREATE", change.new)]


def _rs_cost(rs: RecordSet, weight: int) -> Cost:
    values = [_value_out(rs, v) for v in rs.values]
    return Cost(changes=0, values=weight * len(values), chars=weight * sum(len(v) for v in values))


def change_cost(change: Change) -> Cost:
    """What a change weighs against Route53's request limits (an UPSERT counts twice)."""
    if change.action is ChangeAction.CREATE:
        assert change.new is not None
        return Cost(changes=1) + _rs_cost(change.new, 1)
    if change.action is ChangeAction.DELETE:
        assert change.old is not None
        return Cost(changes=1) + _rs_cost(change.old, 1)
    assert change.old is not None and change.new is not None
    if change.old.key == change.new.key:
        return Cost(changes=1) + _rs_cost(change.new, 2)
    return Cost(changes=2) + _rs_cost(change.old, 1) + _rs_cost(change.new, 1)


# --- validation --------------------------------------------------------------------------------


def _geo_problem(continent: str | None, country: str | None) -> str | None:
    if (continent is None) == (country is None):
        return "give exactly one of continent or country"
    if continent is not None and continent not in CONTINENTS:
        return f"continent {continent!r} is not a Route53 continent code ({', '.join(sorted(CONTINENTS))})"
    if country is not None and country not in COUNTRIES:
        return f"country {country!r} is not an ISO 3166-1 alpha-2 code Route53 accepts (or '*')"
    return None


def routed_problem(rs: RecordSet, mode: RoutingMode) -> str | None:
    """Why Route53 would refuse the routing of ``rs`` under ``mode``, or None. Pure."""
    if rs.set_identifier is None:
        return None
    routing = rs.routing
    if routing is None:
        return "a set identifier needs routing data"
    if not 1 <= len(rs.set_identifier) <= MAX_SET_IDENTIFIER:
        return f"set identifier must be 1..{MAX_SET_IDENTIFIER} characters"
    if routing.weighted:  # in every mode (see the module doc)
        if routing.region or routing.continent or routing.country:
            return "a weighted set cannot carry a latency Region or a geolocation"
        if not 0 <= routing.weight <= MAX_WEIGHT:
            return f"Weight {routing.weight} is outside Route53's 0..{MAX_WEIGHT}"
        return None
    if mode is RoutingMode.NONE:
        return "routed sets need dns.options.routing: latency or geolocation"
    if mode is RoutingMode.LATENCY:
        if routing.continent or routing.country:
            return "a latency set cannot carry a geolocation"
        if routing.region not in LATENCY_REGIONS:
            return f"Region {routing.region!r} is not a Route53 latency region"
        return None
    if routing.region:
        return "a geolocation set cannot carry a latency Region"
    return _geo_problem(routing.continent, routing.country)


def _kind(rs: RecordSet) -> str:
    if rs.routing is None:
        return "simple"
    if rs.routing.weighted:
        return "weighted"
    return "geolocation" if (rs.routing.continent or rs.routing.country) else "latency"


def _geo_key(rs: RecordSet) -> tuple[str | None, str | None] | None:
    if rs.routing is None or _kind(rs) != "geolocation":
        return None
    return (rs.routing.continent, rs.routing.country)


def _state_problem(sets: Iterable[RecordSet]) -> str | None:
    """Route53's rules for the sets of one name and type: one routing policy, distinct locations."""
    sets = list(sets)
    kinds = {_kind(rs) for rs in sets}
    if len(kinds) > 1:
        return f"mixes routing policies ({', '.join(sorted(kinds))}) at one name and type"
    if kinds == {"simple"} and len(sets) > 1:
        return "more than one simple set at one name and type"
    if kinds == {"weighted"} and len(sets) > MAX_WEIGHTED_SETS:
        return f"more than {MAX_WEIGHTED_SETS} weighted sets at one name and type"
    if kinds == {"weighted"} and len({rs.ttl for rs in sets}) > 1:
        # Route53 would silently give every set of the group the TTL written last.
        return "weighted sets at one name and type with different TTLs"
    geo = [_geo_key(rs) for rs in sets if _geo_key(rs) is not None]
    if len(geo) != len(set(geo)):
        return "two geolocation sets for the same location"
    return None


# --- the provider ------------------------------------------------------------------------------


_PERMISSIONS = (
    "AWS refused the credentials or their permissions: the identity needs route53:ListHostedZonesByName, "
    "route53:ListResourceRecordSets and route53:ChangeResourceRecordSets on the zone "
    "(and route53:*HealthCheck* with dns.options.healthCheck)"
)
_BATCH = Rule(Scope.BATCH, _PERMISSIONS)
ERRORS = ErrorTable(
    provider="route53",
    codes={
        **dict.fromkeys(_TRANSIENT_CODES, Rule(Scope.TRANSIENT)),
        **dict.fromkeys(
            (
                "AccessDenied",
                "AccessDeniedException",
                "InvalidClientTokenId",
                "SignatureDoesNotMatch",
                "IncompleteSignature",
                "MissingAuthenticationToken",
                "ExpiredToken",
                "ExpiredTokenException",
                "UnrecognizedClientException",
                "InvalidSignatureException",
                "OptInRequired",
            ),
            _BATCH,
        ),
        "NoSuchHostedZone": Rule(Scope.BATCH, "check dns.options.hostedZoneId"),
        "NoSuchHealthCheck": Rule(Scope.RECORD),
        "InvalidChangeBatch": Rule(Scope.RECORD, error=InvalidRecordError),
        "InvalidInput": Rule(Scope.RECORD, error=InvalidRecordError),
    },
    statuses={401: _BATCH, 403: _BATCH},
)


def _error(err: ClientError, provider: str, operation: str = "") -> ProviderError:
    error = err.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    match = _NAME_IN_MESSAGE.search(message)
    record = decode_name(match.group(1)) if match else None
    # The status always: an auth failure may come with neither code nor message.
    text = f"{operation + ': ' if operation else ''}HTTP {status} {code or '(no error code)'}: "
    text += message or "(no error message)"
    result = ERRORS.error(text, code=code, status=status or None, record=record)
    if isinstance(result, InvalidRecordError):
        lowered = message.lower()
        if "already exists" in lowered:
            return RecordConflictError(
                str(result).removeprefix(f"{provider}: "), provider=provider, record=record
            )
        if "not found" in lowered:
            return RecordNotFoundError(
                str(result).removeprefix(f"{provider}: "), provider=provider, record=record
            )
    return result


class Route53Provider(BaseProvider):
    """Entry point ``route53``. Options: see ``Route53Options`` (camelCase in config)."""

    name = "route53"

    def __init__(self, *, zone: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = _parse_options(options or {})
        self.zone = zone.rstrip(".").lower()
        self.mode = self.options.routing
        self.capabilities = Capabilities(
            routing=self.mode is not RoutingMode.NONE,
            weighted=True,
            max_batch=self.options.batch_change_size,
        )
        self.limits = BatchLimits(
            max_changes=self.options.batch_change_size, max_values=MAX_RECORDS, max_chars=MAX_CHARS
        )
        self.backoff = Backoff(
            base=self.options.retry_base_delay,
            cap=self.options.retry_max_delay,
            attempts=self.options.max_retries + 1,
        )
        session = boto3.session.Session(profile_name=self.options.profile, region_name=self.options.region)
        # Retries are ours (jittered, counted, typed); botocore makes exactly one attempt per call.
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30
        )
        self.client: Route53Client = session.client(
            "route53", endpoint_url=self.options.endpoint_url, config=config
        )
        self.calls: Counter[str] = Counter()
        self._zone_id: str | None = self.options.hosted_zone_id
        self._known: dict[RecordKey, RecordSet] | None = None  # the zone as last read and written
        self._health_ids: dict[RecordKey, str] = {}
        self._created_checks: dict[str, str] = {}  # address -> health check id we created

    # --- calls -----------------------------------------------------------------------------

    async def _call(self, operation: str, fn: Callable[[], T]) -> T:
        async def once() -> T:
            self.calls[operation] += 1
            try:
                return await asyncio.to_thread(fn)
            except ClientError as err:
                raise _error(err, self.name, operation) from err
            except NoCredentialsError as err:
                raise PermanentProviderError(
                    f"no AWS credentials found ({err}); configure the environment, a profile "
                    "(dns.options.profile) or web identity (IRSA)",
                    provider=self.name,
                    batch_wide=True,
                ) from err
            except BotoCoreError as err:  # connection errors, timeouts
                raise TransientProviderError(f"{operation}: {err}", provider=self.name) from err

        return await retrying(once, self.backoff, retry_on=lambda e: isinstance(e, TransientProviderError))

    async def zone_id(self) -> str:
        if self._zone_id is None:
            self._zone_id = await self._find_zone()
        return self._zone_id

    async def _find_zone(self) -> str:
        wanted = _fqdn(self.zone)
        found: list[tuple[str, bool]] = []
        kwargs: dict[str, str] = {"DNSName": wanted}
        while True:
            page = await self._call(
                "ListHostedZonesByName", partial(self.client.list_hosted_zones_by_name, **kwargs)
            )
            for hz in page["HostedZones"]:
                if hz["Name"].lower() == wanted:
                    found.append((hz["Id"].rsplit("/", 1)[-1], bool(hz.get("Config", {}).get("PrivateZone"))))
            last = page["HostedZones"][-1]["Name"].lower() if page["HostedZones"] else wanted
            if not page.get("IsTruncated") or last != wanted:
                break
            kwargs = {"DNSName": page["NextDNSName"], "HostedZoneId": page["NextHostedZoneId"]}
        zone_type = self.options.zone_type
        if zone_type != "any":
            found = [f for f in found if f[1] is (zone_type == "private")]
        if not found:
            raise PermanentProviderError(
                f"no {'' if zone_type == 'any' else zone_type + ' '}hosted zone named {self.zone}; create it "
                "or set dns.options.hostedZoneId",
                provider=self.name,
                batch_wide=True,
            )
        if len(found) > 1:
            raise PermanentProviderError(
                f"{len(found)} hosted zones are named {self.zone} ({', '.join(f[0] for f in found)}); "
                "set dns.options.zoneType (public/private) or dns.options.hostedZoneId",
                provider=self.name,
                batch_wide=True,
            )
        return found[0][0]

    # --- Provider --------------------------------------------------------------------------

    async def records(self) -> list[RecordSet]:
        zone_id = await self.zone_id()
        out: list[RecordSet] = []
        health: dict[RecordKey, str] = {}
        seen: set[RecordKey] = set()
        kwargs: dict[str, Any] = {"HostedZoneId": zone_id, "MaxItems": str(self.options.list_page_size)}
        while True:
            page = await self._call(
                "ListResourceRecordSets", partial(self.client.list_resource_record_sets, **kwargs)
            )
            for raw in page["ResourceRecordSets"]:
                rs = from_rrset(cast(Mapping[str, Any], raw))
                if rs is None or rs.key in seen:
                    # A page boundary inside one name and type may repeat sets where the
                    # endpoint ignores StartRecordIdentifier (moto does); keep the first.
                    continue
                seen.add(rs.key)
                out.append(rs)
                if "HealthCheckId" in raw:
                    health[rs.key] = raw["HealthCheckId"]
            if not page.get("IsTruncated"):
                break
            kwargs["StartRecordName"] = page["NextRecordName"]
            kwargs["StartRecordType"] = page["NextRecordType"]
            if "NextRecordIdentifier" in page:
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
            else:
                kwargs.pop("StartRecordIdentifier", None)
        self._known = {rs.key: rs for rs in out}
        self._health_ids = health
        return out

    async def apply(self, changes: Changes) -> ApplyResult:
        if not changes:
            return ApplyResult(applied=0, failed={})
        refused = self._refused(changes)
        keep = Changes(tuple(c for c in changes.items if group_key(c) not in refused))
        failed: dict[str, str] = {}
        for c in changes.items:
            if group_key(c) in refused:
                failed[c.record.name] = refused[group_key(c)]
        for name, reason in sorted(refused.items()):
            log.warning("route53: not sending changes for %s: %s", name, reason, extra={"record": name})
        if self.options.health_check is not None:
            await self._ensure_health_checks(keep)
        result = await apply_in_batches(self._send, keep, self.limits, cost=change_cost)
        if self.options.health_check is not None and result.applied:
            await self._collect_health_checks()
        return ApplyResult(applied=result.applied, failed={**failed, **result.failed})

    def _refused(self, changes: Changes) -> dict[str, str]:
        """Groups Route53 would refuse, by group name -> reason, found without a call."""
        refused: dict[str, str] = {}
        state = dict(self._known) if self._known is not None else None
        for group in groups(changes):
            key = group_key(group[0])
            staged = dict(state) if state is not None else None
            problem: str | None = None
            for change in group:
                problem = self._change_problem(change, staged)
                if problem:
                    break
            if problem is None and staged is not None:
                touched = {(c.record.name, c.record.type) for c in group} | {
                    (c.old.name, c.old.type) for c in group if c.old is not None
                }
                for name, rtype in sorted(touched):
                    problem = _state_problem(
                        rs for rs in staged.values() if rs.name == name and rs.type is rtype
                    )
                    if problem:
                        problem = f"{rtype} {name}: {problem}"
                        break
            if problem:
                refused[key] = problem
            elif staged is not None:
                state = staged
        return refused

    def _change_problem(self, change: Change, staged: dict[RecordKey, RecordSet] | None) -> str | None:
        if change.new is not None:
            rs = change.new
            problem = record_problem(rs, self.zone, routing=True) or routed_problem(rs, self.mode)
            if problem is None and rs.type is RecordType.CNAME and rs.name == self.zone:
                problem = "Route53 allows no CNAME at the zone apex"
            if problem is None and any(len(_value_out(rs, v)) > MAX_VALUE for v in rs.values):
                problem = f"a value is longer than {MAX_VALUE} characters"
            if problem:
                return f"{rs.type} {rs.name}: {problem}"
        if staged is None:
            return None
        if change.old is not None:
            if staged.get(change.old.key) != change.old:
                return f"{change.action} {change.old.type} {change.old.name}: the set is not there as given"
            del staged[change.old.key]
        if change.new is not None:
            if change.new.key in staged:
                return f"{change.action} {change.new.type} {change.new.name}: the set already exists"
            staged[change.new.key] = change.new
        return None

    async def _send(self, batch: Changes) -> None:
        zone_id = await self.zone_id()
        wire: list[ChangeTypeDef] = [
            w
            for c in batch.items
            for w in to_changes(c, health=self._health_check_for, existing_health=self._existing_health_check)
        ]
        await self._call(
            "ChangeResourceRecordSets",
            lambda: self.client.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Changes": wire, "Comment": "ingressfed"}
            ),
        )
        for c in batch.items:
            if c.old is not None:
                if self._known is not None:
                    self._known.pop(c.old.key, None)
                self._health_ids.pop(c.old.key, None)
            if c.new is not None:
                if self._known is not None:
                    self._known[c.new.key] = c.new
                hc = self._health_check_for(c.new)
                if hc:
                    self._health_ids[c.new.key] = hc

    # --- health checks ---------------------------------------------------------------------

    def _existing_health_check(self, rs: RecordSet) -> str | None:
        return self._health_ids.get(rs.key)

    def _health_check_for(self, rs: RecordSet) -> str | None:
        """The check a routed set should carry; the default (``*``) set never carries one, so
        clients outside every mapped location are always answered."""
        if rs.set_identifier is None or rs.routing is None or rs.set_identifier == DEFAULT_SET:
            return None
        if rs.set_identifier in self.options.health_check_ids:
            return self.options.health_check_ids[rs.set_identifier]
        if self.options.health_check is not None and rs.values and rs.type in (RecordType.A, RecordType.AAAA):
            created = self._created_checks.get(rs.values[0])
            if created is not None:
                return created
        return self._health_ids.get(rs.key)  # keep what the set carries (e.g. attached by hand)

    async def _ensure_health_checks(self, changes: Changes) -> None:
        opts = self.options.health_check
        assert opts is not None
        for c in changes.items:
            rs = c.new
            if rs is None or rs.set_identifier is None or rs.type not in (RecordType.A, RecordType.AAAA):
                continue
            if rs.set_identifier in self.options.health_check_ids or rs.set_identifier == DEFAULT_SET:
                continue
            address = rs.values[0]
            if address in self._created_checks:
                continue
            spec = f"{self.zone}|{address}|{opts.protocol}|{opts.port}|{opts.path}|{opts.request_interval}"
            reference = "ingressfed-" + hashlib.sha256(spec.encode()).hexdigest()[:40]
            config: dict[str, Any] = {
                "IPAddress": address,
                "Port": opts.port,
                "Type": opts.protocol,
                "RequestInterval": opts.request_interval,
                "FailureThreshold": opts.failure_threshold,
            }
            if opts.protocol != "TCP":
                config["ResourcePath"] = opts.path
            answer = await self._call(
                "CreateHealthCheck",
                partial(
                    self.client.create_health_check,
                    CallerReference=reference,
                    HealthCheckConfig=cast(Any, config),
                ),
            )
            check_id = answer["HealthCheck"]["Id"]
            # Tagged, so garbage collection can tell ours (for this zone) from anyone else's.
            await self._call(
                "ChangeTagsForResource",
                partial(
                    self.client.change_tags_for_resource,
                    ResourceType="healthcheck",
                    ResourceId=check_id,
                    AddTags=[
                        {"Key": HEALTH_CHECK_TAG, "Value": self.zone},
                        {"Key": "Name", "Value": f"ingressfed {self.zone} {address}"},
                    ],
                ),
            )
            self._created_checks[address] = check_id

    async def _our_health_checks(self) -> dict[str, str]:
        """Health checks tagged for this zone: id -> address."""
        checks: dict[str, str] = {}
        kwargs: dict[str, Any] = {"MaxItems": "1000"}
        while True:
            page = await self._call("ListHealthChecks", partial(self.client.list_health_checks, **kwargs))
            for hc in page["HealthChecks"]:
                checks[hc["Id"]] = str(hc["HealthCheckConfig"].get("IPAddress", ""))
            if not page.get("IsTruncated"):
                break
            kwargs["Marker"] = page["NextMarker"]
        ours: dict[str, str] = {}
        ids = sorted(checks)
        for i in range(0, len(ids), 10):  # ListTagsForResources takes at most 10 ids
            tags = await self._call(
                "ListTagsForResources",
                partial(
                    self.client.list_tags_for_resources,
                    ResourceType="healthcheck",
                    ResourceIds=ids[i : i + 10],
                ),
            )
            for tag_set in tags["ResourceTagSets"]:
                values = {t["Key"]: t["Value"] for t in tag_set.get("Tags", [])}
                if values.get(HEALTH_CHECK_TAG) == self.zone:
                    ours[tag_set["ResourceId"]] = checks[tag_set["ResourceId"]]
        return ours

    async def _collect_health_checks(self) -> None:
        """Delete the health checks this provider created for the zone that no set uses any more
        (their address left the desired state). Untagged or other zones' checks are never touched."""
        in_use = set(self._health_ids.values()) | set(self.options.health_check_ids.values())
        for check_id, address in sorted((await self._our_health_checks()).items()):
            if check_id in in_use:
                continue
            await self._call(
                "DeleteHealthCheck", partial(self.client.delete_health_check, HealthCheckId=check_id)
            )
            if self._created_checks.get(address) == check_id:
                del self._created_checks[address]
            log.info(
                "route53: deleted health check %s for %s (no record set of zone %s uses it)",
                check_id,
                address,
                self.zone,
                extra={"zone": self.zone, "address": address},
            )

    # --- adjust ----------------------------------------------------------------------------

    def adjust(self, desired: Sequence[RecordSet]) -> list[RecordSet]:
        """Routed sets in the exact form Route53 stores and ``records()`` reads back."""
        out = _one_ttl_per_weighted_group(
            super().adjust([rs for rs in desired if rs.set_identifier is None or _weighted(rs)])
        )
        if self.mode is RoutingMode.NONE:
            return out + super().adjust(
                [rs for rs in desired if rs.set_identifier is not None and not _weighted(rs)]
            )
        routed: dict[tuple[str, RecordType], list[RecordSet]] = {}
        for rs in desired:
            if rs.set_identifier is not None and not _weighted(rs):
                routed.setdefault((rs.name, rs.type), []).append(rs)
        for (name, rtype), sets in routed.items():
            out.extend(self._route(name, rtype, sets))
        return out

    def _route(self, name: str, rtype: RecordType, sets: list[RecordSet]) -> list[RecordSet]:
        by_target: dict[tuple[str, str | None, str | None], list[RecordSet]] = {}
        for rs in sets:
            assert rs.routing is not None
            target = self._target(rs.routing)
            if target is None:
                log.warning(
                    "route53: cannot place cluster %s (region %r) for %s routing; publishing %s %s unrouted",
                    rs.routing.cluster,
                    rs.routing.region,
                    self.mode.value,
                    rtype.value,
                    name,
                    extra={"record": name, "cluster": rs.routing.cluster},
                )
                values = tuple(v for s in sets for v in s.values)
                return [RecordSet(name, rtype, min(s.ttl for s in sets), values)]
            by_target.setdefault(target, []).append(rs)
        out: list[RecordSet] = []
        for (region, continent, country), members in sorted(by_target.items(), key=lambda kv: str(kv[0])):
            ident = "+".join(sorted({m.set_identifier or "" for m in members}))[:MAX_SET_IDENTIFIER]
            routing = Routing(cluster=ident, region=region, continent=continent, country=country)
            values = tuple(v for m in members for v in m.values)
            out.append(RecordSet(name, rtype, min(m.ttl for m in members), values, ident, routing))
        if self.mode is RoutingMode.GEOLOCATION and ("", None, "*") not in by_target:
            values = tuple(v for s in sets for v in s.values)
            default = Routing(cluster=DEFAULT_SET, region="", country="*")
            out.append(RecordSet(name, rtype, min(s.ttl for s in sets), values, DEFAULT_SET, default))
        return out

    def _target(self, routing: Routing) -> tuple[str, str | None, str | None] | None:
        if self.mode is RoutingMode.LATENCY:
            region = self._latency_region(routing)
            return (region, None, None) if region else None
        if routing.continent or routing.country:
            target = GeoTarget(continent=routing.continent, country=routing.country)
        elif routing.cluster in self.options.geolocation:
            target = self.options.geolocation[routing.cluster]
        else:
            continent = _continent_of(routing.region)
            if continent is None:
                return None
            target = GeoTarget(continent=continent)
        if _geo_problem(target.continent, target.country):
            return None
        return ("", target.continent, target.country)

    def _latency_region(self, routing: Routing) -> str | None:
        if routing.region in LATENCY_REGIONS:
            return routing.region
        if routing.region in self.options.latency_regions:
            return self.options.latency_regions[routing.region]
        here = routing.location or region_location(routing.region)
        if here is None:
            return None
        candidates = [(r, region_location(r)) for r in sorted(LATENCY_REGIONS)]
        known = [(great_circle_km(here, loc), r) for r, loc in candidates if loc is not None]
        return min(known)[1] if known else None

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


def _weighted(rs: RecordSet) -> bool:
    return rs.routing is not None and rs.routing.weighted


def _one_ttl_per_weighted_group(sets: list[RecordSet]) -> list[RecordSet]:
    """Every weighted set of a name and type at the group's shortest TTL (Route53 keeps one TTL
    per weighted group: writing two would leave the last one written, and the plan would flap)."""
    shortest: dict[tuple[str, RecordType], int] = {}
    for rs in sets:
        if _weighted(rs):
            k = (rs.name, rs.type)
            shortest[k] = min(rs.ttl, shortest.get(k, rs.ttl))
    return [
        RecordSet(rs.name, rs.type, shortest[(rs.name, rs.type)], rs.values, rs.set_identifier, rs.routing)
        if _weighted(rs) and rs.ttl != shortest[(rs.name, rs.type)]
        else rs
        for rs in sets
    ]


def _continent_of(region: str) -> str | None:
    if region in _CONTINENT_EXCEPTIONS:
        return _CONTINENT_EXCEPTIONS[region]
    for prefix, continent in _CONTINENT_BY_PREFIX:
        if region.startswith(prefix):
            return continent
    return None
