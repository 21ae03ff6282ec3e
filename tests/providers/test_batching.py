"""Batch splitting, failure isolation and backoff (pure helpers, fake backends)."""

from __future__ import annotations

import pytest

from ingressfed.core.ownership import companion
from ingressfed.errors import InvalidRecordError, PermanentProviderError, TransientProviderError
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from providers.batching import (
    Backoff,
    BatchLimits,
    Cost,
    apply_in_batches,
    apply_isolating,
    default_cost,
    groups,
    retrying,
    split,
)


def a(name: str, *values: str) -> RecordSet:
    return RecordSet(name, RecordType.A, 30, values or ("192.0.2.1",))


def named(name: str) -> tuple[Change, Change]:
    """A name's create and its companion's, as the plan emits them."""
    return (
        Change(ChangeAction.CREATE, new=companion(name, owner_id="o", resource="service/d/x", ttl=30)),
        Change(ChangeAction.CREATE, new=a(name)),
    )


def plan_of(count: int) -> Changes:
    return Changes(tuple(c for i in range(count) for c in named(f"n{i}.example.com")))


def test_groups_keep_companion_with_its_name() -> None:
    gs = groups(plan_of(3))
    assert [[c.record.name for c in g] for g in gs] == [
        ["_ingressfed.n0.example.com", "n0.example.com"],
        ["_ingressfed.n1.example.com", "n1.example.com"],
        ["_ingressfed.n2.example.com", "n2.example.com"],
    ]


