"""``ingressfed dns-serve``: serve a persisted zone file standalone.

The file is the one the embedded provider writes (``dns.options.zoneFile``);
it is re-read when it changes, so a separate server process follows a
controller on the same volume. ``--reuse-port`` lets several such processes
share one address (SO_REUSEPORT), the kernel spreading queries among them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geo.clientip import TrustedProxies
from ingressfed.dnsserver.index import AnswerMode, Locator, ZoneIndex, build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.zone import zone_data_from_records
from ingressfed.dnsserver.zonefile import load_zone_file
from ingressfed.errors import ConfigError
from ingressfed.model import Location

__all__ = ["main", "parse_listen", "register", "serve"]

log = logging.getLogger(__name__)

_POLL_SECONDS = 1.0


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen: got {text!r}, expected HOST:PORT such as 127.0.0.1:5353 or [::1]:5353")
    return host.strip("[]"), int(port)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zone", required=True, help="the zone to serve, e.g. example.com")
    p.add_argument(
        "--listen", default="127.0.0.1:5353", help="HOST:PORT for UDP and TCP (default %(default)s)"
    )
    p.add_argument("--zone-file", required=True, help="JSON zone file written by the embedded provider")
    p.add_argument(
        "--answers",
        choices=[m.value for m in AnswerMode],
        default=AnswerMode.GEO.value,
        help="per-cluster record sets: nearest cluster for the querier (geo) or all of them",
    )
    p.add_argument("--geoip", default=None, help="MaxMind-format City database for geo answers")
    p.add_argument(
        "--default-order", default="", help="comma-separated cluster names for unlocatable clients"
    )
    p.add_argument(
        "--trust-ecs-from",
        default=None,
        help="comma-separated CIDRs of resolvers whose EDNS Client Subnet is believed (default: all)",
    )
    p.add_argument("--reuse-port", action="store_true", help="share the address with other processes")
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop; auto uses uvloop when installed (faster)",
    )
    p.add_argument("--tcp-idle-timeout", type=float, default=10.0, help="seconds (default %(default)s)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dns-serve", help="serve a persisted zone file with the embedded DNS server")
    _add_arguments(p)
    p.set_defaults(func=run)


def _locate_from(path: str | None) -> tuple[Callable[[str], Location | None] | None, Callable[[], None]]:
    if path is None:
        return None, lambda: None
    from geo.lookup import GeoLookup

    geo = GeoLookup(path)

    def locate(ip: str) -> Location | None:
        found = geo.locate(ip)
        return found.location if found is not None else None

    return locate, geo.close


async def serve(
    *,
    zone: str,
    zone_file: Path,
    host: str,
    port: int,
    answers: AnswerMode,
    locate: Callable[[str], Location | None] | None = None,
    default_order: Sequence[str] = (),
    trusts_ecs_from: Callable[[str], bool] | None = None,
    reuse_port: bool = False,
    tcp_idle_timeout: float = 10.0,
    ready: Callable[[DnsServer], Any] | None = None,
) -> None:
    """Serve ``zone_file`` until cancelled, reloading it whenever it changes."""
    locator = Locator(locate, trusts_ecs_from=trusts_ecs_from) if locate is not None else None

    def index_of(path: Path) -> ZoneIndex:
        data = load_zone_file(path)
        if data is None:
            log.warning("zone file %s does not exist yet; serving an empty zone %s", path, zone)
            data = zone_data_from_records(zone, ())
        if data.zone != zone.rstrip(".").lower():
            raise ConfigError([f"--zone-file: {path} holds zone {data.zone}, not {zone}"])
        return build_index(data, answers=answers, locator=locator, default_order=default_order)

    def stamp() -> tuple[int, int] | None:
        try:
            st = os.stat(zone_file)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    seen = stamp()
    index = index_of(zone_file)
    async with DnsServer(
        index, host=host, port=port, reuse_port=reuse_port, tcp_idle_timeout=tcp_idle_timeout
    ) as server:
        if ready is not None:
            ready(server)
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            now = stamp()
            if now == seen:
                continue
            seen = now
            try:
                server.swap(await asyncio.to_thread(index_of, zone_file))
            except ConfigError as exc:
                log.error("keeping the last good zone: %s", exc)


def run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
        trusted = TrustedProxies(args.trust_ecs_from.split(",")) if args.trust_ecs_from else None
        locate, close = _locate_from(args.geoip)
    except (ValueError, ConfigError) as exc:
        print(f"dns-serve: {exc}", file=sys.stderr)
        return 2
    order = [n.strip() for n in args.default_order.split(",") if n.strip()]

    async def main_task() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        serving = asyncio.create_task(
            serve(
                zone=args.zone,
                zone_file=Path(args.zone_file),
                host=host,
                port=port,
                answers=AnswerMode(args.answers),
                locate=locate,
                default_order=order,
                trusts_ecs_from=trusted.trusts if trusted is not None else None,
                reuse_port=args.reuse_port,
                tcp_idle_timeout=args.tcp_idle_timeout,
                ready=lambda s: print(f"serving {args.zone} on {s.host} port {s.port}", flush=True),
            )
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            serving.cancel()
            stopping.cancel()
            await asyncio.wait({serving, stopping})
        failure = None if serving.cancelled() else serving.exception()
        if failure is not None:
            raise failure

    try:
        _run_loop(main_task, args.loop)
    except ConfigError as exc:
        print(f"dns-serve: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    return 0


def _run_loop(main_task: Callable[[], Any], loop: str) -> None:
    if loop != "asyncio":
        try:
            # Optional (extra "fast"); imported by name so type checking does not need it installed.
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if loop == "uvloop":
                raise ConfigError(
                    ["--loop uvloop: uvloop is not installed (pip install 'ingressfed[fast]')"]
                ) from None
        else:
            uvloop.run(main_task())
            return
    asyncio.run(main_task())


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m ingressfed.dnsserver``), same options as ``ingressfed dns-serve``."""
    parser = argparse.ArgumentParser(prog="python -m ingressfed.dnsserver")
    _add_arguments(parser)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)
