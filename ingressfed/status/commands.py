"""``ingressfed get <resource> [--controller URL]``: kubectl-style tables, ``-o wide|json|yaml``.

With ``--controller`` (or ``$INGRESSFED_CONTROLLER``) the resource comes from
that controller's read API, so it works wherever the controller listens,
the demo included. Without it, ``clusters`` and ``services`` are read from the
host cluster as before (``ingressfed.kube.commands``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

import yaml

from ingressfed.config import read_token_file
from ingressfed.errors import ConfigError
from ingressfed.status.client import StatusClientError, fetch, normalise_url
from ingressfed.status.tables import TABLES, table_rows

__all__ = ["CONTROLLER_ENV", "register", "run_get"]

log = logging.getLogger(__name__)

CONTROLLER_ENV = "INGRESSFED_CONTROLLER"
_HOST_ONLY = ("services",)
_HOST_TOO = ("clusters", "services")


class _Resources:
    """The ``get`` choices, read when parsing so tables added to TABLES later still count."""

    def __contains__(self, name: object) -> bool:
        return name in TABLES or name in _HOST_ONLY

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*TABLES, *_HOST_ONLY}))


def register(sub: Any) -> None:
    p = sub.add_parser(
        "get",
        help="show clusters, routes, records, events... of a controller (or the host's clusters, services)",
    )
    p.add_argument(
        "what", choices=_Resources(), metavar="RESOURCE", help=f"one of: {', '.join(_Resources())}"
    )
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml"], default=None)
    p.add_argument(
        "--controller",
        default=os.environ.get(CONTROLLER_ENV) or None,
        help=f"the controller's listener, e.g. http://127.0.0.1:9090 (default: ${CONTROLLER_ENV})",
    )
    p.add_argument("--token-file", default=None, help="file holding the controller's read-API token")
    p.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="after listing, print items as they change (with --controller)",
    )
    p.add_argument("--kubeconfig", default=None, help="without --controller: kubeconfig of the host cluster")
    p.add_argument("--host-cluster-context", default=None, help="without --controller: host cluster context")
    p.set_defaults(func=run_get)


def _format_row(row: list[str], widths: list[int]) -> str:
    return "   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def _print_table(rows: list[list[str]], out: TextIO) -> list[int]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write(_format_row(r, widths) + "\n")
    out.flush()
    return widths


def _dump(doc: Any, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        out.write(yaml.safe_dump(doc, sort_keys=True))


async def run_get(args: argparse.Namespace, *, out: TextIO = sys.stdout) -> int:
    if args.controller is None:
        if args.what in _HOST_TOO:
            from ingressfed.kube.commands import run_get as host_get

            result: int = await host_get(args, out=out)
            return result
        print(
            f"error: get {args.what}: name the controller with --controller URL (or ${CONTROLLER_ENV}),"
            " e.g. --controller http://127.0.0.1:9090",
            file=sys.stderr,
        )
        return 2
    if args.what in _HOST_ONLY:
        print(f"error: get {args.what} reads the host cluster: drop --controller", file=sys.stderr)
        return 2
    watch = bool(getattr(args, "watch", False))
    try:
        token = read_token_file(args.token_file) if args.token_file else None
        base = normalise_url(args.controller)
        doc = await fetch(base, f"/v1/status/{args.what}", token=token)
    except (ConfigError, StatusClientError) as exc:
        print(f"error: get {args.what}: {exc}", file=sys.stderr)
        return 1
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        print(f"error: get {args.what}: {base} answered without an items list", file=sys.stderr)
        return 1
    if args.output in ("json", "yaml"):
        _dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output, out)
        widths: list[int] = []
    else:
        rows = table_rows(TABLES[args.what], items, now=time.time(), wide=args.output == "wide")
        if len(rows) == 1 and not watch:
            print(f"No {args.what} found at {base}.", file=sys.stderr)
            return 0
        widths = _print_table(rows, out)
    if not watch:
        return 0
    try:
        await _watch(args, base=base, token=token, doc=doc, widths=widths, out=out)
    except StatusClientError as exc:
        print(f"error: get {args.what} --watch: {exc}", file=sys.stderr)
        return 1
    return 0


def _fingerprints(args: argparse.Namespace, items: list[Any]) -> dict[str, tuple[str, Any]]:
    """Item key -> (the row as shown at a fixed clock, the item): ages do not count as changes."""
    table = TABLES[args.what]
    wide = args.output == "wide"
    out: dict[str, tuple[str, Any]] = {}
    for item in items:
        row = table_rows(table, [item], now=0.0, wide=wide)[1]
        key = json.dumps([item.get(k) for k in ("name", "host", "path", "type", "setIdentifier")])
        out[key] = ("\0".join(row), item)
    return out


async def _watch(
    args: argparse.Namespace, *, base: str, token: str | None, doc: Any, widths: list[int], out: TextIO
) -> None:
    """Long-poll the status version; on each change print the items whose row changed (kubectl -w)."""
    version = doc.get("version")
    seen = _fingerprints(args, doc["items"])
    while True:
        overview = await fetch(base, f"/v1/status?after={version}&timeout=30", token=token, seconds=45)
        if overview.get("version") == version:
            continue
        version = overview.get("version")
        doc = await fetch(base, f"/v1/status/{args.what}", token=token)
        now_seen = _fingerprints(args, doc["items"])
        changed = [item for key, (row, item) in now_seen.items() if seen.get(key, ("",))[0] != row]
        seen = now_seen
        for item in changed:
            if args.output == "json":
                out.write(json.dumps(item, sort_keys=True) + "\n")
            elif args.output == "yaml":
                out.write("---\n" + yaml.safe_dump(item, sort_keys=True))
            else:
                row = table_rows(TABLES[args.what], [item], now=time.time(), wide=args.output == "wide")[1]
                out.write(_format_row(row, widths) + "\n")
        out.flush()
