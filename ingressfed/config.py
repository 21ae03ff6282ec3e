"""The federation config file (YAML) and the static objects file: parse, validate, convert.

Every problem is reported at once, each as ``<field path>: <what is wrong>``
naming the bad value and what is allowed, e.g.
``clusters[1].location.lat: 95.0 is out of range: must be between -90 and 90``.
Field paths use the YAML spelling (camelCase). Relative file paths in the
config (``source.file``, ``geo.database``, ``controller.feedTokenFile``) are
resolved against the config file's directory.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from geo.regions import region_of_zone
from ingressfed.errors import ConfigError
from ingressfed.model import (
    Cluster,
    ClusterStatus,
    Federation,
    IngressObservation,
    IngressRule,
    Location,
    Policy,
    ServiceObservation,
)

__all__ = [
    "Config",
    "StaticObjects",
    "check_command",
    "check_config",
    "load_config",
    "load_objects",
    "parse_config",
    "parse_objects",
    "split_host_port",
]

log = logging.getLogger(__name__)

PROVIDER_GROUP = "ingressfed.providers"

_T = TypeVar("_T")

# ---------------------------------------------------------------- field types


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _between(lo: float, hi: float) -> Callable[[_T], _T]:
    def check(value: _T) -> _T:
        if not lo <= value <= hi:  # type: ignore[operator]
            raise _fail("range", f"is out of range: must be between {lo:g} and {hi:g}")
        return value

    return check


def _positive(value: float) -> float:
    if value <= 0:
        raise _fail("range", "must be greater than 0")
    return value


def _at_least(lo: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value < lo:
            raise _fail("range", f"must be at least {lo}")
        return value

    return check


_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_RULE = (
    "lower-case letters, digits and '-', 1-63 characters, starting and ending with a letter or digit"
)


def _dns_label(value: str) -> str:
    if not _LABEL.match(value):
        raise _fail("dns_label", f"is not a DNS label: use {_LABEL_RULE}")
    return value


def _dns_name(value: str) -> str:
    name = value.rstrip(".").lower()
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise _fail(
            "dns_name",
            f"is not a DNS name: dot-separated labels of {_LABEL_RULE}; at most 253 characters",
        )
    return name


def _optional_label(value: str) -> str:
    return _dns_label(value) if value else value


_OWNER_ID = re.compile(r"^[a-z0-9_.-]{1,63}$")


def _owner_id(value: str) -> str:
    if not _OWNER_ID.match(value):
        raise _fail("owner_id", "is not allowed: use 1-63 of a-z, 0-9, '-', '_', '.'")
    return value


_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _provider_name(value: str) -> str:
    if not _PROVIDER_NAME.match(value):
        raise _fail("provider", "is not a provider name (an entry point in group ingressfed.providers)")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _fail("ip", "is not an IPv4 or IPv6 address") from None


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise _fail("cidr", "is not a CIDR: use e.g. 10.0.0.0/8, 2001:db8::/32 or a single address") from None
    raise _fail("cidr", f"has host bits set: did you mean {loose}?")


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` -> (host, port); ValueError naming the rule otherwise."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError("must be host:port, with IPv6 in brackets as [::1]:8080")
        host, port_text = text[1:end], text[end + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError("must be host:port such as 0.0.0.0:8080 or [::]:8080")
        if ":" in host:
            raise ValueError("an IPv6 host must be in brackets, as [::]:8080")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not all(_LABEL.match(label) for label in host.lower().split(".")):
                raise ValueError(f"{host!r} is not an IP address or host name") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} must be a number between 1 and 65535")
    return host, int(port_text)


def _listen(value: str) -> str:
    try:
        split_host_port(value)
    except ValueError as exc:
        raise _fail("listen", str(exc)) from None
    return value


def _file_path(*, must_exist: bool) -> Callable[[str, ValidationInfo], str]:
    def check(value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dir")
        path = Path(value).expanduser()
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        # check-config --no-file-checks: a config rendered for a pod names files mounted there.
        checked = (info.context or {}).get("check_files", True)
        if must_exist and checked and not path.is_file():
            shown = f" (resolved to {str(path)!r})" if str(path) != value else ""
            raise _fail("file", f"does not exist or is not a regular file{shown}")
        return str(path)

    return check


_HEADER_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_name(value: str) -> str:
    if value and not _HEADER_TOKEN.match(value):
        raise _fail("header", "is not an HTTP header name (letters, digits, '-'); use \"\" to disable")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise _fail("path", "must start with '/'")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsName = Annotated[str, AfterValidator(_dns_name)]
IpAddress = Annotated[str, AfterValidator(_ip)]
Cidr = Annotated[str, AfterValidator(_cidr)]
ListenAddress = Annotated[str, AfterValidator(_listen)]
Ttl = Annotated[int, AfterValidator(_between(1, 86400))]
Port = Annotated[int, AfterValidator(_between(1, 65535))]
Seconds = Annotated[float, AfterValidator(_positive)]
Threshold = Annotated[int, AfterValidator(_at_least(1))]
ExistingFile = Annotated[str, AfterValidator(_file_path(must_exist=True))]
FilePath = Annotated[str, AfterValidator(_file_path(must_exist=False))]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


# --------------------------------------------------------------------- config


class FederationSection(_Model):
    name: DnsLabel
    zone: DnsName
    ttl: Ttl = 30
    owner_id: Annotated[str, AfterValidator(_owner_id)] = "ingressfed"
    policy: Policy = Policy.SYNC
    global_addresses: tuple[IpAddress, ...] = ()
    global_hostnames: tuple[DnsName, ...] = ()


class DnsSection(_Model):
    provider: Annotated[str, AfterValidator(_provider_name)] = "embedded"
    options: dict[str, Any] = {}
    dry_run: bool = False
    routing: Literal["none", "latency", "geolocation"] = "none"


class LocationSection(_Model):
    lat: Annotated[float, AfterValidator(_between(-90, 90))]
    lon: Annotated[float, AfterValidator(_between(-180, 180))]


class SecretRef(_Model):
    namespace: DnsLabel
    name: DnsName


class KubeconfigSection(_Model):
    path: str | None = None
    context: str | None = None
    secret_ref: SecretRef | None = None


class ClusterSection(_Model):
    name: DnsLabel
    region: Annotated[str, AfterValidator(_optional_label)] = ""
    zone: Annotated[str, AfterValidator(_optional_label)] = ""
    location: LocationSection | None = None
    weight: Annotated[int, AfterValidator(_between(1, 1000))] = 100
    kubeconfig: KubeconfigSection | None = None
    disabled: bool = False


class HostKubeconfigSection(_Model):
    path: str | None = None
    context: str | None = None
    in_cluster: bool = False


class SourceSection(_Model):
    kind: Literal["static", "kubernetes"] = "static"
    file: FilePath | None = None
    namespaces: tuple[DnsLabel, ...] = ()
    host_kubeconfig: HostKubeconfigSection = HostKubeconfigSection()


class HealthSection(_Model):
    period: Seconds = 10.0
    timeout: Seconds = 3.0
    failure_threshold: Threshold = 3
    success_threshold: Threshold = 1


class GeoSection(_Model):
    database: ExistingFile | None = None
    trusted_proxies: tuple[Cidr, ...] = ()
    default_order: tuple[str, ...] = ()
    # The one forwarding header believed from trusted proxies (issue 11); the other is removed.
    client_address_header: Literal["X-Forwarded-For", "Forwarded"] = "X-Forwarded-For"


class ProxyHealthCheck(_Model):
    path: Annotated[str, AfterValidator(_url_path)] = "/healthz"
    interval: Seconds = 5.0
    timeout: Seconds = 2.0
    unhealthy_threshold: Threshold = 2
    healthy_threshold: Threshold = 2


class ProxyTimeouts(_Model):
    connect: Seconds = 2.0
    read: Seconds = 30.0
    idle: Seconds = 60.0
    request_head: Seconds = 10.0
    body_read: Seconds = 10.0
    per_try: Seconds = 3.0
    send: Seconds = 30.0


class ProxySteering(_Model):
    """The federation's steering policy (issue 11); an Ingress may set its own by annotations."""

    kind: Literal["nearest", "failover", "weighted"] = "nearest"
    order: tuple[str, ...] = ()
    weights: dict[str, int] = {}
    capacity: dict[str, int] = {}
    affinity_cookie: str = ""
    max_rate: dict[str, int] = {}  # cluster -> max requests/s through each proxy (spill-over)


