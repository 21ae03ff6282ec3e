"""The planner replaces and removes ACME dns-01 TXT sets it owns, and still never touches TXT
records of the user at names it owns for services."""

from __future__ import annotations

from ingressfed.core.desired import Desired
from ingressfed.core.ownership import companion
from ingressfed.core.plan import plan
from ingressfed.model import ChangeAction, RecordSet, RecordType

NAME = "_acme-challenge.shop.example.com"


def _txt(name: str, value: str) -> RecordSet:
    return RecordSet(name, RecordType.TXT, 60, (f'"{value}"',))


def test_a_withdrawn_challenge_txt_and_its_companion_are_deleted() -> None:
    current = [_txt(NAME, "abc"), companion(NAME, owner_id="me", resource=f"acme/{NAME}", ttl=60)]
    changes = plan(current, [], owner_id="me").changes.items
    assert {(c.action, c.old.name if c.old else "") for c in changes} == {
        (ChangeAction.DELETE, NAME),
        (ChangeAction.DELETE, f"_ingressfed.{NAME}"),
    }


def test_a_new_challenge_value_replaces_the_old_one() -> None:
    current = [_txt(NAME, "old"), companion(NAME, owner_id="me", resource=f"acme/{NAME}", ttl=60)]
    changes = plan(current, [Desired(_txt(NAME, "new"), f"acme/{NAME}")], owner_id="me").changes.items
    assert [(c.action, c.new) for c in changes] == [(ChangeAction.UPDATE, _txt(NAME, "new"))]


def test_user_txt_at_an_owned_service_name_is_left_alone() -> None:
    host = "web.example.com"
    a = RecordSet(host, RecordType.A, 30, ("192.0.2.1",))
    current = [a, _txt(host, "v=spf1 -all"), companion(host, owner_id="me", resource="service/d/web", ttl=30)]
    changes = plan(current, [], owner_id="me").changes.items
    assert all(c.old is None or c.old.type is not RecordType.TXT or c.old.name != host for c in changes)
    assert any(c.action is ChangeAction.DELETE and c.old == a for c in changes)
