"""HTTPS settings of a proxy: the ``proxy.tls`` config section as frozen dataclasses.

Every HTTP/2 protection is a bound with a safe default; ``from_config`` reads the camelCase
mapping the config file validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingressfed.errors import ConfigError

__all__ = ["HstsSettings", "Http2Settings", "TlsSettings"]


@dataclass(frozen=True, slots=True)
class HstsSettings:
    max_age: int = 0  # seconds; 0: no Strict-Transport-Security header
    include_subdomains: bool = False

    def header(self) -> bytes:
        """The header line, or b"" when HSTS is off."""
        if self.max_age <= 0:
            return b""
        sub = b"; includeSubDomains" if self.include_subdomains else b""
        return b"Strict-Transport-Security: max-age=%d%b\r\n" % (self.max_age, sub)


@dataclass(frozen=True, slots=True)
class Http2Settings:
    """Bounds against the known HTTP/2 attacks (each counted per client connection)."""

    enabled: bool = True
    max_concurrent_streams: int = 100  # SETTINGS_MAX_CONCURRENT_STREAMS; more is refused
    # Rapid reset (CVE-2023-44487): streams the client opens then cancels, per window.
    max_resets: int = 200
    reset_window: float = 10.0
    # CONTINUATION flood (CVE-2024-27316) and HPACK bombs: the decoded header list of one request.
    max_header_list_bytes: int = 16 * 1024
    max_header_frames: int = 16  # HEADERS + CONTINUATION frames of one header block
    # SETTINGS/PING/empty-frame floods: control frames per window.
    max_control_frames: int = 1000
    control_window: float = 10.0
    # A peer that leaves the flow-control window at zero while a response waits.
    stall_timeout: float = 30.0
    initial_window_bytes: int = 1024 * 1024  # what we let a client send per stream before reading


@dataclass(frozen=True, slots=True)
class TlsSettings:
    host: str = "0.0.0.0"
    port: int = 8443
    certificate_dir: str | None = None  # directory source (see ingressfed/tls/directory.py)
    default_certificate: str | None = None  # a pair name in certificate_dir for unknown SNI names
    redirect_http: bool = False  # plain HTTP requests for hosts with a certificate get 308 -> https
    redirect_port: int = 443  # the HTTPS port clients see (the Service's, not the pod's)
    hsts: HstsSettings = field(default_factory=HstsSettings)
    handshake_timeout: float = 10.0
    http2: Http2Settings = field(default_factory=Http2Settings)

    def __post_init__(self) -> None:
        h2 = self.http2
        checks = [
            (0 <= self.port <= 65535, "proxy.tls.listen: port must be 0..65535"),
            (1 <= self.redirect_port <= 65535, "proxy.tls.redirectPort must be 1..65535"),
            (self.handshake_timeout > 0, "proxy.tls.handshakeTimeout must be > 0 seconds"),
            (self.hsts.max_age >= 0, "proxy.tls.hsts.maxAge must be >= 0 seconds"),
            (1 <= h2.max_concurrent_streams <= 10000, "proxy.tls.http2.maxConcurrentStreams: 1..10000"),
            (h2.max_resets >= 1 and h2.reset_window > 0, "proxy.tls.http2.maxResets/resetWindow must be > 0"),
            (h2.max_header_list_bytes >= 1024, "proxy.tls.http2.maxHeaderListBytes must be >= 1024"),
            (h2.max_header_frames >= 1, "proxy.tls.http2.maxHeaderFrames must be >= 1"),
            (h2.max_control_frames >= 10 and h2.control_window > 0, "proxy.tls.http2.maxControlFrames >= 10"),
            (h2.stall_timeout > 0, "proxy.tls.http2.stallTimeout must be > 0 seconds"),
            (65535 <= h2.initial_window_bytes < 2**31, "proxy.tls.http2.initialWindowBytes: 65535..2^31-1"),
        ]
        problems = [message for ok, message in checks if not ok]
        if self.default_certificate and not self.certificate_dir:
            problems.append(
                "proxy.tls.defaultCertificate needs proxy.tls.certificateDir (it names a pair there)"
            )
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_config(cls, tls: Mapping[str, Any]) -> TlsSettings:
        from ingressfed.proxy.settings import parse_listen

        try:
            host, port = parse_listen(str(tls.get("listen", "0.0.0.0:8443")))
            hsts = dict(tls.get("hsts") or {})
            h2 = dict(tls.get("http2") or {})
            d = Http2Settings()
            return cls(
                host=host,
                port=port,
                certificate_dir=str(tls["certificateDir"]) if tls.get("certificateDir") else None,
                default_certificate=str(tls["defaultCertificate"]) if tls.get("defaultCertificate") else None,
                redirect_http=bool(tls.get("redirectHttp", False)),
                redirect_port=int(tls.get("redirectPort", 443)),
                hsts=HstsSettings(
                    max_age=int(hsts.get("maxAge", 0)),
                    include_subdomains=bool(hsts.get("includeSubDomains", False)),
                ),
                handshake_timeout=float(tls.get("handshakeTimeout", 10)),
                http2=Http2Settings(
                    enabled=bool(h2.get("enabled", True)),
                    max_concurrent_streams=int(h2.get("maxConcurrentStreams", d.max_concurrent_streams)),
                    max_resets=int(h2.get("maxResets", d.max_resets)),
                    reset_window=float(h2.get("resetWindow", d.reset_window)),
                    max_header_list_bytes=int(h2.get("maxHeaderListBytes", d.max_header_list_bytes)),
                    max_header_frames=int(h2.get("maxHeaderFrames", d.max_header_frames)),
                    max_control_frames=int(h2.get("maxControlFrames", d.max_control_frames)),
                    control_window=float(h2.get("controlWindow", d.control_window)),
                    stall_timeout=float(h2.get("stallTimeout", d.stall_timeout)),
                    initial_window_bytes=int(h2.get("initialWindowBytes", d.initial_window_bytes)),
                ),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError([f"proxy.tls: invalid setting: {exc}"]) from exc
