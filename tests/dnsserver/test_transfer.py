"""Zone transfers out: real BIND9 and Knot as secondaries of the embedded server.

They load the zone by AXFR, get a NOTIFY on every serial change, fetch the
change by IXFR (from the journal) and then answer exactly as we do. Access is
by TSIG key or source address only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.xfr
import dns.zone
import pytest

from ingressfed.dnsserver.index import build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.transfer import TransferPolicy, TsigKey
from ingressfed.dnsserver.zone import zone_data_from_records
from ingressfed.model import RecordSet, RecordType
from tests.dnsserver.client import udp
from tests.dnsserver.conftest import RECORDS, ZONE, rs
from tests.fakes.bind import knotd_secondary, named_secondary
from tests.fakes.ports import free_ports

T = RecordType
KEY = "xfr-key"
SECRET = base64.b64encode(secrets.token_bytes(32)).decode()
V2 = [
    *(r for r in RECORDS if r.name not in (f"txt.{ZONE}", f"mid.{ZONE}")),
    rs("www", T.A, "192.0.2.1", "192.0.2.77"),  # changed
    rs("added", T.AAAA, "2001:db8::aa"),  # new
]
QUESTIONS = [
    (f"www.{ZONE}", "A"),
    (f"www.{ZONE}", "AAAA"),
    (f"alias.{ZONE}", "CNAME"),
    (f"txt.{ZONE}", "TXT"),
    (f"mid.{ZONE}", "A"),
    (f"added.{ZONE}", "AAAA"),
    (f"g.{ZONE}", "A"),  # routed: secondaries get the answer for an unknown location
    (f"a.b.c.{ZONE}", "A"),
    (ZONE, "NS"),
    (ZONE, "SOA"),
]


def data(records: list[RecordSet], serial: int):  # type: ignore[no-untyped-def]
    return zone_data_from_records(ZONE, records, serial=serial)


def answers(port: int) -> dict[tuple[str, str], tuple[int, frozenset[str]]]:
    out = {}
    for name, rdtype in QUESTIONS:
        r = dns.query.tcp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=3)
        out[(name, rdtype)] = (r.rcode(), frozenset(rd.to_text() for rrset in r.answer for rd in rrset))
    return out


def serial_of(port: int) -> int:
    r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=1)
    return int(r.answer[0][0].serial) if r.answer else -1


async def wait_serial(port: int, serial: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await asyncio.to_thread(serial_of, port) == serial:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"secondary on port {port} did not reach serial {serial}")


async def test_bind_and_knot_secondaries_converge_by_axfr_then_ixfr(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingressfed.dnsserver.transfer")
    bind_port, knot_port = free_ports(2)
    policy = TransferPolicy(
        keys=(TsigKey.from_base64(KEY, SECRET),),
        notify=(("127.0.0.1", bind_port), ("127.0.0.1", knot_port)),
        notify_key=KEY,
    )
    async with DnsServer(build_index(data(RECORDS, 10)), port=0, transfer=policy) as ours:
        with contextlib.ExitStack() as stack:
            args = {"zone": ZONE, "primary_port": ours.port, "key_name": KEY, "secret": SECRET}
            # Started off the event loop: they transfer from this server while starting.
            bind = await asyncio.to_thread(
                stack.enter_context, named_secondary(tmp_path / "bind", port=bind_port, **args)
            )
            knot = await asyncio.to_thread(
                stack.enter_context, knotd_secondary(tmp_path / "knot", port=knot_port, **args)
            )
            expected = await asyncio.to_thread(answers, ours.port)
            for sec in (bind, knot):
                assert await asyncio.to_thread(answers, sec.port) == expected, sec.kind
            assert any("AXFR of example.com" in r.getMessage() for r in caplog.records)
            caplog.clear()

            for serial, records in ((11, V2), (12, [*V2, rs("later", T.A, "192.0.2.99")])):
                ours.update(data(records, serial))  # NOTIFY goes out; they ask for IXFR
                await wait_serial(bind.port, serial)
                await wait_serial(knot.port, serial)
                expected = await asyncio.to_thread(answers, ours.port)
                for sec in (bind, knot):
                    assert await asyncio.to_thread(answers, sec.port) == expected, (sec.kind, serial)
            ixfrs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("IXFR of")]
            assert len([m for m in ixfrs if "versions)" in m]) >= 4, (
                ixfrs
            )  # both, both times, from the journal
            assert not any("AXFR of" in r.getMessage() for r in caplog.records)


def _xfr(port: int, *, keyring: dict[dns.name.Name, dns.tsig.Key] | None = None) -> dns.zone.Zone:
    zone = dns.zone.Zone(ZONE + ".", relativize=False)
    kwargs = {}
    if keyring:
        name = next(iter(keyring))
        kwargs = {"keyring": keyring, "keyname": name, "keyalgorithm": "hmac-sha256"}
    query, _ = dns.xfr.make_query(zone, **kwargs)
    dns.query.inbound_xfr("127.0.0.1", zone, query, port=port, timeout=3)
    return zone


async def test_transfers_only_to_allowed_keys_and_addresses() -> None:
    good = {dns.name.from_text(KEY + "."): dns.tsig.Key(KEY + ".", base64.b64decode(SECRET), "hmac-sha256")}
    wrong = {dns.name.from_text(KEY + "."): dns.tsig.Key(KEY + ".", b"w" * 32, "hmac-sha256")}
    big = [*RECORDS, *(rs(f"h{i}", T.TXT, f'"{"x" * 200} {i}"') for i in range(300))]  # several messages
    by_key = TransferPolicy(keys=(TsigKey.from_base64(KEY, SECRET),))
    async with DnsServer(build_index(data(big, 5)), port=0, transfer=by_key) as srv:
        zone = await asyncio.to_thread(_xfr, srv.port, keyring=good)
        assert zone.get_rdataset(f"h299.{ZONE}.", "TXT") is not None
        assert zone.get_rdataset(f"www.{ZONE}.", "A") is not None
        with pytest.raises(dns.xfr.TransferError) as refused:
            await asyncio.to_thread(_xfr, srv.port)  # unsigned, and no address is allowed
        assert refused.value.rcode == dns.rcode.REFUSED
        with pytest.raises(Exception):
            await asyncio.to_thread(_xfr, srv.port, keyring=wrong)
        r = await udp(srv.port, f"www.{ZONE}")
        assert r.rcode() == dns.rcode.NOERROR  # ordinary queries unaffected
    async with DnsServer(
        build_index(data(RECORDS, 5)), port=0, transfer=TransferPolicy(allow_from=("127.0.0.0/8",))
    ) as srv:
        zone = await asyncio.to_thread(_xfr, srv.port)
        assert zone.get_rdataset(f"www.{ZONE}.", "A") is not None
    async with DnsServer(build_index(data(RECORDS, 5)), port=0) as srv:  # no transfer policy
        with pytest.raises(dns.xfr.TransferError):
            await asyncio.to_thread(_xfr, srv.port)


async def test_ixfr_from_the_journal_and_whole_zone_when_too_far_behind() -> None:
    policy = TransferPolicy(allow_from=("127.0.0.1/32",), journal=2)
    async with DnsServer(build_index(data(RECORDS, 1)), port=0, transfer=policy) as srv:
        for serial in (2, 3, 4):
            srv.update(data([*RECORDS, rs(f"v{serial}", T.A, f"192.0.2.{serial}")], serial))
        zone = dns.zone.Zone(ZONE + ".", relativize=False)
        base = await asyncio.to_thread(_xfr, srv.port)
        assert base.get_rdataset(f"v4.{ZONE}.", "A") is not None
        # From serial 2: the journal (2 versions) holds 2->3->4: an incremental answer.
        q = dns.message.make_query(ZONE, "IXFR")
        q.authority = [dns.rrset.from_text(ZONE + ".", 30, "IN", "SOA", f"ns1.{ZONE}. h.{ZONE}. 2 1 1 1 1")]
        msgs = await asyncio.to_thread(_tcp_all, srv.port, q)
        soas = [rr[0].serial for m in msgs for rr in m.answer if rr.rdtype == dns.rdatatype.SOA]
        assert soas == [4, 2, 3, 3, 4, 4]
        # From serial 1 the journal is too short: the whole zone (first SOA, records, last SOA).
        q.authority = [dns.rrset.from_text(ZONE + ".", 30, "IN", "SOA", f"ns1.{ZONE}. h.{ZONE}. 1 1 1 1 1")]
        msgs = await asyncio.to_thread(_tcp_all, srv.port, q)
        soas = [rr[0].serial for m in msgs for rr in m.answer if rr.rdtype == dns.rdatatype.SOA]
        assert soas == [4, 4]
        del zone


def _tcp_all(port: int, q: dns.message.Message) -> list[dns.message.Message]:
    """Every message of a transfer response (until the closing SOA)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        w = q.to_wire()
        s.sendall(len(w).to_bytes(2, "big") + w)
        out: list[dns.message.Message] = []
        soas = 0
        while True:
            size = int.from_bytes(_read(s, 2), "big")
            m = dns.message.from_wire(_read(s, size), one_rr_per_rrset=True)
            out.append(m)
            soas += sum(1 for rr in m.answer if rr.rdtype == dns.rdatatype.SOA)
            first_serial = out[0].answer[0][0].serial
            last = m.answer[-1] if m.answer else None
            if (
                last is not None
                and last.rdtype == dns.rdatatype.SOA
                and last[0].serial == first_serial
                and soas >= 2
            ):
                return out


