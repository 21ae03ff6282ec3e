"""RFC 2136 provider against real BIND9 and Knot DNS servers on loopback, with TSIG."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.asyncquery
import dns.name
import dns.rcode
import dns.update
import pytest

from ingressfed.errors import ConfigError, PermanentProviderError, TransientProviderError
from ingressfed.model import Change, ChangeAction, Changes, RecordSet, RecordType
from ingressfed.testing import ProviderContract
from providers.base import Provider
from providers.rfc2136 import RFC2136Provider, build_update
from tests.fakes.bind import KEY_NAME, DnsServer, knotd, named

ZONE = "example.com"


def a(name: str, *values: str, ttl: int = 30) -> RecordSet:
    return RecordSet(name, RecordType.A, ttl, values)


def create(*rs: RecordSet) -> Changes:
    return Changes(tuple(Change(ChangeAction.CREATE, new=r) for r in rs))


def mine(records: list[RecordSet]) -> set[RecordSet]:
    return {r for r in records if r.type not in (RecordType.SOA, RecordType.NS)}


async def other_writer(server: DnsServer, *ops: tuple[str, str, str, int, str]) -> None:
    """Change the zone behind the provider's back, signed with the same key."""
    msg = dns.update.UpdateMessage(
        server.zone,
        keyring={dns.name.from_text(server.key_name): base64.b64decode(server.secret)},
        keyname=dns.name.from_text(server.key_name),
        keyalgorithm=dns.name.from_text(server.algorithm),
    )
    for op, name, rtype, ttl, value in ops:
        if op == "replace":
            msg.replace(name + ".", ttl, rtype, value)
        elif op == "add":
            msg.add(name + ".", ttl, rtype, value)
        else:
            msg.delete(name + ".", rtype)
    r = await dns.asyncquery.tcp(msg, server.host, port=server.port, timeout=3)
    assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[DnsServer]:
    with named(tmp_path / "bind") as s:
        yield s


class _Contract(ProviderContract):
    def batch_sizes(self, provider: Provider) -> list[int] | None:
        assert isinstance(provider, RFC2136Provider)
        return provider.batch_sizes

    def refuse_everything(self, provider: Provider) -> bool:
        assert isinstance(provider, RFC2136Provider) and provider._key is not None
        name, _, algorithm = provider._key
        provider._key = (name, b"w" * 32, algorithm)  # the server no longer trusts our signature
        return True

    def backend_calls(self, provider: Provider) -> int | None:
        assert isinstance(provider, RFC2136Provider)
        return provider.calls["update"]


class TestBindContract(_Contract):
    @pytest.fixture
    async def provider(self, tmp_path: Path) -> AsyncIterator[Provider]:
        with contextlib.ExitStack() as stack:
            self.stack, self.workdir = stack, tmp_path / "bind"
            self.server = stack.enter_context(named(self.workdir))
            p = RFC2136Provider(zone=ZONE, options=self.server.options(maxBatch=10))
            yield p
            await p.close()

    def inject_rejection(self, provider: Provider, name: str) -> bool:
        # Restart BIND on the same port and key with an update-policy denying ``name``.
        self.stack.close()
        self.stack.enter_context(named(self.workdir, deny=(name,), like=self.server))
        return True


class TestKnotContract(_Contract):
    @pytest.fixture
    async def provider(self, tmp_path: Path) -> AsyncIterator[Provider]:
        with knotd(tmp_path / "knot") as server:
            p = RFC2136Provider(zone=ZONE, options=server.options(maxBatch=10))
            yield p
            await p.close()


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server"):
        RFC2136Provider(zone=ZONE, options={})
    with pytest.raises(ConfigError, match="tsigAlgorithm"):
        RFC2136Provider(zone=ZONE, options={"server": "127.0.0.1", "tsigAlgorithm": "rot13"})
    with pytest.raises(ConfigError, match="base64"):
        RFC2136Provider(zone=ZONE, options={"server": "127.0.0.1", "tsigKeyName": "k", "tsigSecret": "%%%"})
    with pytest.raises(ConfigError, match="both"):
        RFC2136Provider(zone=ZONE, options={"server": "127.0.0.1", "tsigKeyName": "k"})


