"""The provider contract: one suite every provider (plugins included) must pass.

Shipped in the package (``pip install 'ingressfed[test]'``); the pytest plugin
``ingressfed.testing.plugin`` (entry point ``pytest11``) is loaded with it.
Usage, for a provider ``X``: one fixture, ``provider``, a fresh, empty zone per test::

    import pytest
    from ingressfed.testing import ProviderContract

    class TestXContract(ProviderContract):
        @pytest.fixture
        def provider(self):
            return XProvider(zone="example.com", options={..., "maxBatch": 10})

A fixture that needs ``await`` (setup or ``close()``) is an async generator
decorated with ``pytest_asyncio.fixture`` (or a plain ``pytest.fixture`` under
``asyncio_mode = auto``). The tests themselves are marked for pytest-asyncio
here, so no ``asyncio_mode`` setting is needed.

Optional hooks, where the backend allows (see each docstring):
``seed_foreign``, ``inject_transient``, ``inject_rejection``, ``batch_sizes``,
``refuse_everything`` with ``backend_calls``, and ``bad_record`` (a set your
backend refuses; the default, an A record with the value ``300.1.2.3``, suits
any backend that validates addresses).

Keep the zone's batch limit small in the fixture (e.g. an option like
``maxBatch: 10``) so the batch-splitting test stays fast; the test writes
``capabilities.max_batch + 3`` names.

The suite drives providers the way the controller does: ``records()``, the
lead's pure ``core.plan`` against ``adjust``-ed desired sets, then ``apply``.
Records of types other than A/AAAA/CNAME/TXT (SOA, NS at the apex) are
ignored when comparing.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ingressfed.core.desired import Desired, with_companions
from ingressfed.core.ownership import companion, companion_name
from ingressfed.core.plan import plan
from ingressfed.errors import PermanentProviderError, TransientProviderError
from ingressfed.model import Change, ChangeAction, Changes, Policy, RecordSet, RecordType
from providers.base import ApplyResult, Provider

__all__ = ["OWNER", "ProviderContract", "converge", "managed"]

OWNER = "contract-owner"
PUBLISHED = frozenset({RecordType.A, RecordType.AAAA, RecordType.CNAME, RecordType.TXT})


def managed(records: Sequence[RecordSet]) -> set[RecordSet]:
    """The record sets the contract compares (no SOA/NS)."""
    return {rs for rs in records if rs.type in PUBLISHED}


def adjusted(provider: Provider, desired: Sequence[Desired]) -> list[Desired]:
    resource = {d.record.name: d.resource for d in desired}
    return [Desired(rs, resource[rs.name]) for rs in provider.adjust([d.record for d in desired])]


async def converge(
    provider: Provider, desired: Sequence[Desired], *, policy: Policy = Policy.SYNC
) -> ApplyResult:
    """One reconcile: read, plan, apply."""
    current = await provider.records()
    p = plan(current, adjusted(provider, desired), owner_id=OWNER, policy=policy)
    return await provider.apply(p.changes)


async def pending(provider: Provider, desired: Sequence[Desired], *, policy: Policy = Policy.SYNC) -> Changes:
    current = await provider.records()
    return plan(current, adjusted(provider, desired), owner_id=OWNER, policy=policy).changes


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def svc(rs: RecordSet, resource: str = "service/default/app") -> Desired:
    return Desired(rs, resource)


def expected(desired: Sequence[Desired]) -> set[RecordSet]:
    return set(with_companions(desired, OWNER))


class ProviderContract:
    """Base class: subclasses supply the ``provider`` fixture (fresh zone per test)."""

    # Every test here is a coroutine: run them with pytest-asyncio whatever its mode.
    pytestmark = [pytest.mark.asyncio, pytest.mark.provider_contract]

    @pytest.fixture
    def provider(self) -> Provider:
        raise NotImplementedError("subclass ProviderContract and define the provider fixture")

    # --- hooks ----------------------------------------------------------------------------

    async def seed_foreign(self, provider: Provider, records: Sequence[RecordSet]) -> None:
        """Write record sets someone else owns. Default: through ``apply`` without companions."""
        result = await provider.apply(Changes(tuple(Change(ChangeAction.CREATE, new=rs) for rs in records)))
        assert result.failed == {}, result.failed

    def inject_transient(self, provider: Provider, count: int) -> bool:
        """Make the next ``count`` backend calls fail transiently; False when unsupported."""
        return False

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        """Make the backend itself refuse any change to ``name``; False when unsupported."""
        return False

    def batch_sizes(self, provider: Provider) -> list[int] | None:
        """Sizes (in changes) of the batches the backend received so far, or None."""
        return None

    def refuse_everything(self, provider: Provider) -> bool:
        """Make the backend refuse every further call for a reason no record is to blame for
        (bad credentials, no permission); False when unsupported."""
        return False

    def backend_calls(self, provider: Provider) -> int | None:
        """How many calls (of any kind) the backend has received so far; None when unknown."""
        return None

    def bad_record(self, zone: str) -> RecordSet:
        """A set every provider must refuse (client- or server-side)."""
        return a(f"bad.{zone}", "300.1.2.3")

    # --- tests ----------------------------------------------------------------------------

    async def test_empty_zone_has_no_published_sets(self, provider: Provider) -> None:
        records = managed(await provider.records())
        assert {rs for rs in records if rs.name != provider.zone} == set()

    async def test_create(self, provider: Provider) -> None:
        z = provider.zone
        desired = [svc(a(f"www.{z}", "192.0.2.1", "192.0.2.2"))]
        result = await converge(provider, desired)
        assert result.failed == {}
        assert result.applied == 2  # the set and its companion
        assert managed(await provider.records()) >= expected(desired)

    async def test_update_values(self, provider: Provider) -> None:
        z = provider.zone
        await converge(provider, [svc(a(f"www.{z}", "192.0.2.1"))])
        desired = [svc(a(f"www.{z}", "192.0.2.7", "192.0.2.8"))]
        changes = await pending(provider, desired)
        assert [c.action for c in changes.items] == [ChangeAction.UPDATE]
        result = await provider.apply(changes)
        assert result.failed == {}
        records = managed(await provider.records())
        assert a(f"www.{z}", "192.0.2.7", "192.0.2.8") in records
        assert a(f"www.{z}", "192.0.2.1") not in records

    async def test_delete(self, provider: Provider) -> None:
        z = provider.zone
        await converge(provider, [svc(a(f"www.{z}", "192.0.2.1")), svc(a(f"api.{z}", "192.0.2.3"))])
        result = await converge(provider, [svc(a(f"api.{z}", "192.0.2.3"))])
        assert result.failed == {}
        names = {rs.name for rs in managed(await provider.records())}
        assert f"www.{z}" not in names
        assert companion_name(f"www.{z}") not in names
        assert f"api.{z}" in names

    async def test_idempotent(self, provider: Provider) -> None:
        z = provider.zone
        desired = [
            svc(a(f"www.{z}", "192.0.2.1")),
            svc(RecordSet(f"www.{z}", RecordType.AAAA, 30, ("2001:db8::1",))),
            svc(RecordSet(f"alias.{z}", RecordType.CNAME, 60, ("lb.elb.amazonaws.com",)), "service/ns/b"),
        ]
        await converge(provider, desired)
        assert {rs for rs in managed(await provider.records()) if rs.name != z} == expected(desired)
        assert not await pending(provider, desired)
        # Applying an empty plan is a no-op, not an error.
        assert (await provider.apply(Changes())).failed == {}
        assert not await pending(provider, desired)

    async def test_ttl_change(self, provider: Provider) -> None:
        z = provider.zone
        await converge(provider, [svc(a(f"www.{z}", "192.0.2.1", ttl=30))])
        await converge(provider, [svc(a(f"www.{z}", "192.0.2.1", ttl=300))])
        records = managed(await provider.records())
        assert a(f"www.{z}", "192.0.2.1", ttl=300) in records
        assert companion(f"www.{z}", owner_id=OWNER, resource="service/default/app", ttl=300) in records
        assert not await pending(provider, [svc(a(f"www.{z}", "192.0.2.1", ttl=300))])

    async def test_a_and_aaaa_at_one_name(self, provider: Provider) -> None:
        z = provider.zone
        desired = [
            svc(a(f"dual.{z}", "192.0.2.1")),
            svc(RecordSet(f"dual.{z}", RecordType.AAAA, 30, ("2001:db8::1", "2001:db8::2"))),
        ]
        await converge(provider, desired)
        at_name = {rs for rs in managed(await provider.records()) if rs.name == f"dual.{z}"}
        assert {rs.type for rs in at_name} == {RecordType.A, RecordType.AAAA}
        # Dropping the v6 side deletes only the AAAA set.
        await converge(provider, desired[:1])
        at_name = {rs for rs in managed(await provider.records()) if rs.name == f"dual.{z}"}
        assert at_name == {desired[0].record}

    async def test_a_cname_swap(self, provider: Provider) -> None:
        z = provider.zone
        as_a = [
            svc(a(f"swap.{z}", "192.0.2.1")),
            svc(RecordSet(f"swap.{z}", RecordType.AAAA, 30, ("2001:db8::9",))),
        ]
        as_cname = [svc(RecordSet(f"swap.{z}", RecordType.CNAME, 30, (f"swap.region.{z}",)))]
        # Back to addresses, new ones (moto wrongly refuses a CREATE identical to an earlier one).
        back = [
            svc(a(f"swap.{z}", "192.0.2.2")),
            svc(RecordSet(f"swap.{z}", RecordType.AAAA, 30, ("2001:db8::a",))),
        ]
        for desired in (as_a, as_cname, back):
            result = await converge(provider, desired)
            assert result.failed == {}
            at_name = {rs for rs in managed(await provider.records()) if rs.name == f"swap.{z}"}
            assert at_name == {d.record for d in desired}
            assert not await pending(provider, desired)

    async def test_long_and_idna_names(self, provider: Provider) -> None:
        z = provider.zone
        # The companion adds "_ingressfed." (12 characters): the longest publishable name is 241.
        room = 241 - len(z) - 1
        labels: list[str] = []
        while room > 0:
            size = min(63, room if room <= 63 else min(63, room - 2))
            labels.append("l" * size)
            room -= size + 1
        long_name = ".".join(labels) + "." + z
        assert len(long_name) <= 241
        idna = "xn--bcher-kva." + z  # bücher
        desired = [svc(a(long_name, "192.0.2.10")), svc(a(idna, "192.0.2.11"), "ingress/default/shop")]
        result = await converge(provider, desired)
        assert result.failed == {}
        assert managed(await provider.records()) >= expected(desired)
        assert not await pending(provider, desired)

    @pytest.mark.parametrize("policy", list(Policy))
    async def test_foreign_records_untouched(self, provider: Provider, policy: Policy) -> None:
        z = provider.zone
        foreign = [
            a(f"foreign.{z}", "198.51.100.1"),
            a(f"taken.{z}", "198.51.100.2"),  # a name we also want: a conflict, never overwritten
            RecordSet(f"taken.{z}", RecordType.TXT, 300, ('"v=spf1 -all"',)),
            RecordSet(f"cname.{z}", RecordType.CNAME, 300, ("elsewhere.example.net",)),
            # Someone else's ingressfed instance owns this one.
            companion(f"other.{z}", owner_id="someone-else", resource="service/x/y", ttl=30),
            a(f"other.{z}", "198.51.100.3"),
        ]
        await self.seed_foreign(provider, foreign)
        desired = [
            svc(a(f"taken.{z}", "192.0.2.1")),
            svc(a(f"cname.{z}", "192.0.2.2")),
            svc(a(f"other.{z}", "192.0.2.3")),
            svc(a(f"ours.{z}", "192.0.2.4")),
        ]
        result = await converge(provider, desired, policy=policy)
        assert result.failed == {}
        records = managed(await provider.records())
        assert set(foreign) <= records
        assert a(f"ours.{z}", "192.0.2.4") in records
        # Withdrawing everything we publish still leaves the foreign sets alone.
        await converge(provider, [], policy=policy)
        assert set(foreign) <= managed(await provider.records())

    async def test_batch_splitting(self, provider: Provider) -> None:
        z = provider.zone
        count = provider.capabilities.max_batch + 3
        desired = [
            svc(a(f"n{i}.{z}", f"192.0.2.{i % 250 + 1}"), f"service/default/n{i}") for i in range(count)
        ]
        result = await converge(provider, desired)
        assert result.failed == {}
        assert result.applied == 2 * count
        assert managed(await provider.records()) >= expected(desired)
        sizes = self.batch_sizes(provider)
        if sizes is not None:
            assert len(sizes) >= 2
            assert max(sizes) <= provider.capabilities.max_batch

    async def test_invalid_record_isolated(self, provider: Provider) -> None:
        z = provider.zone
        bad = self.bad_record(z)
        good = [svc(a(f"good{i}.{z}", f"192.0.2.{i + 1}"), f"service/default/g{i}") for i in range(5)]
        changes = await pending(provider, [*good[:2], svc(bad, "service/default/bad"), *good[2:]])
        result = await provider.apply(changes)
        assert bad.name in result.failed
        assert all(d.record.name not in result.failed for d in good)
        records = managed(await provider.records())
        assert records >= expected(good)
        assert bad.name not in {rs.name for rs in records}

    async def test_rejected_record_isolated(self, provider: Provider) -> None:
        z = provider.zone
        victim = f"victim.{z}"
        if not self.inject_rejection(provider, victim):
            pytest.skip("backend offers no way to make it refuse one record")
        good = [svc(a(f"good{i}.{z}", f"192.0.2.{i + 1}"), f"service/default/g{i}") for i in range(6)]
        desired = [*good[:3], svc(a(victim, "192.0.2.99"), "service/default/victim"), *good[3:]]
        result = await converge(provider, desired)
        assert victim in result.failed
        assert result.failed[victim]
        records = managed(await provider.records())
        assert records >= expected(good)
        assert victim not in {rs.name for rs in records}

    async def test_transient_errors_retried(self, provider: Provider) -> None:
        z = provider.zone
        if not self.inject_transient(provider, 2):
            pytest.skip("backend offers no fault injection")
        desired = [svc(a(f"www.{z}", "192.0.2.1"))]
        errors: list[TransientProviderError] = []
        for _ in range(5):  # reconcile cycles
            try:
                result = await converge(provider, desired)
            except TransientProviderError as err:
                errors.append(err)
                continue
            assert result.failed == {}
            if not await pending(provider, desired):
                break
        assert managed(await provider.records()) >= expected(desired)
        assert all(e.transient for e in errors)

    async def test_backend_refusing_everything_costs_one_call_and_one_error(self, provider: Provider) -> None:
        z = provider.zone
        desired = [svc(a(f"h{i}.{z}", f"192.0.2.{i + 1}"), f"service/default/h{i}") for i in range(16)]
        changes = await pending(provider, desired)
        if not self.refuse_everything(provider):
            pytest.skip("backend offers no way to make it refuse everything")
        before = self.backend_calls(provider)
        with pytest.raises(PermanentProviderError) as err:
            await provider.apply(changes)
        # One provider-level error (no record to blame), not one failure per record...
        assert err.value.batch_wide and err.value.record is None, err.value
        # ...found with one call, not by bisecting the batch record by record.
        after = self.backend_calls(provider)
        if before is not None and after is not None:
            assert after - before == 1