class ProxyRetries(_Model):
    budget_ratio: Annotated[float, AfterValidator(_between(0, 1))] = 0.2
    min_concurrent: Annotated[int, AfterValidator(_at_least(0))] = 10


class ProxyLimits(_Model):
    max_body_bytes: Annotated[int, AfterValidator(_at_least(0))] = 10 * 1024 * 1024
    max_header_bytes: Annotated[int, AfterValidator(_at_least(1024))] = 16384
    min_body_rate: Annotated[int, AfterValidator(_at_least(0))] = 1024
    max_connections: Annotated[int, AfterValidator(_at_least(1))] = 10000
    max_connections_per_client: Annotated[int, AfterValidator(_at_least(1))] = 256


class ProxyHsts(_Model):
    max_age: Annotated[int, AfterValidator(_at_least(0))] = 0
    include_subdomains: bool = False


class ProxyHttp2(_Model):
    enabled: bool = True
    max_concurrent_streams: Annotated[int, AfterValidator(_between(1, 10000))] = 100
    max_resets: Threshold = 200
    reset_window: Seconds = 10.0
    max_header_list_bytes: Annotated[int, AfterValidator(_at_least(1024))] = 16384
    max_header_frames: Threshold = 16
    max_control_frames: Annotated[int, AfterValidator(_at_least(10))] = 1000
    control_window: Seconds = 10.0
    stall_timeout: Seconds = 30.0
    initial_window_bytes: Annotated[int, AfterValidator(_between(65535, 2**31 - 1))] = 1024 * 1024


