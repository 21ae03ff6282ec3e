"""One kubernetes-asyncio ApiClient per member cluster.

A member is reached through a kubeconfig file and context, a kubeconfig kept
in a Secret of the host cluster (key ``kubeconfig`` by default, as ``join``
writes it), or the in-cluster service account for the host itself.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import yaml
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import (
    ConfigException,
    load_incluster_config,
    load_kube_config,
    load_kube_config_from_dict,
)

from ingressfed.errors import IngressfedError
from ingressfed.kube.members import KubeconfigSource, SecretRef
from ingressfed.kube.rest import KubeApiError, request_json

__all__ = ["ClientError", "ClientPool", "connect", "kubeconfig_from_secret"]

log = logging.getLogger(__name__)

_MAX_KUBECONFIG = 1024 * 1024


class ClientError(IngressfedError):
    """A member's client could not be built (bad kubeconfig, missing Secret or context)."""


async def kubeconfig_from_secret(host: ApiClient, ref: SecretRef) -> dict[str, Any]:
    """The kubeconfig stored under ``ref.key`` of a Secret in the host cluster."""
    path = f"/api/v1/namespaces/{ref.namespace}/secrets/{ref.name}"
    try:
        secret = await request_json(host, "GET", path)
    except KubeApiError as exc:
        raise ClientError(f"cannot read Secret {ref.namespace}/{ref.name}: {exc}") from exc
    data = secret.get("data")
    encoded = data.get(ref.key) if isinstance(data, Mapping) else None
    if not isinstance(encoded, str) or len(encoded) > _MAX_KUBECONFIG:
        raise ClientError(f"Secret {ref.namespace}/{ref.name} has no data key {ref.key!r} (a kubeconfig)")
    try:
        doc = yaml.safe_load(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, yaml.YAMLError) as exc:
        raise ClientError(
            f"Secret {ref.namespace}/{ref.name} key {ref.key!r} is not a kubeconfig: {exc}"
        ) from exc
    if not isinstance(doc, dict):
        raise ClientError(f"Secret {ref.namespace}/{ref.name} key {ref.key!r} is not a kubeconfig mapping")
    return doc


async def connect(source: KubeconfigSource, *, host: ApiClient | None = None) -> ApiClient:
    """A new ApiClient for ``source``; the caller closes it."""
    config = Configuration()
    try:
        if source.in_cluster:
            load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        elif source.secret is not None:
            if host is None:
                raise ClientError(
                    f"kubeconfig Secret {source.secret.namespace}/{source.secret.name} needs a host cluster "
                    "(set source.hostKubeconfig)"
                )
            doc = await kubeconfig_from_secret(host, source.secret)
            await load_kube_config_from_dict(doc, context=source.context, client_configuration=config)
        else:
            path = os.path.expanduser(source.path) if source.path else None  # noqa: ASYNC240 - no I/O
            await load_kube_config(
                config_file=path, context=source.context, client_configuration=config, persist_config=False
            )
    except (ConfigException, OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        where = source.path or "~/.kube/config"
        raise ClientError(f"cannot load kubeconfig {where} context {source.context!r}: {exc}") from exc
    return ApiClient(configuration=config)


class ClientPool:
    """Clients by member name; closes every client it made on exit."""

    def __init__(self, *, host: ApiClient | None = None) -> None:
        self._host = host
        self._clients: dict[str, tuple[KubeconfigSource, ApiClient]] = {}

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name in list(self._clients):
            await self.drop(name)

    async def get(self, name: str, source: KubeconfigSource) -> ApiClient:
        """The member's client, rebuilt when its source changed."""
        held = self._clients.get(name)
        if held is not None:
            if held[0] == source:
                return held[1]
            await self.drop(name)
        client = await connect(source, host=self._host)
        self._clients[name] = (source, client)
        return client

    def current(self, name: str) -> ApiClient | None:
        """The member's client if one is open (status write-back uses the informers' clients)."""
        held = self._clients.get(name)
        return held[1] if held is not None else None

    async def drop(self, name: str) -> None:
        held = self._clients.pop(name, None)
        if held is not None:
            await held[1].close()
