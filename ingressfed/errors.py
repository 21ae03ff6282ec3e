"""One root error for everything ingressfed raises on purpose.

Transient errors are retried on the next reconcile; everything else surfaces
(object status, metrics, exit code). SDK errors are wrapped with ``from``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "IngressfedError",
    "InvalidRecordError",
    "PermanentProviderError",
    "ProviderError",
    "RecordConflictError",
    "RecordNotFoundError",
    "TransientProviderError",
]


class IngressfedError(Exception):
    """Root of every error ingressfed raises deliberately."""


class ConfigError(IngressfedError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class ProviderError(IngressfedError):
    """A DNS provider refused or failed a call.

    ``record`` names the record set at fault where the provider told us which;
    ``batch_wide`` says that none is (the whole call was refused).
    """

    transient: bool = False

    def __init__(
        self, message: str, *, provider: str = "", record: str | None = None, batch_wide: bool = False
    ) -> None:
        self.provider = provider
        self.record = record
        # No single record is to blame (credentials, permissions, missing zone): failure
        # isolation must not bisect the batch to find one.
        self.batch_wide = batch_wide
        prefix = f"{provider}: " if provider else ""
        super().__init__(prefix + message)


class TransientProviderError(ProviderError):
    """Throttling, timeouts, 5xx, conflicts from concurrent writers: retry next cycle."""

    transient = True


class PermanentProviderError(ProviderError):
    """Bad credentials, missing zone, rejected record: retrying will not help."""


class RecordConflictError(PermanentProviderError):
    """Creating a record set that already exists (or a CNAME beside other data)."""


class RecordNotFoundError(PermanentProviderError):
    """Deleting or updating a record set that is not there (or differs)."""


class InvalidRecordError(PermanentProviderError):
    """The provider rejected a record set as malformed."""