class ProxyTls(_Model):
    """HTTPS at the proxy (ingressfed/tls/settings.py holds the meaning of each field)."""

    listen: ListenAddress = "0.0.0.0:8443"
    certificate_dir: FilePath | None = None
    default_certificate: str | None = None
    redirect_http: bool = False
    redirect_port: Port = 443
    hsts: ProxyHsts = ProxyHsts()
    handshake_timeout: Seconds = 10.0
    http2: ProxyHttp2 = ProxyHttp2()


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _unique_acme_hosts(value: tuple[str, ...]) -> tuple[str, ...]:
    # Empty is fine: Ingresses may opt hosts in with the federation.ingressfed.io/acme annotation.
    if len(set(value)) != len(value):
        raise ValueError("a host is listed twice")
    return value


def _acme_host(value: str) -> str:
    if value.startswith("*."):  # a wildcard (dns-01 only, checked with the challenge type)
        return "*." + _dns_name(value[2:])
    return _dns_name(value)


def _acme_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            f"{value!r} is not an http(s) URL of an ACME directory (e.g. https://acme-v02.api.letsencrypt.org/directory)"
        )
    return value


def _email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an e-mail address (the CA's expiry notices go there)")
    return value


def _eab_hmac(value: str) -> str:
    import base64
    import binascii

    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise ValueError("not base64url: give the HMAC key exactly as the CA printed it")
    return value


class AcmeEab(_Model):
    """External account binding (RFC 8555 §7.3.4), required by some CAs (ZeroSSL, Google).
    The HMAC key inline (``hmacKey``) or in a file (``hmacKeyFile``, a mounted Secret)."""

    kid: Annotated[str, AfterValidator(_non_empty)]
    hmac_key: Annotated[str, AfterValidator(_eab_hmac)] | None = None
    hmac_key_file: ExistingFile | None = None

    def hmac(self) -> str:
        """The HMAC key (read from ``hmacKeyFile`` when set); ConfigError naming the field."""
        if self.hmac_key is not None:
            return self.hmac_key
        assert self.hmac_key_file is not None  # one of the two: checked at load
        key = read_token_file(self.hmac_key_file)
        try:
            return _eab_hmac(key)
        except ValueError as exc:
            raise ConfigError([f"tls.acme.eab.hmacKeyFile: {self.hmac_key_file}: {exc}"]) from exc


class AcmeSection(_Model):
    """Certificates ordered from an ACME CA for ``hosts`` (docs/tls.md, ingressfed/acme/)."""

    directory_url: Annotated[str, AfterValidator(_acme_url)]
    # Also opted in per Ingress by the federation.ingressfed.io/acme annotation (merged with these).
    hosts: Annotated[
        tuple[Annotated[str, AfterValidator(_acme_host)], ...], AfterValidator(_unique_acme_hosts)
    ] = ()
    state_dir: FilePath
    email: Annotated[str, AfterValidator(_email)] | None = None
    challenge: Literal["dns-01", "http-01"] = "dns-01"
    eab: AcmeEab | None = None
    renew_before_days: Annotated[int, AfterValidator(_between(1, 89))] = 30
    check_interval: Seconds = 3600.0
    propagation_nameservers: tuple[ListenAddress, ...] = ()
    propagation_timeout: Seconds = 120.0


class TlsSection(_Model):
    acme: AcmeSection | None = None


class ProxySection(_Model):
    enabled: bool = True
    tls: ProxyTls | None = None  # None: no HTTPS listener
    listen: ListenAddress = "0.0.0.0:8080"
    admin_listen: ListenAddress = "127.0.0.1:8081"
    cluster_header: Annotated[str, AfterValidator(_header_name)] = "X-Served-By-Cluster"
    health_check: ProxyHealthCheck = ProxyHealthCheck()
    timeouts: ProxyTimeouts = ProxyTimeouts()
    limits: ProxyLimits = ProxyLimits()
    retries: ProxyRetries = ProxyRetries()
    steering: ProxySteering = ProxySteering()
    # Processes serving the port with SO_REUSEPORT; "auto": one per usable core (issue 11).
    # Unset: `ingressfed proxy` (the data plane alone) takes "auto", `ingressfed run` 1 (its
    # proxy shares the process with the controller; see docs/proxy.md).
    workers: Annotated[int, AfterValidator(_between(1, 256))] | Literal["auto"] | None = None


class TsigKeySection(_Model):
    name: DnsName
    algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"] = (
        "hmac-sha256"
    )
    secret_file: ExistingFile  # base64, as tsig-keygen prints it (a mounted Secret)


