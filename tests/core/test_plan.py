import pytest

from ingressfed.core.desired import Desired
from ingressfed.core.ownership import companion, companion_name, owner_value
from ingressfed.core.plan import plan
from ingressfed.model import ChangeAction, Changes, Policy, RecordSet, RecordType

A, AAAA, CNAME, TXT, MX = RecordType.A, RecordType.AAAA, RecordType.CNAME, RecordType.TXT, "MX"
OWNER = "me"
RES = "service/default/web"
N = "web.example.com"


def rs(name: str, t: RecordType, *values: str, ttl: int = 30, ident: str | None = None) -> RecordSet:
    return RecordSet(name, t, ttl, tuple(values), ident)


def comp(name: str = N, owner: str = OWNER, resource: str = RES, ttl: int = 30) -> RecordSet:
    return companion(name, owner_id=owner, resource=resource, ttl=ttl)


def want(*sets: RecordSet, resource: str = RES) -> list[Desired]:
    return [Desired(s, resource) for s in sets]


def apply_to(current: list[RecordSet], changes: Changes) -> list[RecordSet]:
    """Strict application, like a real zone: what plan emits must be appliable."""
    state = {r.key: r for r in current}
    for c in changes.items:
        if c.old is not None:
            assert state.get(c.old.key) == c.old, f"{c.action} of a set that differs: {c.old}"
            del state[c.old.key]
        if c.new is not None:
            assert c.new.key not in state, f"create of an existing set: {c.new}"
            state[c.new.key] = c.new
    return list(state.values())


def actions(changes: Changes) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.record.name, c.record.type.value) for c in changes.items]


CASES = {
    "create on empty zone": (
        [],
        want(rs(N, A, "10.0.0.1")),
        Policy.SYNC,
        [("CREATE", companion_name(N), "TXT"), ("CREATE", N, "A")],
    ),
    "update values": (
        [rs(N, A, "10.0.0.1"), comp()],
        want(rs(N, A, "10.0.0.2")),
        Policy.SYNC,
        [("UPDATE", N, "A")],
    ),
    "ttl change": (
        [rs(N, A, "10.0.0.1"), comp()],
        want(rs(N, A, "10.0.0.1", ttl=60)),
        Policy.SYNC,
        [("UPDATE", companion_name(N), "TXT"), ("UPDATE", N, "A")],
    ),
    "delete when no longer desired": (
        [rs(N, A, "10.0.0.1"), rs(N, AAAA, "2001:db8::1"), comp()],
        [],
        Policy.SYNC,
        [("DELETE", N, "A"), ("DELETE", N, "AAAA"), ("DELETE", companion_name(N), "TXT")],
    ),
    "add AAAA beside A": (
        [rs(N, A, "10.0.0.1"), comp()],
        want(rs(N, A, "10.0.0.1"), rs(N, AAAA, "2001:db8::1")),
        Policy.SYNC,
        [("CREATE", N, "AAAA")],
    ),
    "A to CNAME is one change plus the AAAA delete": (
        [rs(N, A, "10.0.0.1"), rs(N, AAAA, "2001:db8::1"), comp()],
        want(rs(N, CNAME, "up.example.com")),
        Policy.SYNC,
        [("DELETE", N, "AAAA"), ("UPDATE", N, "CNAME")],
    ),
    "CNAME to A is one change": (
        [rs(N, CNAME, "up.example.com"), comp()],
        want(rs(N, A, "10.0.0.1")),
        Policy.SYNC,
        [("UPDATE", N, "A")],
    ),
    "foreign records untouched (sync)": (
        [rs(N, A, "192.0.2.1")],
        want(rs(N, A, "10.0.0.1")),
        Policy.SYNC,
        [],
    ),
    "another owner's name untouched": (
        [rs(N, A, "10.0.0.1"), comp(owner="other")],
        [],
        Policy.SYNC,
        [],
    ),
    "foreign name not desired is never deleted": (
        [rs("other.example.com", A, "192.0.2.1"), rs("example.com", "SOA", "x")],  # type: ignore[arg-type]
        [],
        Policy.SYNC,
        [],
    ),
    "upsert-only does not delete": (
        [rs(N, A, "10.0.0.1"), comp()],
        [],
        Policy.UPSERT_ONLY,
        [],
    ),
    "upsert-only updates": (
        [rs(N, A, "10.0.0.1"), comp()],
        want(rs(N, A, "10.0.0.3")),
        Policy.UPSERT_ONLY,
        [("UPDATE", N, "A")],
    ),
    "upsert-only cannot swap when a delete is needed": (
        [rs(N, A, "10.0.0.1"), rs(N, AAAA, "2001:db8::1"), comp()],
        want(rs(N, CNAME, "up.example.com")),
        Policy.UPSERT_ONLY,
        [],
    ),
    "create-only creates but never updates": (
        [rs(N, A, "10.0.0.1"), comp()],
        want(rs(N, A, "10.0.0.2"), rs("new.example.com", A, "10.0.0.9")),
        Policy.CREATE_ONLY,
        [("CREATE", companion_name("new.example.com"), "TXT"), ("CREATE", "new.example.com", "A")],
    ),
    "CNAME beside foreign MX is a conflict": (
        [RecordSet(N, RecordType.TXT, 30, ('"v=spf1"',))],
        want(rs(N, CNAME, "up.example.com")),
        Policy.SYNC,
        [],
    ),
    "plain to routed sets": (
        [rs(N, A, "10.0.0.1", "10.0.0.2"), comp()],
        want(rs(N, A, "10.0.0.1", ident="us"), rs(N, A, "10.0.0.2", ident="eu")),
        Policy.SYNC,
        [("DELETE", N, "A"), ("CREATE", N, "A"), ("CREATE", N, "A")],
    ),
}


