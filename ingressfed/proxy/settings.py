"""Proxy settings: a tree of frozen dataclasses matching the ``proxy:`` and ``geo:`` config sections."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geo.clientip import CLIENT_HEADERS, ClientHeader
from geo.select import parse_steering
from ingressfed.errors import ConfigError
from ingressfed.model import Steering
from ingressfed.tls.settings import TlsSettings

__all__ = [
    "EjectionSettings",
    "GeoSettings",
    "HealthCheckSettings",
    "LimitSettings",
    "ProxySettings",
    "RetrySettings",
    "TimeoutSettings",
    "cores_available",
    "parse_listen",
    "parse_workers",
]


@dataclass(frozen=True, slots=True)
class HealthCheckSettings:
    """Active checks: one HTTP GET of ``path`` per backend every ``interval`` seconds."""

    path: str = "/healthz"
    interval: float = 5.0
    timeout: float = 2.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 2
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class TimeoutSettings:
    connect: float = 2.0
    read: float = 30.0  # upstream silence while a response is awaited or streamed
    idle: float = 60.0  # kept-alive client connection with no byte of a next request
    # Total time to receive a request head, from its first byte (from the accept for a
    # connection's first request); bytes trickling in do not extend it.
    request_head: float = 10.0
    # Time to the first response byte per attempt: past it, an idempotent request whose body was
    # kept whole is retried on the next-ranked cluster (others wait for ``read``).
    per_try: float = 3.0
    # A client whose socket takes nothing of a response for this long is cut off (slow read).
    send: float = 30.0
    # Longest silence while a request body is received; after this long its average rate must
    # also be at least limits.min_body_rate.
    body_read: float = 10.0


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_body_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    # A request body up to this size is kept so that a 502/503/504 can be retried elsewhere.
    retry_body_bytes: int = 64 * 1024
    min_body_rate: int = 1024  # bytes/s a request body must average after timeouts.body_read; 0: off
    max_connections: int = 10000  # open client connections in total
    # Open connections per client address (socket peer); peers in geo.trustedProxies are exempt,
    # since behind a load balancer every connection comes from a few addresses.
    max_connections_per_client: int = 256


@dataclass(frozen=True, slots=True)
class EjectionSettings:
    """Passive ejection: consecutive connect errors, 5xx or per-try timeouts take a backend out for
    a backoff; so does a time to first byte far above the other backends'."""

    consecutive_failures: int = 3
    base_seconds: float = 2.0
    max_seconds: float = 60.0
    latency_factor: float = 5.0
    latency_floor: float = 0.5


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """The retry budget: exchanges on a retry are at most ``budget_ratio`` of those in flight,
    or ``min_concurrent``, whichever is larger."""

    budget_ratio: float = 0.2
    min_concurrent: int = 10