async def test_wrong_secret_is_a_clear_permanent_error(bind: DnsServer) -> None:
    wrong = base64.b64encode(b"x" * 32).decode()
    p = RFC2136Provider(zone=ZONE, options=bind.options(tsigSecret=wrong))
    with pytest.raises(PermanentProviderError, match=f"TSIG.*{KEY_NAME}"):
        await p.records()
    with pytest.raises(PermanentProviderError, match="TSIG"):
        await p.apply(create(a("www.example.com", "192.0.2.1")))
    ok = RFC2136Provider(zone=ZONE, options=bind.options())
    assert mine(await ok.records()) == set()


async def test_unknown_key_name_is_a_clear_permanent_error(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options=bind.options(tsigKeyName="nobody"))
    with pytest.raises(PermanentProviderError, match="nobody"):
        await p.apply(create(a("www.example.com", "192.0.2.1")))


async def test_unsigned_update_is_refused_with_a_hint(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options={"server": bind.host, "port": bind.port, "timeout": 3})
    res = await p.apply(create(a("www.example.com", "192.0.2.1")))
    assert res.applied == 0
    assert "REFUSED" in res.failed["www.example.com"]
    assert "unsigned" in res.failed["www.example.com"]


async def test_axfr_reads_what_others_wrote_and_skips_unmodelled_types(bind: DnsServer) -> None:
    await other_writer(
        bind,
        ("add", "www.example.com", "A", 60, "192.0.2.1"),
        ("add", "www.example.com", "A", 60, "192.0.2.2"),
        ("add", "txt.example.com", "TXT", 60, '"one" "two"'),
        ("add", "mail.example.com", "MX", 60, "10 mx.example.net."),
        ("add", "alias.example.com", "CNAME", 60, "target.example.net."),
    )
    p = RFC2136Provider(zone=ZONE, options=bind.options())
    assert mine(await p.records()) == {
        a("www.example.com", "192.0.2.1", "192.0.2.2", ttl=60),
        RecordSet("txt.example.com", RecordType.TXT, 60, ('"one" "two"',)),
        RecordSet("alias.example.com", RecordType.CNAME, 60, ("target.example.net",)),
    }
    assert p.calls["axfr"] == 1


async def test_concurrent_change_is_detected_by_prerequisite(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options=bind.options())
    old = a("www.example.com", "192.0.2.1")
    await p.apply(create(old))
    # Somebody rewrites the set after our read; our UPDATE was planned against ``old``.
    await other_writer(bind, ("replace", "www.example.com", "A", 30, "198.51.100.9"))
    with pytest.raises(TransientProviderError, match="prerequisite"):
        await p.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=a("www.example.com", "192.0.2.5")),)))
    assert mine(await p.records()) == {a("www.example.com", "198.51.100.9")}
    # A CREATE of a set that appeared meanwhile is not an overwrite either.
    await other_writer(bind, ("add", "new.example.com", "A", 30, "198.51.100.10"))
    with pytest.raises(TransientProviderError, match="prerequisite"):
        await p.apply(create(a("new.example.com", "192.0.2.6")))
    # DELETE of a set that differs from the plan leaves it alone.
    with pytest.raises(TransientProviderError, match="prerequisite"):
        await p.apply(Changes((Change(ChangeAction.DELETE, old=old),)))
    assert mine(await p.records()) == {
        a("www.example.com", "198.51.100.9"),
        a("new.example.com", "198.51.100.10"),
    }


async def test_ttl_only_update_passes_value_prerequisite(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options=bind.options())
    old = a("www.example.com", "192.0.2.1", "192.0.2.2")
    await p.apply(create(old))
    new = a("www.example.com", "192.0.2.1", "192.0.2.2", ttl=600)
    assert (await p.apply(Changes((Change(ChangeAction.UPDATE, old=old, new=new),)))).failed == {}
    assert mine(await p.records()) == {new}


async def test_large_update_is_split_under_the_size_limit_and_uses_tcp(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options=bind.options(maxMessageSize=2048, udpSize=512))
    sets = [
        RecordSet(f"host-{i:03d}.example.com", RecordType.TXT, 30, (f'"{"v" * 60}-{i}"',)) for i in range(80)
    ]
    res = await p.apply(create(*sets))
    assert res.failed == {}
    assert res.applied == 80
    assert len(p.message_sizes) >= 3
    assert max(p.message_sizes) <= 2048
    assert p.calls["tcp"] >= 1  # messages over udpSize go over TCP
    assert mine(await p.records()) == set(sets)