class DnsTransferSection(_Model):
    """Zone transfers to secondaries (AXFR/IXFR) and NOTIFY; see docs/dnsserver.md."""

    allow_from: tuple[Cidr, ...] = ()
    keys: tuple[TsigKeySection, ...] = ()
    notify: tuple[ListenAddress, ...] = ()  # HOST:PORT of each secondary
    notify_key: str | None = None
    journal: Annotated[int, AfterValidator(_between(0, 1000))] = 20


class DnsServerSection(_Model):
    enabled: bool = True
    listen: ListenAddress = "127.0.0.1:5353"
    answers: Literal["geo", "all"] = "geo"
    # With answers: geo, Service names too are answered per client (false: every serving cluster,
    # while Ingress hosts still resolve to the nearest edge).
    geo_service_names: bool = True
    # Where the zone this DNS server answers from is persisted (None: not persisted). With the
    # embedded provider that is the provider's own zone file (dns.options.zoneFile).
    zone_file: FilePath | None = None
    transfer: DnsTransferSection | None = None
    # Processes answering on ``listen`` with SO_REUSEPORT (``dns-serve``; ``run`` refuses > 1).
    workers: Annotated[int, AfterValidator(_between(1, 64))] = 1


class ControllerTlsSection(_Model):
    """HTTPS on the controller listener, so edges in other clusters follow the feed over TLS.

    PEM files as a ``kubernetes.io/tls`` Secret mounts them (``tls.crt`` with the chain, ``tls.key``).
    """

    cert_file: ExistingFile
    key_file: ExistingFile


class ControllerSection(_Model):
    listen: ListenAddress = "127.0.0.1:9090"
    debounce: Annotated[float, AfterValidator(_between(0, 60))] = 0.2
    resync: Seconds = 60.0
    feed_token_file: ExistingFile | None = None
    tls: ControllerTlsSection | None = None  # None: plain HTTP (loopback, or TLS terminated in front)


class StatusSection(_Model):
    """The read API and status page on the controller listener (``/status``, ``ingressfed get --controller``).

    Off by default: it shows every route and record. ``tokenFile`` unset means the feed's token
    (``controller.feedTokenFile``) guards it too, so enabling it never opens what the feed closes;
    ``anonymous: true`` serves it without one (the demo, on loopback only).
    """

    enabled: bool = False
    token_file: ExistingFile | None = None
    anonymous: bool = False


class LeaderElectionSection(_Model):
    enabled: bool = False
    namespace: DnsLabel = "ingressfed-system"
    lease_name: DnsName = "ingressfed-controller"
    lease_duration: Seconds = 15.0
    renew_deadline: Seconds = 10.0
    retry_period: Seconds = 2.0


class EdgeEntry(_Model):
    """One edge (a proxy in a member cluster); see docs/adr/0006-edges-and-health-quorum.md."""

    name: DnsLabel
    cluster: DnsLabel
    region: Annotated[str, AfterValidator(_optional_label)] = ""  # default: its cluster's region
    location: LocationSection | None = None  # default: its cluster's location
    addresses: tuple[IpAddress, ...] = ()  # declared public addresses; else the ones it announces
    token_file: ExistingFile | None = None  # its own report token; default: controller.feedTokenFile


class EdgeProbeSection(_Model):
    """The controller's own check of each edge: TCP connect to its public address on ``port``."""

    enabled: bool = False
    port: Port = 80
    interval: Seconds = 5.0
    timeout: Seconds = 2.0
    failure_threshold: Threshold = 3


