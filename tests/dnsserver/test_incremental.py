"""Incremental updates: an index changed in place answers byte for byte like one built afresh."""

from __future__ import annotations

import random

import dns.message
import pytest

from ingressfed.dnsserver.answer import answer
from ingressfed.dnsserver.index import Locator, ZoneIndex, build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import ZoneData, zone_data_from_records
from ingressfed.model import Change, ChangeAction, RecordSet, RecordType
from tests.dnsserver.client import udp, values
from tests.dnsserver.conftest import EU, RECORDS, US, ZONE, fake_locate, routed, rs

T = RecordType
NAMES = ["www", "alias", "chain1", "chain2", "a.b.c", "deep.er", "new", "ns1", "g", "zl", "x.y", ""]
QTYPES = ["A", "AAAA", "CNAME", "TXT", "NS", "SOA", "ANY", "MX"]


def index_of(data: ZoneData) -> ZoneIndex:
    return build_index(data, locator=Locator(fake_locate))


def wire_answers(index: ZoneIndex) -> dict[tuple[str, str, str], bytes]:
    out = {}
    for name in [*NAMES, "missing", "b.c", "c", "er"]:
        qname = f"{name}.{ZONE}" if name else ZONE
        for qtype in QTYPES:
            q = dns.message.make_query(qname.upper() if len(name) % 2 else qname, qtype, use_edns=0)
            q.id = 7
            for client in ("127.0.0.1", "198.51.100.7"):
                resp = answer(index, q.to_wire(), client, tcp=True)
                assert resp is not None
                out[(qname, qtype, client)] = resp
    return out


def random_set(rng: random.Random) -> RecordSet:
    name = rng.choice(NAMES[:-1])
    kind = rng.choice([T.A, T.AAAA, T.TXT, T.CNAME, T.A])
    if kind is T.CNAME:
        target = rng.choice(NAMES[:-1])
        return rs(name, T.CNAME, f"{target}.{ZONE}", ttl=rng.choice([30, 60]))
    if kind is T.TXT:
        return rs(name, T.TXT, f'"v{rng.randrange(5)}"')
    if kind is T.A and rng.random() < 0.3:
        return routed(
            name, rng.choice(["us-east1", "europe-west1"]), rng.choice([US, EU]), f"10.1.0.{rng.randrange(9)}"
        )
    value = f"192.0.2.{rng.randrange(1, 9)}" if kind is T.A else f"2001:db8::{rng.randrange(1, 9):x}"
    return rs(name, kind, value)


def test_random_changes_in_place_answer_like_a_fresh_index() -> None:
    rng = random.Random(12)
    sets = {r.key: r for r in RECORDS}
    data = zone_data_from_records(ZONE, sets.values(), serial=1)
    live = index_of(data)
    for step in range(25):
        changes = []
        for _ in range(rng.randint(1, 4)):
            if sets and rng.random() < 0.4:
                old = sets.pop(rng.choice(sorted(sets, key=str)))
                changes.append(Change(ChangeAction.DELETE, old=old))
            else:
                new = random_set(rng)
                old = sets.get(new.key)
                sets[new.key] = new
                changes.append(
                    Change(ChangeAction.UPDATE, old=old, new=new)
                    if old
                    else Change(ChangeAction.CREATE, new=new)
                )
        data = zone_data_from_records(ZONE, sets.values(), serial=data.serial + 1)
        live.apply(changes, data)
        fresh = index_of(data)
        assert wire_answers(live) == wire_answers(fresh), step


def test_one_change_re_renders_only_the_names_it_touches() -> None:
    records = [*RECORDS, *(rs(f"n{i}", T.A, f"198.19.{i // 250}.{i % 250}") for i in range(2000))]
    data = zone_data_from_records(ZONE, records, serial=1)
    index = index_of(data)
    new = rs("www", T.A, "192.0.2.200")
    old = next(r for r in records if r.key == new.key)
    data2 = zone_data_from_records(ZONE, [new if r.key == new.key else r for r in records], serial=2)
    dirty = index.apply([Change(ChangeAction.UPDATE, old=old, new=new)], data2)
    # www itself and the names whose CNAME chains reach it (alias, chain2, chain1); nothing else
    assert {d.split(b"\x07example")[0] for d in dirty} == {
        b"\x03www",
        b"\x05alias",
        b"\x06chain2",
        b"\x06chain1",
    }


async def test_server_follows_changes_without_a_rebuild() -> None:
    data = zone_data_from_records(ZONE, RECORDS, serial=1)
    async with DnsServer(index_of(data), port=0) as srv:
        first = srv.index
        r = await udp(srv.port, f"alias.{ZONE}")  # warms the UDP memo too
        assert values(r.answer, "A") == {"192.0.2.1", "192.0.2.2"}
        new = rs("www", T.A, "192.0.2.50")
        old = next(r for r in RECORDS if r.key == new.key)
        data2 = zone_data_from_records(ZONE, [new if r.key == new.key else r for r in RECORDS], serial=2)
        srv.update_soon(data2, [Change(ChangeAction.UPDATE, old=old, new=new)])
        r = await udp(srv.port, f"alias.{ZONE}")  # no await on a rebuild: served at once
        assert values(r.answer, "A") == {"192.0.2.50"}
        assert srv.index is first and srv.index.serial == 2
        # Changes that do not start from the zone being served fall back to a full rebuild.
        data3 = zone_data_from_records(ZONE, RECORDS, serial=9)
        srv.update_soon(data3, [Change(ChangeAction.CREATE, new=rs("zz", T.A, "192.0.2.9"))])
        await srv.settled()
        assert srv.index is not first and srv.index.serial == 9


