"""One way to classify what a DNS backend refused: a table per provider, one pure lookup.

Every backend error falls in one of three scopes, and the scope decides what
failure isolation does with it:

- ``TRANSIENT``: throttling, timeouts, 5xx, concurrent edits. Retried (in the
  call with backoff where the provider does so, else next reconcile).
- ``RECORD``: permanent, and some record in the batch is to blame (malformed
  value, conflict). The batch is split to find it (by the name the error
  carries, else by bisection); every other record is still applied.
- ``BATCH``: permanent, and no record is to blame (credentials, permissions,
  a missing zone, a server that is not authoritative). Raised once for the
  whole batch: bisecting would only repeat the refusal once per record.

A provider declares its table (:class:`ErrorTable`) next to its code: rules by
the backend's error code (Route53 ``AccessDenied``, a DNS RCODE name) and by
HTTP status, each with the scope and, where useful, a hint naming the fix.
``ErrorTable.error`` builds the ingressfed error from a code, a status and a
message; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ingressfed.errors import PermanentProviderError, ProviderError, TransientProviderError

__all__ = ["ErrorTable", "Rule", "Scope"]


class Scope(StrEnum):
    TRANSIENT = "transient"
    RECORD = "record"
    BATCH = "batch"


@dataclass(frozen=True, slots=True)
class Rule:
    scope: Scope
    hint: str = ""
    # The error class for a permanent rule (e.g. RecordConflictError for "already exists").
    error: type[PermanentProviderError] = PermanentProviderError


_TRANSIENT = Rule(Scope.TRANSIENT)


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """How one provider's backend errors map to scopes. Codes win over statuses;
    429 and 5xx are transient unless the table says otherwise."""

    provider: str
    codes: Mapping[str, Rule] = field(default_factory=dict)
    statuses: Mapping[int, Rule] = field(default_factory=dict)
    default: Rule = Rule(Scope.RECORD)

    def rule(self, *, code: str = "", status: int | None = None) -> Rule:
        """The rule for an error (pure)."""
        if code and code in self.codes:
            return self.codes[code]
        if status is not None:
            if status in self.statuses:
                return self.statuses[status]
            if status == 429 or status >= 500:
                return _TRANSIENT
        return self.default

    def error(
        self, message: str, *, code: str = "", status: int | None = None, record: str | None = None
    ) -> ProviderError:
        """The ingressfed error for a backend error: message, then the hint when there is one."""
        rule = self.rule(code=code, status=status)
        text = f"{message}; {rule.hint}" if rule.hint else message
        if rule.scope is Scope.TRANSIENT:
            return TransientProviderError(text, provider=self.provider, record=record)
        batch = rule.scope is Scope.BATCH
        return rule.error(text, provider=self.provider, record=None if batch else record, batch_wide=batch)
