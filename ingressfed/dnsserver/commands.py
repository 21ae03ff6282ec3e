"""``ingressfed dns-serve``: the embedded DNS server as its own process.

Two sources for the zone:

- ``--zone-file F``: the JSON file the embedded provider writes
  (``dns.options.zoneFile``), re-read whenever it changes, so a server on the
  same volume follows the controller;
- ``--feed URL``: the controller's feed (bearer token, optional TLS), followed
  delta by delta in place; the view is persisted (``--state-file``: a snapshot and
  a journal of deltas) and served at once after a restart, also while the
  controller is unreachable.

``--config`` supplies the zone, listen address, answer mode, GeoIP database,
ECS-trusted resolvers, default cluster order and SOA settings (from
``dns.options`` when the provider is ``embedded``); flags override it.
``--reuse-port`` lets several such processes share one address (SO_REUSEPORT);
``--workers N`` (``dnsServer.workers``) runs N processes that way, one following the zone
source and passing each change on to the others (:mod:`ingressfed.dnsserver.workers`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import inspect
import logging
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.clientip import TrustedProxies
from ingressfed.dnsserver.index import AnswerMode, Locator, ZoneIndex, build_index
from ingressfed.dnsserver.server import DnsServer
from ingressfed.dnsserver.transfer import TransferPolicy, policy_from_config
from ingressfed.dnsserver.workers import DnsWorkerPool, WorkerDied, follow_primary
from ingressfed.dnsserver.zone import SoaSettings, ZoneData, zone_data_from_records
from ingressfed.dnsserver.zonefile import journal_path, load_zone_file
from ingressfed.errors import ConfigError
from ingressfed.model import Location

if TYPE_CHECKING:
    from ingressfed.feed.held import FeedStep

__all__ = ["ServeSettings", "follow_feed", "main", "parse_listen", "register", "serve", "settings_from_args"]

log = logging.getLogger(__name__)

_POLL_SECONDS = 1.0
_DEFAULT_LISTEN = "127.0.0.1:5353"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen: got {text!r}, expected HOST:PORT such as 127.0.0.1:5353 or [::1]:5353")
    return host.strip("[]"), int(port)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--zone-file", type=Path, help="JSON zone file written by the embedded provider")
    source.add_argument("--feed", metavar="URL", help="controller base URL to follow, e.g. https://ctl:9090")
    p.add_argument("--config", metavar="FILE", help="federation config: zone, dnsServer, geo, dns.options")
    p.add_argument(
        "--zone", help="the zone to serve, e.g. example.com (default: federation.zone of --config)"
    )
    p.add_argument(
        "--listen", help=f"HOST:PORT for UDP and TCP (default: dnsServer.listen or {_DEFAULT_LISTEN})"
    )
    p.add_argument(
        "--answers",
        choices=[m.value for m in AnswerMode],
        help="per-cluster record sets: nearest cluster for the querier (geo, default) or all of them",
    )
    p.add_argument("--geoip", help="MaxMind-format City database for geo answers (default: geo.database)")
    p.add_argument("--default-order", help="comma-separated cluster names for clients of unknown location")
    p.add_argument(
        "--trust-ecs-from",
        help="comma-separated CIDRs of resolvers whose EDNS Client Subnet is believed "
        "(default: geo.trustedProxies when set, else every resolver)",
    )
    p.add_argument("--token-file", type=Path, help="bearer token for the feed")
    p.add_argument("--ca-file", type=Path, help="CA bundle that signed the controller's TLS certificate")
    p.add_argument("--state-file", type=Path, help="where the last feed view is kept (served when offline)")
    p.add_argument("--reuse-port", action="store_true", help="share the address with other processes")
    p.add_argument(
        "--workers",
        type=int,
        help="processes answering on the address (SO_REUSEPORT), 1..64 (default: dnsServer.workers or 1)",
    )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop; auto uses uvloop when installed",
    )
    p.add_argument("--tcp-idle-timeout", type=float, default=10.0, help="seconds (default %(default)s)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dns-serve",
        help="run the embedded authoritative DNS server alone (zone file or controller feed)",
    )
    _add_arguments(p)
    p.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class ServeSettings:
    zone: str
    host: str
    port: int
    answers: AnswerMode = AnswerMode.GEO
    geoip: str | None = None
    default_order: tuple[str, ...] = ()
    trust_ecs_from: tuple[str, ...] = ()  # empty: every resolver
    soa: SoaSettings | None = None
    reuse_port: bool = False
    tcp_idle_timeout: float = 10.0
    transfer: TransferPolicy | None = None
    workers: int = 1


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Flags over ``--config`` over defaults; ConfigError or ValueError naming the problem."""
    zone = args.zone
    listen = args.listen
    answers = args.answers
    geoip = args.geoip
    order = _csv(args.default_order)
    trust = _csv(args.trust_ecs_from)
    soa: SoaSettings | None = None
    transfer: TransferPolicy | None = None
    workers = args.workers
    if args.config:
        from ingressfed.config import load_config
        from providers.embedded import soa_from_options

        config = load_config(args.config)
        zone = zone or config.federation.zone
        listen = listen or config.dns_server.listen
        answers = answers or config.dns_server.answers
        geoip = geoip or (str(config.geo.database) if config.geo.database else None)
        order = order or tuple(config.geo.default_order)
        trust = trust or tuple(str(c) for c in config.geo.trusted_proxies)
        if config.dns.provider == "embedded":
            soa = soa_from_options(zone, config.dns.options)
        transfer = policy_from_config(config.dns_server.transfer)
        workers = workers or config.dns_server.workers
    if workers is not None and not 1 <= workers <= 64:
        raise ConfigError([f"--workers: got {workers}, expected 1..64 (about one per CPU core)"])
    if not zone:
        raise ConfigError(["--zone: required (or give --config with federation.zone)"])
    TrustedProxies(trust)  # validates the CIDRs
    host, port = parse_listen(listen or _DEFAULT_LISTEN)
    return ServeSettings(
        zone=zone.rstrip(".").lower(),
        host=host,
        port=port,
        answers=AnswerMode(answers or AnswerMode.GEO.value),
        geoip=geoip,
        default_order=order,
        trust_ecs_from=trust,
        soa=soa,
        reuse_port=args.reuse_port or (workers or 1) > 1,
        tcp_idle_timeout=args.tcp_idle_timeout,
        transfer=transfer,
        workers=workers or 1,
    )


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
    settings: ServeSettings,
    *,
    zone_file: Path | None = None,
    feed: Callable[[DnsServer], Any] | None = None,
    locate: Callable[[str], Location | None] | None = None,
    ready: Callable[[DnsServer], Any] | None = None,
) -> None:
    """Serve until cancelled: from ``zone_file`` (reloaded when it changes), or
    from whatever ``feed(server)`` (a coroutine function, see :func:`follow_feed`) feeds in."""
    trusted = TrustedProxies(settings.trust_ecs_from) if settings.trust_ecs_from else None
    locator = Locator(locate, trusts_ecs_from=trusted.trusts if trusted else None) if locate else None

    def index_of(data: ZoneData) -> ZoneIndex:
        return build_index(
            data, answers=settings.answers, locator=locator, default_order=settings.default_order
        )

    def from_file(path: Path) -> ZoneData:
        data = load_zone_file(path)
        if data is None:
            log.warning("zone file %s does not exist yet; serving an empty zone %s", path, settings.zone)
            return zone_data_from_records(settings.zone, (), soa=settings.soa)
        if data.zone != settings.zone:
            raise ConfigError([f"--zone-file: {path} holds zone {data.zone}, not {settings.zone}"])
        return data

    def stamp(path: Path) -> tuple[tuple[int, int] | None, ...]:
        """The zone file's and its journal's modification times and sizes (None: no such file)."""
        out: list[tuple[int, int] | None] = []
        for p in (path, journal_path(path)):
            try:
                st = os.stat(p)
            except FileNotFoundError:
                out.append(None)
                continue
            out.append((st.st_mtime_ns, st.st_size))
        return tuple(out)

    seen = stamp(zone_file) if zone_file is not None else None
    first = (
        from_file(zone_file)
        if zone_file is not None
        else zone_data_from_records(settings.zone, (), soa=settings.soa)
    )
    async with DnsServer(
        index_of(first),
        host=settings.host,
        port=settings.port,
        reuse_port=settings.reuse_port,
        tcp_idle_timeout=settings.tcp_idle_timeout,
        transfer=settings.transfer,
    ) as server:
        try:
            await _serve_on(
                server,
                zone_file=zone_file,
                feed=feed,
                ready=ready,
                seen=seen,
                from_file=from_file,
                stamp=stamp,
            )
        finally:
            log.info(
                "DNS server for zone %s (pid %d) answered %d queries",
                settings.zone,
                os.getpid(),
                server.queries,
            )