class EdgeHealthSection(_Model):
    """How the controller agrees on data-plane health from the edges' reports."""

    quorum: Literal["majority"] | Annotated[int, AfterValidator(_at_least(1))] = "majority"
    stale_after: Seconds = 15.0
    min_report_interval: Annotated[float, AfterValidator(_between(0, 60))] = 1.0
    max_report_bytes: Annotated[int, AfterValidator(_between(1024, 64 * 1024 * 1024))] = 4 * 1024 * 1024
    local_edge: DnsLabel = "local"  # the name the in-process proxy reports under
    probe: EdgeProbeSection = EdgeProbeSection()


class GatewaySection(_Model):
    """Gateway API and MCS ServiceExport inputs (see docs/gateway-api.md)."""

    # Watch GatewayClass/Gateway/HTTPRoute/ReferenceGrant and ServiceExport where their CRDs exist.
    enabled: bool = True
    # How often a member whose API server lacks the CRDs is asked again (picked up when installed).
    recheck: Seconds = 30.0


class Config(_Model):
    federation: FederationSection
    dns: DnsSection = DnsSection()
    clusters: tuple[ClusterSection, ...] = ()
    source: SourceSection = SourceSection()
    health: HealthSection = HealthSection()
    geo: GeoSection = GeoSection()
    proxy: ProxySection = ProxySection()
    dns_server: DnsServerSection = DnsServerSection()
    controller: ControllerSection = ControllerSection()
    leader_election: LeaderElectionSection = LeaderElectionSection()
    edges: tuple[EdgeEntry, ...] = ()
    edge_health: EdgeHealthSection = EdgeHealthSection()
    status: StatusSection = StatusSection()
    gateway: GatewaySection = GatewaySection()
    tls: TlsSection = TlsSection()

    def federation_value(self) -> Federation:
        f = self.federation
        return Federation(
            name=f.name,
            suffix=f.zone,
            owner_id=f.owner_id,
            ttl=f.ttl,
            policy=f.policy,
            global_addresses=f.global_addresses,
            global_hostnames=f.global_hostnames,
        )

    def cluster_values(self) -> list[Cluster]:
        """Enabled member clusters as domain values; a missing region is derived from the zone."""
        out = []
        for c in self.clusters:
            if c.disabled:
                continue
            region = c.region or (region_of_zone(c.zone) if c.zone else "")
            location = Location(c.location.lat, c.location.lon) if c.location else None
            out.append(Cluster(name=c.name, region=region, zone=c.zone, location=location, weight=c.weight))
        return out

    def feed_token(self) -> str | None:
        """The bearer token remote data planes must present, read from ``controller.feedTokenFile``."""
        if self.controller.feed_token_file is None:
            return None
        return read_token_file(self.controller.feed_token_file)

    def status_token(self) -> str | None:
        """The token the read API and status page require: ``status.tokenFile``, else the feed's;
        None with ``status.anonymous``."""
        if self.status.anonymous:
            return None
        if self.status.token_file is not None:
            return read_token_file(self.status.token_file)
        return self.feed_token()