def _read(s: object, n: int) -> bytes:
    import socket

    assert isinstance(s, socket.socket)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk
        buf += chunk
    return buf


def test_policy_from_config_reads_keys_and_names_problems(tmp_path: Path) -> None:
    from ingressfed.config import Config
    from ingressfed.dnsserver.transfer import policy_from_config
    from ingressfed.errors import ConfigError

    secret = tmp_path / "xfr.key"
    secret.write_text(SECRET + "\n")

    def section(transfer: dict[str, object]) -> object:
        doc = {"federation": {"name": "fed", "zone": ZONE}, "dnsServer": {"transfer": transfer}}
        return Config.model_validate(doc).dns_server.transfer

    policy = policy_from_config(
        section(
            {
                "allowFrom": ["192.0.2.0/24"],
                "keys": [{"name": "xfr-key", "secretFile": str(secret)}],
                "notify": ["127.0.0.1:5300", "[::1]:5301"],
                "notifyKey": "xfr-key",
            }
        )
    )
    assert policy is not None
    assert policy.keys[0].secret == base64.b64decode(SECRET)
    assert policy.notify == (("127.0.0.1", 5300), ("::1", 5301))
    assert policy.address_allowed("192.0.2.9") and not policy.address_allowed("198.51.100.1")
    assert policy_from_config(None) is None
    bad = tmp_path / "bad.key"
    bad.write_text("%%%not-base64")
    with pytest.raises(ConfigError, match=r"keys\[0\]\.secretFile"):
        policy_from_config(section({"keys": [{"name": "k", "secretFile": str(bad)}]}))
    with pytest.raises(ConfigError, match="notifyKey"):
        policy_from_config(section({"allowFrom": ["10.0.0.0/8"], "notifyKey": "nope"}))
    with pytest.raises(ConfigError, match="allowFrom"):
        policy_from_config(section({}))