@pytest.mark.parametrize("case", CASES.keys())
def test_plan_table(case: str) -> None:
    current, desired, policy, expected = CASES[case]
    p = plan(current, desired, owner_id=OWNER, policy=policy)
    assert actions(p.changes) == expected
    after = apply_to(list(current), p.changes)
    # Idempotency: planning again against the result changes nothing.
    again = plan(after, desired, owner_id=OWNER, policy=policy)
    assert again.changes.items == ()
    if policy is Policy.SYNC and not p.conflicts:
        # Under sync the zone now holds exactly the desired sets at our names.
        ours = {d.record.name for d in desired}
        assert {r for r in after if r.name in ours} == {d.record for d in desired}


@pytest.mark.parametrize(
    "case",
    [
        "foreign records untouched (sync)",
        "CNAME beside foreign MX is a conflict",
        "upsert-only cannot swap when a delete is needed",
    ],
)
def test_conflicts_are_reported(case: str) -> None:
    current, desired, policy, _ = CASES[case]
    p = plan(current, desired, owner_id=OWNER, policy=policy)
    assert p.conflicts, "a skipped name must be reported"


def test_foreign_records_untouched_under_every_policy() -> None:
    foreign = [
        rs(N, A, "192.0.2.1"),
        rs("x.example.com", CNAME, "y.example.com"),
        comp("z.example.com", owner="other"),
    ]
    for policy in Policy:
        for desired in ([], want(rs(N, A, "10.0.0.1")), want(rs("z.example.com", A, "10.0.0.1"))):
            p = plan(foreign, desired, owner_id=OWNER, policy=policy)
            touched = {c.record.key for c in p.changes.items}
            assert not touched & {r.key for r in foreign}


def test_changes_grouped_by_name() -> None:
    desired = want(*(rs(f"n{i}.example.com", A, f"10.0.0.{i}") for i in range(5)))
    p = plan([], desired, owner_id=OWNER)
    names = [c.record.name.removeprefix("_ingressfed.") for c in p.changes.items]
    groups = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert len(groups) == len(set(groups)) == 5


def test_owner_value_fixed_order() -> None:
    assert (
        owner_value("id", RES)
        == '"heritage=ingressfed,ingressfed/owner=id,ingressfed/resource=service/default/web"'
    )


def test_update_changes_carry_old_and_new() -> None:
    p = plan([rs(N, A, "10.0.0.1"), comp()], want(rs(N, A, "10.0.0.2")), owner_id=OWNER)
    (c,) = p.changes.items
    assert c.action is ChangeAction.UPDATE and c.old is not None and c.new is not None
    assert c.old.values == ("10.0.0.1",) and c.new.values == ("10.0.0.2",)
