"""Certificates for ``ingressfed demo``: a demo CA in the workdir and one certificate per host,
laid out as the certificate directory source reads them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ingressfed.tls.authority import LocalAuthority

__all__ = ["write_demo_certificates"]


def write_demo_certificates(workdir: Path, hosts: Iterable[str]) -> tuple[Path, Path]:
    """(CA file, certificate directory). A new CA each run: nothing here is meant to be trusted
    beyond ``curl --cacert``."""
    ca = LocalAuthority("ingressfed demo CA")
    ca_file = workdir / "ca.pem"
    ca_file.write_bytes(ca.ca_pem)
    certs = workdir / "certs"
    certs.mkdir(exist_ok=True)
    for host in hosts:
        issued = ca.issue(host)
        pair = certs / host.replace("*", "wildcard")
        pair.mkdir(exist_ok=True)
        key = pair / "tls.key"
        key.write_bytes(issued.key_pem)
        os.chmod(key, 0o600)
        (pair / "tls.crt").write_bytes(issued.cert_pem)
    return ca_file, certs
