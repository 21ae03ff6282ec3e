"""Run fake clusters in their own process: ``python -m tests.fakes.kube --cluster east --cluster west``.

Writes one kubeconfig with a context per cluster, seeds objects from YAML files, prints one line per
cluster (``NAME URL``) once all listen, and runs until interrupted. Handy for benchmarks that must not
share a CPU core with the fake, and for poking at the controller by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import yaml

from tests.fakes.kube.server import FakeKubeAPI


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.kube", description=__doc__.splitlines()[0])
    p.add_argument(
        "--cluster",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="a cluster to serve (repeatable); port 0 or none picks a free one",
    )
    p.add_argument(
        "--kubeconfig", type=Path, required=True, help="kubeconfig file to write (merged if present)"
    )
    p.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="YAML (multi-document) objects to create in cluster NAME before serving",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls", action="store_true", help="serve https with a self-signed certificate")
    p.add_argument(
        "--identity",
        choices=("member", "host", "admin"),
        default="member",
        help="who the written kubeconfig authenticates as (RBAC is enforced for member and host)",
    )
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> int:
    clusters = args.cluster or ["fake"]
    fakes: dict[str, FakeKubeAPI] = {}
    for spec in clusters:
        name, _, port = spec.partition(":")
        fakes[name] = FakeKubeAPI(
            name=name,
            host=args.host,
            port=int(port or 0),
            tls=args.tls,
            identity=args.identity,
            bookmark_interval=args.bookmark_interval,
        )
    for seed in args.seed:
        name, _, file = seed.partition("=")
        if name not in fakes:
            print(f"--seed {seed}: no cluster named {name!r}", file=sys.stderr)
            return 2
        for doc in yaml.safe_load_all(Path(file).read_text()):
            if doc:
                fakes[name].add(doc, validate=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for i, (name, fake) in enumerate(fakes.items()):
            await stack.enter_async_context(fake)
            fake.write_kubeconfig(args.kubeconfig, context=name, make_current=i == 0)
            print(name, fake.url, flush=True)
        await stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
