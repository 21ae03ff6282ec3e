"""Small dnspython client helpers (async, loopback, bounded timeouts)."""

from __future__ import annotations

from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype
import dns.rrset

TIMEOUT = 3.0


async def udp(port: int, qname: str, qtype: str = "A", **kw: Any) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, **kw)
    return await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=TIMEOUT, ignore_trailing=False)


async def tcp(port: int, qname: str, qtype: str = "A", **kw: Any) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, **kw)
    return await dns.asyncquery.tcp(q, "127.0.0.1", port=port, timeout=TIMEOUT)


def values(section: list[dns.rrset.RRset], rdtype: str) -> set[str]:
    t = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for rrset in section if rrset.rdtype == t for rd in rrset}