async def _serve_on(
    server: DnsServer,
    *,
    zone_file: Path | None,
    feed: Callable[[DnsServer], Any] | None,
    ready: Callable[[DnsServer], Any] | None,
    seen: tuple[tuple[int, int] | None, ...] | None,
    from_file: Callable[[Path], ZoneData],
    stamp: Callable[[Path], tuple[tuple[int, int] | None, ...]],
) -> None:
    if ready is not None:
        started = ready(server)
        if inspect.isawaitable(started):
            await started
    if feed is not None:
        await feed(server)
        return
    if zone_file is not None:
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            now = stamp(zone_file)
            if now == seen:
                continue
            seen = now
            try:
                server.update_soon(await asyncio.to_thread(from_file, zone_file))
            except ConfigError as exc:
                log.error("keeping the last good zone: %s", exc)


async def follow_feed(
    server: DnsServer,
    follower: Any,
    *,
    zone: str,
    soa: SoaSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve each step ``follower`` (a :class:`ingressfed.feed.follower.FeedFollower`) takes.

    A delta reaches the server as the record-set changes it made (the follower's
    :class:`~ingressfed.feed.held.FeedStep`), on a zone version made with
    :meth:`ZoneData.following`: the server follows them in place, O(changes), the way it
    follows the embedded provider. Only a whole view (the first, another epoch, a
    follower too far behind) builds the zone from every record set.

    Feed versions are not SOA serials (they may restart with a new epoch), so the
    serial is the wall clock in seconds, and always one more than the last.
    """
    serial = server.index.serial
    current: ZoneData | None = None  # the zone last handed to the server
    folding: set[asyncio.Task[object]] = set()

    def apply(step: FeedStep) -> None:
        nonlocal serial, current
        held = step.held
        if str(held.zone).rstrip(".").lower() != zone:
            log.error("feed view is for zone %s, not %s; ignored", held.zone, zone)
            current = None  # the next view that is ours is served whole
            return
        changes = step.changes
        if current is not None and changes == ():
            return  # routes or clusters changed, not the zone
        base = serial
        serial = max(serial + 1, int(clock())) % 0x100000000 or 1
        if current is None or changes is None:
            current = zone_data_from_records(zone, held.records.values(), serial=serial, soa=soa)
            server.update_soon(current)
            return
        if step.whole:
            current = zone_data_from_records(zone, held.records.values(), serial=serial, soa=soa)
        else:
            current = ZoneData.following(current, changes, serial=serial)
            if current.needs_folding:
                # Bounds the versions held in memory; off the event loop (O(zone)).
                task: asyncio.Task[object] = asyncio.ensure_future(asyncio.to_thread(_fold, current))
                folding.add(task)
                task.add_done_callback(folding.discard)
        server.update_soon(current, changes, base_serial=base)

    async with follower:
        await follower.follow(apply)


def _fold(data: ZoneData) -> object:
    return data.records


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        locate, close = _locate_from(settings.geoip)
    except (ValueError, ConfigError) as exc:
        print(f"dns-serve: {exc}", file=sys.stderr)
        return 2

    def feed_source() -> Callable[[DnsServer], Any] | None:
        if args.feed is None:
            return None
        from ingressfed.feed.follower import FeedFollower, client_ssl_context

        token = args.token_file.read_text().strip() if args.token_file else None
        ssl_context = client_ssl_context(ca_file=args.ca_file) if args.ca_file else None
        follower = FeedFollower(args.feed, token=token, state_file=args.state_file, ssl_context=ssl_context)

        async def feed(server: DnsServer) -> None:
            await follow_feed(server, follower, zone=settings.zone, soa=settings.soa)

        return feed

    pool: list[DnsWorkerPool] = []  # the worker processes, once the primary's sockets are bound

    async def started(server: DnsServer) -> None:
        if settings.workers > 1:
            workers = DnsWorkerPool(
                settings.workers - 1,
                run_worker,
                (worker_settings(settings, server.port), args.loop, logging.getLogger().getEffectiveLevel()),
            )
            pool.append(workers)
            server.update_listeners.append(workers.forward)
            workers.start(server.index.data)
            await workers.ready(_WORKER_START_SECONDS)
        print(
            f"serving {settings.zone} on {server.host} port {server.port}"
            + (f" ({settings.workers} processes)" if settings.workers > 1 else ""),
            flush=True,
        )

    async def main_task() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        serving = asyncio.create_task(
            serve(settings, zone_file=args.zone_file, feed=feed_source(), locate=locate, ready=started)
        )
        stopping = asyncio.create_task(stop.wait())
        waiting: set[asyncio.Task[Any]] = {serving, stopping}
        try:
            while True:
                if pool and len(waiting) == 2:
                    # The workers have started: from now on one exiting ends the server too.
                    waiting.add(asyncio.create_task(pool[0].died()))
                done, _ = await asyncio.wait(waiting, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
                if done & {serving, stopping}:
                    break
                if done:
                    number = next(iter(done)).result()
                    raise WorkerDied(f"DNS worker process {number} exited; stopping the whole server")
        finally:
            for task in waiting:
                task.cancel()
            await asyncio.wait(waiting)
            if pool:
                await pool[0].stop()
        failure = None if serving.cancelled() else serving.exception()
        if failure is not None:
            raise failure

    try:
        _run_loop(main_task, args.loop)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"dns-serve: {exc}", file=sys.stderr)
        return 2
    except WorkerDied as exc:
        print(f"dns-serve: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    return 0


_WORKER_START_SECONDS = 60.0  # spawning imports the package afresh; slow on a loaded machine


def worker_settings(settings: ServeSettings, port: int) -> ServeSettings:
    """A worker's settings: the primary's, on the primary's bound port, sending no NOTIFY
    (the primary tells the secondaries; any process may then answer their transfer)."""
    transfer = dataclasses.replace(settings.transfer, notify=()) if settings.transfer else None
    return dataclasses.replace(settings, port=port, reuse_port=True, workers=1, transfer=transfer)


def run_worker(
    inbox: multiprocessing.connection.Connection, number: int, settings: ServeSettings, loop: str, level: int
) -> None:
    """One worker process (spawned by :class:`DnsWorkerPool`): serve what the primary sends."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Ctrl-C reaches the whole process group: the primary alone decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    locate, close = _locate_from(settings.geoip)

    async def worker_task() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        serving = asyncio.create_task(
            serve(settings, feed=lambda server: follow_primary(server, inbox), locate=locate)
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (serving, stopping):
            task.cancel()
        await asyncio.wait({serving, stopping})
        if not serving.cancelled() and serving.exception() is not None:
            log.error("DNS worker %d for zone %s failed: %s", number, settings.zone, serving.exception())

    try:
        _run_loop(worker_task, loop)
    finally:
        close()


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
