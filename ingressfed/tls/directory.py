"""A certificate directory: the certificate source of the static source and the demo.

Two layouts, mixable:
- ``DIR/NAME/tls.crt`` + ``DIR/NAME/tls.key`` (the key names of a ``kubernetes.io/tls`` Secret, so a
  Secret mounted as a volume under ``DIR/NAME`` works as is);
- ``DIR/NAME.crt`` + ``DIR/NAME.key``.
Each pair serves the DNS names its certificate carries. The directory is polled: a changed file
gives the catalogue new offers, and a half-written pair is refused (the host keeps its last good
certificate) until both files agree.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ingressfed.tls.book import Offer
from ingressfed.tls.catalog import CertificateCatalog
from ingressfed.tls.certificate import PrivateKey

__all__ = ["DirectorySource", "scan_directory"]

log = logging.getLogger(__name__)

_Signature = tuple[tuple[str, int, int], ...]


def _pairs(root: Path) -> list[tuple[str, Path, Path]]:
    found: list[tuple[str, Path, Path]] = []
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        log.error("certificate directory %s cannot be read: %s", root, exc)
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue  # kubelet's ..data staging directories and editor files
        if entry.is_dir():
            found.append((entry.name, entry / "tls.crt", entry / "tls.key"))
        elif entry.suffix == ".crt":
            found.append((entry.stem, entry, entry.with_suffix(".key")))
    return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # refused as MissingData, naming the source


def scan_directory(root: str | Path) -> list[Offer]:
    root = Path(root)
    return [
        Offer(source=f"file:{root / name}", cert_pem=_read(cert), key=PrivateKey(_read(key)))
        for name, cert, key in _pairs(root)
    ]


def _signature(root: Path) -> _Signature:
    out: list[tuple[str, int, int]] = []
    for _, cert, key in _pairs(root):
        for path in (cert, key):
            try:
                st = os.stat(path)
            except OSError:
                out.append((str(path), -1, -1))
            else:
                out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


class DirectorySource:
    """Feeds ``catalog`` group ``group`` from ``root``; ``run`` polls every ``interval`` seconds and
    refreshes the catalogue (which also drops certificates that expired meanwhile)."""

    DEFAULT_GROUP = "directory-default"

    def __init__(
        self,
        root: str | Path,
        catalog: CertificateCatalog,
        *,
        group: str = "directory",
        default_name: str | None = None,
        interval: float = 2.0,
        clock: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        """``default_name`` names the pair (``NAME/`` or ``NAME.crt``) that also answers unknown
        server names (offered as group ``DEFAULT_GROUP``)."""
        self.root = Path(root)
        self.default_name = default_name
        self.catalog = catalog
        self.group = group
        self.interval = interval
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._signature: _Signature | None = None

    def load(self) -> bool:
        """Read the directory if it changed; True when it did."""
        signature = _signature(self.root)
        if signature == self._signature:
            return False
        self._signature = signature
        offers = scan_directory(self.root)
        self.catalog.offer(self.group, offers)
        if self.default_name is not None:
            wanted = f"file:{self.root / self.default_name}"
            default = [o for o in offers if o.source == wanted]
            if not default:
                log.error(
                    "default certificate %s not found (expected %s/ or .crt)", wanted, self.default_name
                )
            self.catalog.offer(self.DEFAULT_GROUP, default)
        log.info("certificate directory %s: %d pairs", self.root, len(signature) // 2)
        return True

    async def run(self) -> None:
        while True:
            self.load()
            self.catalog.refresh(self._clock())
            await asyncio.sleep(self.interval)
