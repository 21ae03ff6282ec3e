"""The geo-aware global L7 proxy: ``ProxyServer`` and its settings (see docs/proxy.md)."""

from ingressfed.proxy.server import ProxyServer
from ingressfed.proxy.settings import (
    EjectionSettings,
    GeoSettings,
    HealthCheckSettings,
    LimitSettings,
    ProxySettings,
    RetrySettings,
    TimeoutSettings,
)

__all__ = [
    "EjectionSettings",
    "GeoSettings",
    "HealthCheckSettings",
    "LimitSettings",
    "ProxyServer",
    "ProxySettings",
    "RetrySettings",
    "TimeoutSettings",
]