@dataclass(frozen=True, slots=True)
class GeoSettings:
    database: str | None = None  # MaxMind-format City database; None: every client has an unknown location
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For / Forwarded are believed
    default_order: tuple[str, ...] = ()  # cluster names for clients of unknown location
    # The one header believed from trusted proxies (and extended with our hop); the other is removed.
    client_address_header: ClientHeader = "X-Forwarded-For"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    host: str = "0.0.0.0"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 8081  # None: no admin listener
    cluster_header: str = "X-Served-By-Cluster"  # "" disables the header
    health_check: HealthCheckSettings = field(default_factory=HealthCheckSettings)
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    ejection: EjectionSettings = field(default_factory=EjectionSettings)
    retries: RetrySettings = field(default_factory=RetrySettings)
    # The federation's steering policy for routes whose Ingress sets none (annotations).
    steering: Steering = field(default_factory=Steering)
    geo: GeoSettings = field(default_factory=GeoSettings)
    drain_seconds: float = 30.0
    # Event loops (processes) serving the port: the primary plus workers-1 (proxy/workers.py).
    workers: int = 1
    reuse_port: bool = False  # SO_REUSEPORT on the listener (set for workers; may be set alone)
    via: str = "1.1 ingressfed"
    home_cluster: str | None = None  # set on an edge: its own cluster is tried first while healthy
    tls: TlsSettings | None = None  # the HTTPS listener (issue 10); None: plain HTTP only

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (0 <= self.port <= 65535, "proxy.listen: port must be 0..65535"),
            (self.admin_port is None or 0 <= self.admin_port <= 65535, "proxy.adminListen: port 0..65535"),
            (self.timeouts.connect > 0, "proxy.timeouts.connect must be > 0 seconds"),
            (self.timeouts.read > 0, "proxy.timeouts.read must be > 0 seconds"),
            (self.timeouts.idle > 0, "proxy.timeouts.idle must be > 0 seconds"),
            (self.timeouts.request_head > 0, "proxy.timeouts.requestHead must be > 0 seconds"),
            (self.timeouts.body_read > 0, "proxy.timeouts.bodyRead must be > 0 seconds"),
            (self.timeouts.per_try > 0, "proxy.timeouts.perTry must be > 0 seconds"),
            (self.timeouts.send > 0, "proxy.timeouts.send must be > 0 seconds"),
            (0 <= self.retries.budget_ratio <= 1, "proxy.retries.budgetRatio must be 0..1"),
            (self.retries.min_concurrent >= 0, "proxy.retries.minConcurrent must be >= 0"),
            (self.ejection.latency_factor > 1, "ejection.latencyFactor must be > 1"),
            (self.limits.min_body_rate >= 0, "proxy.limits.minBodyRate must be >= 0 bytes/s"),
            (self.limits.max_connections >= 1, "proxy.limits.maxConnections must be >= 1"),
            (
                self.limits.max_connections_per_client >= 1,
                "proxy.limits.maxConnectionsPerClient must be >= 1",
            ),
            (self.limits.max_body_bytes >= 0, "proxy.limits.maxBodyBytes must be >= 0"),
            (self.limits.max_header_bytes >= 1024, "proxy.limits.maxHeaderBytes must be >= 1024"),
            (self.health_check.path.startswith("/"), "proxy.healthCheck.path must start with '/'"),
            (self.health_check.interval > 0, "proxy.healthCheck.interval must be > 0"),
            (self.health_check.timeout > 0, "proxy.healthCheck.timeout must be > 0"),
            (self.health_check.unhealthy_threshold >= 1, "proxy.healthCheck.unhealthyThreshold >= 1"),
            (self.health_check.healthy_threshold >= 1, "proxy.healthCheck.healthyThreshold >= 1"),
            (self.ejection.consecutive_failures >= 1, "ejection.consecutiveFailures must be >= 1"),
            (self.drain_seconds >= 0, "drain seconds must be >= 0"),
            (1 <= self.workers <= 256, 'proxy.workers must be 1..256 (or "auto": one per core)'),
        ]
        problems = [message for ok, message in checks if not ok]
        if any(c in self.cluster_header for c in ":\r\n "):
            problems.append("proxy.clusterHeader must be a header name without ':', spaces or newlines")
        if self.geo.client_address_header not in CLIENT_HEADERS:
            problems.append(f"geo.clientAddressHeader must be one of {', '.join(CLIENT_HEADERS)}")
        for cidr in self.geo.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"geo.trustedProxies: {cidr!r} is not a CIDR (e.g. 10.0.0.0/8)")
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_config(
        cls, proxy: Mapping[str, Any], geo: Mapping[str, Any] | None = None, *, default_workers: object = 1
    ) -> ProxySettings:
        """Build from the camelCase ``proxy:`` and ``geo:`` mappings of the config file.
        ``default_workers``: what an unset ``proxy.workers`` means for the command (1 or "auto")."""
        try:
            host, port = parse_listen(str(proxy.get("listen", "0.0.0.0:8080")))
            admin = proxy.get("adminListen", "127.0.0.1:8081")
            admin_host, admin_port = parse_listen(str(admin)) if admin else ("127.0.0.1", None)
            hc = dict(proxy.get("healthCheck") or {})
            to = dict(proxy.get("timeouts") or {})
            lim = dict(proxy.get("limits") or {})
            rt = dict(proxy.get("retries") or {})
            st = dict(proxy.get("steering") or {})
            g = dict(geo or {})
            return cls(
                host=host,
                port=port,
                admin_host=admin_host,
                admin_port=admin_port,
                cluster_header=str(proxy.get("clusterHeader", "X-Served-By-Cluster") or ""),
                health_check=HealthCheckSettings(
                    path=str(hc.get("path", "/healthz")),
                    interval=float(hc.get("interval", 5)),
                    timeout=float(hc.get("timeout", 2)),
                    unhealthy_threshold=int(hc.get("unhealthyThreshold", 2)),
                    healthy_threshold=int(hc.get("healthyThreshold", 2)),
                ),
                timeouts=TimeoutSettings(
                    connect=float(to.get("connect", 2)),
                    read=float(to.get("read", 30)),
                    idle=float(to.get("idle", 60)),
                    request_head=float(to.get("requestHead", 10)),
                    body_read=float(to.get("bodyRead", 10)),
                    per_try=float(to.get("perTry", 3)),
                    send=float(to.get("send", 30)),
                ),
                steering=parse_steering(
                    str(st.get("kind", "nearest")),
                    order=",".join(str(n) for n in st.get("order") or ()),
                    weights=",".join(f"{k}={v}" for k, v in (st.get("weights") or {}).items()),
                    capacity=",".join(f"{k}={v}" for k, v in (st.get("capacity") or {}).items()),
                    affinity_cookie=str(st.get("affinityCookie") or ""),
                    rates=",".join(f"{k}={v}" for k, v in (st.get("maxRate") or {}).items()),
                    where="proxy.steering",
                    order_field="proxy.steering.order",
                    weights_field="proxy.steering.weights",
                ),
                retries=RetrySettings(
                    budget_ratio=float(rt.get("budgetRatio", 0.2)),
                    min_concurrent=int(rt.get("minConcurrent", 10)),
                ),
                limits=LimitSettings(
                    max_body_bytes=int(lim.get("maxBodyBytes", 10 * 1024 * 1024)),
                    max_header_bytes=int(lim.get("maxHeaderBytes", 16 * 1024)),
                    min_body_rate=int(lim.get("minBodyRate", 1024)),
                    max_connections=int(lim.get("maxConnections", 10000)),
                    max_connections_per_client=int(lim.get("maxConnectionsPerClient", 256)),
                ),
                tls=TlsSettings.from_config(proxy["tls"]) if proxy.get("tls") else None,
                workers=parse_workers(
                    proxy["workers"] if proxy.get("workers") is not None else default_workers
                ),
                geo=GeoSettings(
                    database=str(g["database"]) if g.get("database") else None,
                    trusted_proxies=tuple(str(c) for c in g.get("trustedProxies") or ()),
                    default_order=tuple(str(c) for c in g.get("defaultOrder") or ()),
                    client_address_header=_client_header(g.get("clientAddressHeader", "X-Forwarded-For")),
                ),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError([f"proxy: invalid setting: {exc}"]) from exc


def parse_workers(value: object) -> int:
    """``proxy.workers`` / ``--workers``: a whole number of processes, or "auto" (one per core)."""
    if value == "auto":
        return _usable_cores()
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ConfigError([f'proxy.workers: {value!r} must be a whole number of processes or "auto"'])
    return int(value)


# Memory one proxy process needs under load (about 60-80 MiB resident here), with headroom: "auto"
# never starts more processes than the container's memory limit holds at this much each.
WORKER_MEMORY = 128 * 1024 * 1024


def cores_available(affinity: int, cpu_max: str | None, memory_max: str | None = None) -> int:
    """Processes ``proxy.workers: auto`` starts: the CPU affinity, capped by a cgroup v2
    ``cpu.max`` quota ("QUOTA PERIOD", or "max PERIOD" for none) rounded up, and by the cgroup's
    ``memory.max`` at ``WORKER_MEMORY`` per process. A pod limited to 1.5 CPUs on a 64-core node
    gets 2, not 64; one without a CPU limit but with 512 MiB gets at most 4. Pure: the caller
    reads the affinity and the files."""
    cores = max(1, affinity)
    if cpu_max:
        quota, _, period = cpu_max.strip().partition(" ")
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    if memory_max and memory_max.strip().isdigit():
        cores = min(cores, max(1, int(memory_max.strip()) // WORKER_MEMORY))
    return cores


def _cgroup_file(name: str) -> str | None:
    try:
        return Path("/sys/fs/cgroup", name).read_text()
    except OSError:
        return None


def _usable_cores() -> int:
    """``cores_available`` for this process: its affinity and its cgroup's CPU and memory limits."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    return cores_available(affinity, _cgroup_file("cpu.max"), _cgroup_file("memory.max"))


def _client_header(value: object) -> ClientHeader:
    for name in CLIENT_HEADERS:
        if str(value).lower() == name.lower():
            return name
    raise ConfigError([f"geo.clientAddressHeader: {value!r} must be one of {', '.join(CLIENT_HEADERS)}"])


def parse_listen(value: str) -> tuple[str, int]:
    """``"0.0.0.0:8080"`` / ``"[::1]:8080"`` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError([f"listen address {value!r} must look like HOST:PORT (e.g. 0.0.0.0:8080)"])
    host = host.removeprefix("[").removesuffix("]")
    number = int(port)
    if number > 65535:
        raise ConfigError([f"listen address {value!r}: port must be 0..65535"])
    return host, number