@pytest.mark.parametrize("size", [1, 3])
def test_deleting_the_last_set_removes_empty_ancestors(size: int) -> None:
    deep = [rs(f"leaf{i}.p.q", T.A, "192.0.2.1") for i in range(size)]
    data = zone_data_from_records(ZONE, deep, serial=1)
    index = index_of(data)
    changes = [Change(ChangeAction.DELETE, old=r) for r in deep]
    index.apply(changes, zone_data_from_records(ZONE, [], serial=2))
    assert wire_answers(index) == wire_answers(index_of(zone_data_from_records(ZONE, [], serial=2)))


async def test_embedded_provider_changes_are_followed_in_place() -> None:
    from ingressfed.model import Changes
    from providers.embedded import EmbeddedProvider

    provider = EmbeddedProvider(zone=ZONE)
    await provider.apply(Changes((Change(ChangeAction.CREATE, new=rs("www", T.A, "192.0.2.1")),)))
    async with DnsServer(index_of(provider.zone_data), port=0) as srv:
        first = srv.index
        provider.subscribe_changes(srv.update_soon)
        new = rs("www", T.A, "192.0.2.2")
        await provider.apply(
            Changes((Change(ChangeAction.UPDATE, old=rs("www", T.A, "192.0.2.1"), new=new),))
        )
        r = await udp(srv.port, f"www.{ZONE}")
        assert values(r.answer, "A") == {"192.0.2.2"}
        assert srv.index is first and srv.index.serial == provider.zone_data.serial


async def test_a_change_that_cannot_be_followed_in_place_is_rendered_whole() -> None:
    data = zone_data_from_records(ZONE, RECORDS, serial=1)
    async with DnsServer(index_of(data), port=0) as srv:
        broken = srv.index

        def fail(*_: object) -> set[bytes]:
            raise RuntimeError("boom")

        broken.apply = fail  # type: ignore[method-assign]
        new = rs("www", T.A, "192.0.2.51")
        old = next(r for r in RECORDS if r.key == new.key)
        data2 = zone_data_from_records(ZONE, [new if r.key == new.key else r for r in RECORDS], serial=2)
        srv.update_soon(data2, [Change(ChangeAction.UPDATE, old=old, new=new)])
        await srv.settled()
        assert srv.index is not broken and srv.index.serial == 2
        r = await udp(srv.port, f"www.{ZONE}")
        assert values(r.answer, "A") == {"192.0.2.51"}


async def test_changes_that_come_during_a_render_are_followed_in_place_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ingressfed.dnsserver import server as server_module

    renders: list[int] = []
    real = server_module.build_index

    def counted(data: ZoneData, **kw: object) -> ZoneIndex:
        renders.append(data.serial)
        return real(data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(server_module, "build_index", counted)
    async with DnsServer(index_of(zone_data_from_records(ZONE, (), serial=1)), port=0) as srv:
        whole = zone_data_from_records(ZONE, RECORDS, serial=5)
        srv.update_soon(whole)  # a render in a worker thread ...
        current = whole
        for i in range(3):  # ... and changes while it runs (the feed does not wait for it)
            change = Change(ChangeAction.CREATE, new=rs(f"late{i}", T.A, f"192.0.2.{60 + i}"))
            following = ZoneData.following(current, [change], serial=current.serial + 1)
            srv.update_soon(following, [change], base_serial=current.serial)
            current = following
        await srv.settled()
        assert renders == [5]  # one render, not one per change that came meanwhile
        assert srv.index.serial == 8
        assert values((await udp(srv.port, f"late2.{ZONE}")).answer, "A") == {"192.0.2.62"}
        assert wire_answers(srv.index) == wire_answers(
            index_of(zone_data_from_records(ZONE, current.records, serial=8))
        )
        # Changes that do not continue the zone being rendered: the newest zone is rendered whole.
        srv.update_soon(zone_data_from_records(ZONE, RECORDS, serial=20))
        change = Change(ChangeAction.CREATE, new=rs("odd", T.A, "192.0.2.70"))
        odd = zone_data_from_records(ZONE, [*RECORDS, change.new], serial=30)  # type: ignore[list-item]
        srv.update_soon(odd, [change], base_serial=25)
        await srv.settled()
        assert renders == [5, 20, 30] and srv.index.serial == 30
        assert values((await udp(srv.port, f"odd.{ZONE}")).answer, "A") == {"192.0.2.70"}
