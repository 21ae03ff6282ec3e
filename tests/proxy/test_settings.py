"""ProxySettings from the config file's sections, and the problems it names."""

from __future__ import annotations

import pytest

from ingressfed.config import GeoSection, ProxySection
from ingressfed.errors import ConfigError
from ingressfed.proxy.settings import (
    GeoSettings,
    ProxySettings,
    TimeoutSettings,
    cores_available,
    parse_listen,
)


def test_from_config_sections() -> None:
    proxy = ProxySection.model_validate(
        {
            "listen": "[::1]:9443",
            "adminListen": "127.0.0.1:18081",
            "clusterHeader": "",
            "healthCheck": {"path": "/ready", "interval": 1, "timeout": 0.5, "unhealthyThreshold": 3},
            "timeouts": {"connect": 1, "read": 5, "idle": 7, "requestHead": 3, "bodyRead": 4},
            "limits": {
                "maxBodyBytes": 1000,
                "maxHeaderBytes": 4096,
                "minBodyRate": 10,
                "maxConnections": 50,
                "maxConnectionsPerClient": 5,
            },
        }
    )
    geo = GeoSection.model_validate(
        {"trustedProxies": ["10.0.0.0/8"], "defaultOrder": ["a", "b"], "clientAddressHeader": "Forwarded"}
    )
    settings = ProxySettings.from_config(proxy.model_dump(by_alias=True), geo.model_dump(by_alias=True))
    assert (settings.host, settings.port, settings.admin_port) == ("::1", 9443, 18081)
    assert settings.cluster_header == ""
    assert settings.health_check.path == "/ready"
    assert settings.health_check.unhealthy_threshold == 3
    assert settings.health_check.healthy_threshold == 2
    assert settings.timeouts == TimeoutSettings(connect=1, read=5, idle=7, request_head=3, body_read=4)
    assert settings.limits.max_body_bytes == 1000
    limits = settings.limits
    assert (limits.min_body_rate, limits.max_connections, limits.max_connections_per_client) == (10, 50, 5)
    assert settings.geo == GeoSettings(
        database=None,
        trusted_proxies=("10.0.0.0/8",),
        default_order=("a", "b"),
        client_address_header="Forwarded",
    )


def test_every_problem_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        ProxySettings(
            port=70000,
            cluster_header="Bad Header:",
            timeouts=TimeoutSettings(connect=0, request_head=0),
            geo=GeoSettings(trusted_proxies=("not-a-cidr",)),
        )
    text = "\n".join(info.value.problems)
    assert "proxy.listen" in text
    assert "clusterHeader" in text
    assert "timeouts.connect" in text
    assert "timeouts.requestHead" in text
    assert "not-a-cidr" in text


@pytest.mark.parametrize("bad", ["8080", "host:", ":80", "host:99999", "host:http"])
def test_parse_listen_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(bad)


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "cores"),
    [
        (8, None, 8),  # no cgroup file: the affinity
        (8, "max 100000\n", 8),  # no quota
        (64, "150000 100000\n", 2),  # 1.5 CPUs: rounded up
        (64, "100000 100000", 1),
        (2, "800000 100000", 2),  # a quota above the affinity: the affinity
        (4, "50000 100000", 1),  # half a CPU: still one process
        (4, "garbage", 4),  # unreadable: ignored
        (0, None, 1),
    ],
)
def test_workers_auto_counts_usable_cores(affinity: int, cpu_max: str | None, cores: int) -> None:
    assert cores_available(affinity, cpu_max) == cores


@pytest.mark.parametrize(
    ("affinity", "memory_max", "cores"),
    [
        (64, "536870912\n", 4),  # 512 MiB, no CPU limit: as many as the memory holds
        (64, "max\n", 64),  # no memory limit
        (2, "536870912", 2),  # the cores are the smaller cap
        (8, "100000000", 1),  # less than one process's worth: still one
        (8, None, 8),
    ],
)
def test_workers_auto_fits_the_memory_limit(affinity: int, memory_max: str | None, cores: int) -> None:
    assert cores_available(affinity, None, memory_max) == cores


def test_steering_from_config_names_its_fields() -> None:
    proxy = ProxySection.model_validate(
        {"steering": {"kind": "failover", "order": ["a", "b"], "capacity": {"a": 10}, "maxRate": {"b": 500}}}
    )
    steering = ProxySettings.from_config(proxy.model_dump(by_alias=True)).steering
    assert (steering.order, steering.capacity, steering.rates) == (("a", "b"), (("a", 10),), (("b", 500),))
    with pytest.raises(ConfigError) as info:
        ProxySettings.from_config(
            ProxySection.model_validate({"steering": {"kind": "failover"}}).model_dump(by_alias=True)
        )
    assert "proxy.steering.order" in "\n".join(info.value.problems)
    with pytest.raises(ConfigError) as info:
        ProxySettings.from_config(
            ProxySection.model_validate({"steering": {"maxRate": {"a": 0}}}).model_dump(by_alias=True)
        )
    assert "max rate must be at least 1" in "\n".join(info.value.problems)