def read_token_file(path: str | Path) -> str:
    """A token from a file (a mounted Secret); surrounding whitespace is not part of it."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"token file {str(path)!r} cannot be read: {exc}"]) from exc
    if not token:
        raise ConfigError([f"token file {str(path)!r} is empty"])
    return token


# ------------------------------------------------------------ error reporting


def _field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for listing allowed keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        found = None
        for name, info in current.model_fields.items():
            if part in (name, info.alias):
                found = info.annotation
        if found is None:
            return None
        current = _unwrap(found)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    # tuple[X, ...], X | None -> X
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TYPE_WORDS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "finite_number": "must be a finite number",
}


def _describe(err: ErrorDetails, model: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    path = _field_path(loc)
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return f"{path}: is required"
    if kind == "extra_forbidden":
        holder = _model_at(model, loc[:-1])
        allowed = ""
        if holder is not None:
            names = sorted(info.alias or name for name, info in holder.model_fields.items())
            allowed = "; allowed: " + ", ".join(names)
        return f"{path}: unknown field{allowed}"
    if kind in ("literal_error", "enum"):
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"{path}: {_show(value)} is not allowed: must be one of {expected}"
    if kind in _TYPE_WORDS:
        return f"{path}: {_show(value)} {_TYPE_WORDS[kind]}"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{path}: {_show(value)} {message}"


# ------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: {what} file does not exist"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read {what} file: {exc}"]) from exc
    return _parse_yaml(text, path)


def _parse_yaml(text: str, path: Path | str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([f"{path}: YAML syntax error at {where}: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _list(value: Any, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cross_checks(raw: Mapping[str, Any]) -> list[str]:
    """Rules that span fields; written against the raw document so they run even when
    some fields are invalid, and every problem is reported in one go."""
    problems = []
    clusters = _list(raw, "clusters")
    seen: dict[str, int] = {}
    names = set()
    for i, c in enumerate(clusters):
        name = c.get("name") if isinstance(c, Mapping) else None
        if not isinstance(name, str):
            continue
        names.add(name)
        if name in seen:
            problems.append(
                f"clusters[{i}].name: {name!r} is a duplicate of clusters[{seen[name]}]; names must be unique"
            )
        else:
            seen[name] = i
    status = _mapping(raw, "status")
    if status.get("anonymous") is True and status.get("tokenFile"):
        problems.append("status.anonymous: true serves without a token; drop it or drop status.tokenFile")
    source = _mapping(raw, "source")
    if source.get("kind", "static") == "static":
        for i, c in enumerate(clusters):
            if isinstance(c, Mapping) and not c.get("zone") and not c.get("disabled"):
                problems.append(
                    f"clusters[{i}].zone: is required when source.kind is static (e.g. us-east1-b)"
                )
    # With members from FederatedCluster objects (kubernetes source, no clusters[]) the names are
    # only known at run time: defaultOrder cannot be checked here.
    members_known = bool(names) or source.get("kind", "static") == "static"
    for i, entry in enumerate(_list(_mapping(raw, "geo"), "defaultOrder")):
        if members_known and isinstance(entry, str) and entry not in names:
            known = ", ".join(sorted(names)) or "none"
            problems.append(f"geo.defaultOrder[{i}]: {entry!r} is not a cluster name; clusters: {known}")
    health = _mapping(raw, "health")
    period, timeout = _number(health.get("period", 10)), _number(health.get("timeout", 3))
    if period is not None and timeout is not None and timeout >= period > 0:
        problems.append(f"health.timeout: {timeout:g} must be less than health.period ({period:g})")
    check = _mapping(_mapping(raw, "proxy"), "healthCheck")
    interval, timeout = _number(check.get("interval", 5)), _number(check.get("timeout", 2))
    if interval is not None and timeout is not None and timeout >= interval > 0:
        problems.append(
            f"proxy.healthCheck.timeout: {timeout:g} must be less than "
            f"proxy.healthCheck.interval ({interval:g})"
        )
    lease = _mapping(raw, "leaderElection")
    duration = _number(lease.get("leaseDuration", 15))
    renew = _number(lease.get("renewDeadline", 10))
    retry = _number(lease.get("retryPeriod", 2))
    if duration is not None and renew is not None and renew >= duration:
        problems.append(
            f"leaderElection.renewDeadline: {renew:g} must be less than "
            f"leaderElection.leaseDuration ({duration:g})"
        )
    if renew is not None and retry is not None and retry >= renew:
        problems.append(
            f"leaderElection.retryPeriod: {retry:g} must be less than "
            f"leaderElection.renewDeadline ({renew:g})"
        )
    problems.extend(_edge_checks(raw, names if members_known else None))
    problems.extend(_zone_file_checks(raw))
    tls = _mapping(_mapping(raw, "proxy"), "tls")
    if tls.get("defaultCertificate") and not tls.get("certificateDir"):
        problems.append(
            "proxy.tls.defaultCertificate: names a pair in proxy.tls.certificateDir; set certificateDir too"
        )
    acme = _mapping(_mapping(raw, "tls"), "acme")
    zone = str(_mapping(raw, "federation").get("zone", "")).rstrip(".").lower()
    eab = _mapping(acme, "eab")
    if eab and (eab.get("hmacKey") is None) == (eab.get("hmacKeyFile") is None):
        problems.append("tls.acme.eab: set exactly one of hmacKey and hmacKeyFile (a mounted Secret)")
    from ingressfed.acme.hosts import host_problem

    challenge = str(acme.get("challenge", "dns-01"))
    for host in _list(acme, "hosts"):
        why = host_problem(host, zone=zone, challenge=challenge) if isinstance(host, str) else None
        if why:
            problems.append(f"tls.acme.hosts: {why}")
    proxy_section = _mapping(raw, "proxy")
    in_process = proxy_section.get("enabled", True) is not False
    if acme and in_process and not proxy_section.get("tls"):
        problems.append(
            "tls.acme: the certificates are served by the proxy's HTTPS listener; set proxy.tls too "
            "(or proxy.enabled: false when remote proxies serve them from the certificate feed)"
        )
    provider = _mapping(raw, "dns").get("provider", "embedded")
    registered = sorted({ep.name for ep in entry_points(group=PROVIDER_GROUP)})
    if isinstance(provider, str) and registered and provider not in registered:
        problems.append(
            f"dns.provider: {provider!r} is not an installed provider; installed: {', '.join(registered)}"
        )
    return problems


def _zone_file_checks(raw: Mapping[str, Any]) -> list[str]:
    """dnsServer.zoneFile is either used or refused: never accepted and ignored."""
    server = _mapping(raw, "dnsServer")
    zone_file = server.get("zoneFile")
    if zone_file is None:
        return []
    if server.get("enabled", True) is False:
        return [
            "dnsServer.zoneFile: set, but dnsServer.enabled is false, so nothing would use it; "
            "remove it (dns-serve followers keep their last view with --state-file)"
        ]
    dns = _mapping(raw, "dns")
    other = _mapping(dns, "options").get("zoneFile")
    if dns.get("provider", "embedded") == "embedded" and other is not None and other != zone_file:
        return [
            f"dnsServer.zoneFile: {zone_file!r} differs from dns.options.zoneFile {other!r}; with the "
            "embedded provider both name the one zone file: set one of them"
        ]
    return []


def _edge_checks(raw: Mapping[str, Any], clusters: Collection[str] | None) -> list[str]:
    problems = []
    seen: dict[str, int] = {}
    for i, e in enumerate(_list(raw, "edges")):
        if not isinstance(e, Mapping):
            continue
        name, cluster = e.get("name"), e.get("cluster")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"edges[{i}].name: {name!r} is a duplicate of edges[{seen[name]}]")
            else:
                seen[name] = i
        if clusters is not None and isinstance(cluster, str) and cluster not in clusters:
            known = ", ".join(sorted(clusters)) or "none"
            problems.append(f"edges[{i}].cluster: {cluster!r} is not a cluster name; clusters: {known}")
    return problems


def parse_config(
    raw: Any, *, base_dir: Path | None = None, source: str = "config", check_files: bool = True
) -> Config:
    """Validate an already-parsed document; ConfigError lists every problem."""
    if raw is None:
        raise ConfigError([f"{source}: is empty; at least federation.name and federation.zone are required"])
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{source}: top level must be a mapping, got {type(raw).__name__}"])
    problems: list[str] = []
    config: Config | None = None
    context = {"base_dir": str(base_dir) if base_dir is not None else None, "check_files": check_files}
    try:
        config = Config.model_validate(raw, context=context)
    except ValidationError as exc:
        problems.extend(_describe(err, Config) for err in exc.errors())
    problems.extend(_cross_checks(raw))
    if problems or config is None:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, *, check_files: bool = True) -> Config:
    """Read and validate the config file; ConfigError lists every problem found.

    ``check_files=False`` does not require the files the config names to exist (checking, outside
    the pod, a config rendered for one); ``run`` always checks them.
    """
    p = Path(path)
    return parse_config(_read_yaml(p, "config"), base_dir=p.parent, source=str(p), check_files=check_files)


def check_config(path: str | Path, *, check_files: bool = True) -> list[str]:
    """Every problem in the config file and, for a static source, its objects file."""
    try:
        config = load_config(path, check_files=check_files)
    except ConfigError as exc:
        return exc.problems
    if check_files and config.source.kind == "static" and config.source.file is not None:
        try:
            load_objects(config.source.file, clusters=[c.name for c in config.clusters])
        except ConfigError as exc:
            return [f"source.file: {p}" for p in exc.problems]
    return []


def check_command(args: argparse.Namespace) -> int:
    """``ingressfed check-config FILE``: print every problem and exit 1, or a summary and 0."""
    check_files = not getattr(args, "no_file_checks", False)
    problems = check_config(args.file, check_files=check_files)
    if problems:
        print(f"{args.file}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    config = load_config(args.file, check_files=check_files)
    print(
        f"{args.file}: ok (federation {config.federation.name!r}, zone {config.federation.zone!r}, "
        f"{len(config.clusters)} cluster(s), provider {config.dns.provider!r})"
        + ("" if check_files else "; the files it names were not checked")
    )
    return 0


# -------------------------------------------------------------- objects file


def _dns_subdomain(value: str) -> str:
    return _dns_name(value)


def _url_or_root(value: str) -> str:
    return _url_path(value)


class ServiceEntry(_Model):
    cluster: DnsLabel
    namespace: DnsLabel
    name: DnsLabel
    ready_endpoints: Annotated[int, AfterValidator(_at_least(0))] = 1
    addresses: tuple[IpAddress, ...] = ()
    hostnames: tuple[DnsName, ...] = ()
    ttl: Ttl | None = None


class RuleEntry(_Model):
    host: DnsName
    path: Annotated[str, AfterValidator(_url_or_root)] = "/"
    path_type: Literal["Prefix", "Exact", "ImplementationSpecific"] = "Prefix"


class IngressEntry(_Model):
    cluster: DnsLabel
    namespace: DnsLabel
    name: Annotated[str, AfterValidator(_dns_subdomain)]
    rules: tuple[RuleEntry, ...]
    addresses: tuple[IpAddress, ...] = ()
    hostnames: tuple[DnsName, ...] = ()
    port: Port = 80
    ttl: Ttl | None = None


class ClusterStatusEntry(_Model):
    name: DnsLabel
    status: ClusterStatus


class ObjectsFile(_Model):
    services: tuple[ServiceEntry, ...] = ()
    ingresses: tuple[IngressEntry, ...] = ()
    clusters: tuple[ClusterStatusEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class StaticObjects:
    services: tuple[ServiceObservation, ...] = ()
    ingresses: tuple[IngressObservation, ...] = ()
    cluster_status: Mapping[str, ClusterStatus] = field(default_factory=dict)


def _objects_cross_checks(raw: Mapping[str, Any], clusters: Collection[str] | None) -> list[str]:
    problems = []
    for kind in ("services", "ingresses"):
        seen: dict[tuple[Any, ...], int] = {}
        for i, entry in enumerate(_list(raw, kind)):
            if not isinstance(entry, Mapping):
                continue
            key = tuple(str(entry.get(k)) for k in ("cluster", "namespace", "name"))
            if all(isinstance(entry.get(k), str) for k in ("cluster", "namespace", "name")):
                if key in seen:
                    problems.append(f"{kind}[{i}]: {'/'.join(key)} is a duplicate of {kind}[{seen[key]}]")
                else:
                    seen[key] = i
            cluster = entry.get("cluster")
            if clusters is not None and isinstance(cluster, str) and cluster not in clusters:
                known = ", ".join(sorted(clusters)) or "none"
                problems.append(
                    f"{kind}[{i}].cluster: {cluster!r} is not a configured cluster; clusters: {known}"
                )
    for i, entry in enumerate(_list(raw, "clusters")):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if clusters is not None and isinstance(name, str) and name not in clusters:
            known = ", ".join(sorted(clusters)) or "none"
            problems.append(f"clusters[{i}].name: {name!r} is not a configured cluster; clusters: {known}")
    return problems


def parse_objects(
    raw: Any, *, clusters: Collection[str] | None = None, source: str = "objects"
) -> StaticObjects:
    """Validate a parsed objects document; ``clusters`` (when given) are the names it may refer to."""
    if raw is None:
        return StaticObjects()
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{source}: top level must be a mapping, got {type(raw).__name__}"])
    problems: list[str] = []
    parsed: ObjectsFile | None = None
    try:
        parsed = ObjectsFile.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(err, ObjectsFile) for err in exc.errors())
    problems.extend(_objects_cross_checks(raw, clusters))
    if problems or parsed is None:
        raise ConfigError(problems)
    return StaticObjects(
        services=tuple(
            ServiceObservation(
                cluster=s.cluster,
                namespace=s.namespace,
                name=s.name,
                ready_endpoints=s.ready_endpoints,
                addresses=s.addresses,
                hostnames=s.hostnames,
                ttl=s.ttl,
            )
            for s in parsed.services
        ),
        ingresses=tuple(
            IngressObservation(
                cluster=g.cluster,
                namespace=g.namespace,
                name=g.name,
                rules=tuple(IngressRule(r.host, r.path, r.path_type) for r in g.rules),
                addresses=g.addresses,
                hostnames=g.hostnames,
                port=g.port,
                ttl=g.ttl,
            )
            for g in parsed.ingresses
        ),
        cluster_status={c.name: c.status for c in parsed.clusters},
    )


def load_objects(path: str | Path, *, clusters: Collection[str] | None = None) -> StaticObjects:
    """Read and validate the static objects file; ConfigError lists every problem found."""
    p = Path(path)
    return parse_objects(_read_yaml(p, "objects"), clusters=clusters, source=str(p))
