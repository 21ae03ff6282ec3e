"""The error classifier: one pure lookup per provider table."""

from __future__ import annotations

import pytest

from ingressfed.errors import InvalidRecordError, PermanentProviderError, TransientProviderError
from providers.clouddns import ERRORS as CLOUDDNS
from providers.embedded import ERRORS as EMBEDDED
from providers.errortable import ErrorTable, Rule, Scope
from providers.rfc2136 import ERRORS as RFC2136
from providers.route53 import ERRORS as ROUTE53
from providers.webhook import ERRORS as WEBHOOK


def test_codes_win_over_statuses_and_5xx_is_transient() -> None:
    table = ErrorTable(
        "x", codes={"Slow": Rule(Scope.TRANSIENT)}, statuses={400: Rule(Scope.BATCH, "fix it")}
    )
    assert table.rule(code="Slow", status=400).scope is Scope.TRANSIENT
    assert table.rule(status=400).scope is Scope.BATCH
    assert table.rule(status=503).scope is Scope.TRANSIENT
    assert table.rule(status=429).scope is Scope.TRANSIENT
    assert table.rule(status=418).scope is Scope.RECORD  # the default
    err = table.error("refused", status=400, record="www.example.com")
    assert isinstance(err, PermanentProviderError) and err.batch_wide and err.record is None
    assert str(err) == "x: refused; fix it"


@pytest.mark.parametrize(
    ("table", "code", "status", "scope"),
    [
        (ROUTE53, "AccessDenied", 403, Scope.BATCH),
        (ROUTE53, "", 403, Scope.BATCH),  # an auth failure without an error code
        (ROUTE53, "Throttling", 400, Scope.TRANSIENT),
        (ROUTE53, "PriorRequestNotComplete", 400, Scope.TRANSIENT),
        (ROUTE53, "InvalidChangeBatch", 400, Scope.RECORD),
        (ROUTE53, "NoSuchHostedZone", 404, Scope.BATCH),
        (CLOUDDNS, "", 403, Scope.BATCH),
        (CLOUDDNS, "", 400, Scope.RECORD),
        (CLOUDDNS, "", 412, Scope.TRANSIENT),
        (WEBHOOK, "", 401, Scope.BATCH),
        (WEBHOOK, "", 400, Scope.RECORD),
        (WEBHOOK, "unreachable", None, Scope.TRANSIENT),
        (RFC2136, "NOTAUTH", None, Scope.BATCH),
        (RFC2136, "REFUSED", None, Scope.RECORD),
        (RFC2136, "YXRRSET", None, Scope.TRANSIENT),
        (EMBEDDED, "ENOTDIR", None, Scope.BATCH),
        (EMBEDDED, "ENOSPC", None, Scope.TRANSIENT),
    ],
)
def test_provider_tables(table: ErrorTable, code: str, status: int | None, scope: Scope) -> None:
    assert table.rule(code=code, status=status).scope is scope
    err = table.error("m", code=code, status=status, record="a.example.com")
    assert isinstance(err, TransientProviderError) is (scope is Scope.TRANSIENT)
    assert err.batch_wide is (scope is Scope.BATCH)
    assert err.provider == table.provider


def test_record_rules_keep_the_record_and_the_error_class() -> None:
    err = ROUTE53.error("bad value", code="InvalidChangeBatch", status=400, record="a.example.com")
    assert isinstance(err, InvalidRecordError) and err.record == "a.example.com"