@pytest.mark.parametrize("limit", [2, 3, 5, 10, 1000])
def test_split_by_count_never_separates_a_name(limit: int) -> None:
    changes = plan_of(7)
    batches = split(changes, BatchLimits(max_changes=limit))
    assert all(len(b) <= limit for b in batches)
    assert [c for b in batches for c in b.items] == list(changes.items)  # order kept, nothing lost
    for b in batches:
        names = {c.record.name.removeprefix("_ingressfed.") for c in b.items}
        assert all(sum(1 for c in b.items if c.record.name.endswith(n)) == 2 for n in names)
    # Pairs pack greedily: ceil(changes / (limit rounded down to whole names)).
    per_batch = limit - limit % 2
    assert len(batches) == -(-14 // per_batch)


def test_split_by_values_and_characters() -> None:
    sets = [a(f"n{i}.example.com", *(f"192.0.2.{j}" for j in range(1, 5))) for i in range(6)]
    changes = Changes(tuple(Change(ChangeAction.CREATE, new=rs) for rs in sets))
    by_values = split(changes, BatchLimits(max_changes=None, max_values=8))
    assert [len(b) for b in by_values] == [2, 2, 2]
    chars_each = default_cost(changes.items[0]).chars
    by_chars = split(changes, BatchLimits(max_changes=None, max_chars=3 * chars_each))
    assert [len(b) for b in by_chars] == [3, 3]


def test_oversized_group_and_change_still_go_out() -> None:
    big = a("big.example.com", *(f"192.0.2.{j}" for j in range(1, 11)))
    changes = Changes(
        (
            Change(ChangeAction.CREATE, new=a("x.example.com")),
            Change(ChangeAction.CREATE, new=big),
            Change(ChangeAction.CREATE, new=a("y.example.com")),
        )
    )
    batches = split(changes, BatchLimits(max_values=4))
    assert [[c.record.name for c in b.items] for b in batches] == [
        ["x.example.com"],
        ["big.example.com"],
        ["y.example.com"],
    ]


def test_custom_cost_counts_updates_twice() -> None:
    old, new = a("u.example.com", "192.0.2.1"), a("u.example.com", "192.0.2.2")
    changes = Changes(tuple(Change(ChangeAction.UPDATE, old=old, new=new) for _ in range(4)))

    def upsert_twice(c: Change) -> Cost:
        base = default_cost(c)
        return Cost(base.changes, base.values * 2, base.chars * 2)

    # Not a real plan (same name four times is one group); the limit still holds per change.
    batches = split(changes, BatchLimits(max_values=4), cost=upsert_twice)
    assert [len(b) for b in batches] == [2, 2]


class Backend:
    """Refuses any batch holding a bad name, optionally naming it, and counts calls."""

    def __init__(self, bad: set[str], *, names_record: bool) -> None:
        self.bad = bad
        self.names_record = names_record
        self.applied: list[str] = []
        self.calls = 0

    async def apply_batch(self, changes: Changes) -> None:
        self.calls += 1
        for c in changes.items:
            if c.record.name in self.bad:
                raise InvalidRecordError("bad value", record=c.record.name if self.names_record else None)
        self.applied.extend(c.record.name for c in changes.items)


@pytest.mark.parametrize("names_record", [True, False])
async def test_isolating_applies_every_good_group(names_record: bool) -> None:
    changes = plan_of(16)
    bad = {"n3.example.com", "n11.example.com"}
    backend = Backend(bad, names_record=names_record)
    result = await apply_isolating(backend.apply_batch, changes)
    assert result.applied == 28
    assert set(result.failed) == bad | {f"_ingressfed.{n}" for n in bad}
    assert all("bad value" in reason for reason in result.failed.values())
    assert set(backend.applied) == {c.record.name for c in changes.items} - set(result.failed)
    # Named errors need one call per bad record; bisection about 2 log2(n) per bad record.
    assert backend.calls <= (3 if names_record else 2 * 2 * 5 + 1)


async def test_isolating_reports_whole_batch_when_all_bad() -> None:
    changes = plan_of(4)
    backend = Backend({f"n{i}.example.com" for i in range(4)}, names_record=False)
    result = await apply_isolating(backend.apply_batch, changes)
    assert result.applied == 0
    assert len(result.failed) == 8
    assert backend.applied == []


async def test_transient_errors_propagate_without_isolation() -> None:
    calls = 0

    async def flaky(changes: Changes) -> None:
        nonlocal calls
        calls += 1
        raise TransientProviderError("throttled")

    with pytest.raises(TransientProviderError):
        await apply_in_batches(flaky, plan_of(5), BatchLimits(max_changes=4))
    assert calls == 1


async def test_batch_wide_permanent_errors_are_not_bisected() -> None:
    calls = 0

    async def forbidden(changes: Changes) -> None:
        nonlocal calls
        calls += 1
        raise PermanentProviderError("403 Forbidden", batch_wide=True)

    with pytest.raises(PermanentProviderError, match="403"):
        await apply_in_batches(forbidden, plan_of(16), BatchLimits(max_changes=100))
    assert calls == 1, "a refusal no record is to blame for is sent once, not once per bisection"


async def test_apply_in_batches_sums_results() -> None:
    backend = Backend({"n2.example.com"}, names_record=True)
    result = await apply_in_batches(backend.apply_batch, plan_of(6), BatchLimits(max_changes=4))
    assert result.applied == 10
    assert set(result.failed) == {"n2.example.com", "_ingressfed.n2.example.com"}


async def test_retrying_backs_off_with_jitter_then_succeeds() -> None:
    slept: list[float] = []
    attempts = 0

    async def sleep(d: float) -> None:
        slept.append(d)

    async def call() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 4:
            raise TransientProviderError("Throttling")
        return "ok"

    backoff = Backoff(base=0.5, cap=3.0, attempts=6)
    out = await retrying(
        call, backoff, retry_on=lambda e: isinstance(e, TransientProviderError), sleep=sleep, rand=lambda: 0.5
    )
    assert out == "ok"
    assert slept == [0.25, 0.5, 1.0]  # half of 0.5, 1, 2 (full jitter at rand=0.5)
    assert backoff.delay(10, 1.0) == 3.0  # capped


async def test_retrying_gives_up_and_skips_permanent() -> None:
    async def sleep(d: float) -> None:
        return None

    attempts = 0

    async def throttled() -> None:
        nonlocal attempts
        attempts += 1
        raise TransientProviderError("Throttling")

    with pytest.raises(TransientProviderError):
        await retrying(throttled, Backoff(attempts=3), retry_on=lambda e: True, sleep=sleep)
    assert attempts == 3

    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        raise PermanentProviderError("no")

    with pytest.raises(PermanentProviderError):
        await retrying(
            refused,
            Backoff(attempts=3),
            retry_on=lambda e: e.__class__ is TransientProviderError,
            sleep=sleep,
        )
    assert attempts == 1


async def test_refusal_log_lines_name_the_record(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from providers.batching import apply_isolating

    async def refuse_bad(batch: Changes) -> None:
        for c in batch.items:
            if c.record.name.startswith("bad"):
                raise InvalidRecordError("value refused", provider="x")  # no name in the error

    changes = Changes((*named("good.example.com"), *named("bad1.example.com"), *named("bad2.example.com")))
    caplog.set_level(logging.WARNING, logger="providers.batching")
    result = await apply_isolating(refuse_bad, changes)
    assert set(result.failed) >= {"bad1.example.com", "bad2.example.com"}
    lines = [r.getMessage() for r in caplog.records]
    assert any("bad1.example.com" in line for line in lines)
    assert any("bad2.example.com" in line for line in lines)
    assert len(set(lines)) == len(lines)  # one distinct line per record, not identical repeats