async def test_always_tcp_option(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options=bind.options(transport="tcp"))
    await p.apply(create(a("www.example.com", "192.0.2.1")))
    await p.apply(create(a("api.example.com", "192.0.2.2")))
    assert p.calls["tcp"] == p.calls["update"] == 2


async def test_record_refused_by_server_policy_fails_alone(tmp_path: Path) -> None:
    with named(tmp_path / "bind", deny=("victim.example.com",)) as server:
        p = RFC2136Provider(zone=ZONE, options=server.options())
        good = [a(f"good{i}.example.com", f"192.0.2.{i + 1}") for i in range(4)]
        res = await p.apply(create(*good[:2], a("victim.example.com", "192.0.2.99"), *good[2:]))
        assert set(res.failed) == {"victim.example.com"}
        assert "REFUSED" in res.failed["victim.example.com"]
        assert mine(await p.records()) == set(good)


@pytest.mark.parametrize("algorithm", ["hmac-sha512", "hmac-sha1", "hmac-md5"])
async def test_other_tsig_algorithms(tmp_path: Path, algorithm: str) -> None:
    with named(tmp_path / "bind", algorithm=algorithm) as server:
        p = RFC2136Provider(zone=ZONE, options=server.options())
        await p.apply(create(a("www.example.com", "192.0.2.1")))
        assert mine(await p.records()) == {a("www.example.com", "192.0.2.1")}


async def test_key_from_a_bind_key_file(bind: DnsServer, tmp_path: Path) -> None:
    keyfile = tmp_path / "ingressfed.key"
    keyfile.write_text(
        f'key "{bind.key_name}" {{\n\talgorithm {bind.algorithm};\n\tsecret "{bind.secret}";\n}};\n'
    )
    p = RFC2136Provider(
        zone=ZONE, options={"server": bind.host, "port": bind.port, "tsigSecretFile": str(keyfile)}
    )
    await p.apply(create(a("www.example.com", "192.0.2.1")))
    assert mine(await p.records()) == {a("www.example.com", "192.0.2.1")}


async def test_unreachable_server_is_transient(tmp_path: Path) -> None:
    from tests.fakes.ports import free_port

    p = RFC2136Provider(zone=ZONE, options={"server": "127.0.0.1", "port": free_port(), "timeout": 0.3})
    with pytest.raises(TransientProviderError, match="reach"):
        await p.records()
    with pytest.raises(TransientProviderError, match="reach"):
        await p.apply(create(a("www.example.com", "192.0.2.1")))


def test_update_message_orders_prerequisites_deletions_then_additions() -> None:
    old = a("swap.example.com", "192.0.2.1")
    new = RecordSet("swap.example.com", RecordType.CNAME, 30, ("lb.example.net",))
    aaaa = RecordSet("swap.example.com", RecordType.AAAA, 30, ("2001:db8::1",))
    msg = build_update(
        dns.name.from_text("example.com."),
        (Change(ChangeAction.UPDATE, old=old, new=new), Change(ChangeAction.DELETE, old=aaaa)),
    )
    assert [rrs.rdtype.name for rrs in msg.prerequisite] == ["A", "CNAME", "AAAA"]
    # deletions (class ANY) first, then the CNAME addition
    assert [(rrs.rdtype.name, rrs.deleting.name if rrs.deleting else "IN") for rrs in msg.update] == [
        ("A", "ANY"),
        ("AAAA", "ANY"),
        ("CNAME", "IN"),
    ]


async def test_adjust_uses_the_servers_canonical_text(bind: DnsServer) -> None:
    p = RFC2136Provider(zone=ZONE, options=bind.options())
    loose = RecordSet("v6.example.com", RecordType.AAAA, 30, ("2001:DB8:0:0::1",))
    (adjusted,) = p.adjust([loose])
    assert adjusted.values == ("2001:db8::1",)
    await p.apply(create(adjusted))
    assert mine(await p.records()) == {adjusted}
    bad = a("bad.example.com", "300.1.2.3")
    assert p.adjust([bad]) == [bad]  # left for apply to refuse, alone
