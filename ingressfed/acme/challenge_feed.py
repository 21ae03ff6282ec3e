"""ACME http-01 tokens for remote proxies: ``GET /v1/feed/acme-challenges``.

The CA fetches ``http://HOST/.well-known/acme-challenge/TOKEN`` from whichever proxy DNS sends it
to (any edge, any ``ingressfed proxy`` replica), so every proxy must answer the token while an order
is pending, not only the controller's in-process one. The controller keeps the pending tokens on a
``ChallengeBoard``; remote proxies long-poll it (``after`` = the version they hold, ``proxy`` = a
name of their own, like the certificate feed in tls/distribution.py) and answer from memory.

A follower's next poll says which version it holds, so the board knows when every proxy that
follows it has a new token: ``publish`` returns (and the CA is told to validate) only then, or
after ``timeout`` (a proxy that stopped polling is forgotten after ``forget_after`` seconds; one
that is slow gets a warning naming it and the order goes on: the CA may well reach another).

Key authorizations are not secrets (each is served to anyone who asks for its token on port 80),
but the endpoint follows the feed's authentication (a bearer feed token when one is configured)
and, under the ``/v1/feed`` prefix, only the leader serves it.

Wire form (strict decoding names the bad field)::

    {"format": "ingressfed.acme-challenges/v1", "epoch": "...", "version": 4,
     "challenges": [{"host": "shop.example.com", "token": "...", "keyAuthorization": "..."}]}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from ingressfed.errors import IngressfedError
from ingressfed.feed.longpoll import LongPollFollower, VersionedBody, answer, bearer_refusal, poll_query

__all__ = [
    "CHALLENGES_PATH",
    "ChallengeBoard",
    "ChallengeFollower",
    "ChallengeFormatError",
    "add_challenge_routes",
    "answer_token",
    "decode_challenges",
]

log = logging.getLogger(__name__)

CHALLENGES_PATH = "/v1/feed/acme-challenges"
FORMAT = "ingressfed.acme-challenges/v1"
PREFIX = b"/.well-known/acme-challenge/"
# RFC 8555 §8.3: the token is base64url; bounding it keeps a hostile feed from costing memory.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}\Z")
_PROXY_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")

Tokens = Mapping[str, tuple[str, str]]  # token -> (host, key authorization)


class ChallengeFormatError(IngressfedError, ValueError):
    """A challenges document does not have the wire form; the message names the field."""


def answer_token(tokens: Tokens, host: str, target: bytes) -> bytes | None:
    """The body for ``GET target`` with ``Host: host``, or None (not a pending token for that host:
    route the request as usual)."""
    if not target.startswith(PREFIX):
        return None
    entry = tokens.get(target[len(PREFIX) :].split(b"?", 1)[0].decode("ascii", "replace"))
    if entry is None or entry[0] != host.rsplit(":", 1)[0].rstrip(".").lower():
        return None
    return entry[1].encode()


def challenge_answers(tokens: Tokens) -> dict[str, tuple[str, bytes]]:
    """The tokens as a proxy's shared fixed answers (``ProxyServer.share_answers``): path ->
    (host, body), so that a proxy's worker processes answer them too."""
    return {PREFIX.decode() + token: (host, value.encode()) for token, (host, value) in tokens.items()}


def encode_challenges(epoch: str, version: int, tokens: Tokens) -> bytes:
    doc = {
        "format": FORMAT,
        "epoch": epoch,
        "version": version,
        "challenges": [
            {"host": host, "token": token, "keyAuthorization": value}
            for token, (host, value) in sorted(tokens.items())
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_challenges(data: bytes) -> tuple[str, int, dict[str, tuple[str, str]]]:
    """(epoch, version, token -> (host, key authorization))."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChallengeFormatError("acme-challenges: not JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ChallengeFormatError(f"format: expected {FORMAT!r}")
    version, epoch, items = doc.get("version"), doc.get("epoch"), doc.get("challenges")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ChallengeFormatError("version: expected a non-negative integer")
    if not isinstance(epoch, str):
        raise ChallengeFormatError("epoch: expected a string")
    if not isinstance(items, list):
        raise ChallengeFormatError("challenges: expected a list")
    tokens: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(items):
        where = f"challenges[{i}]"
        if not isinstance(item, dict):
            raise ChallengeFormatError(f"{where}: expected an object")
        host, token, value = item.get("host"), item.get("token"), item.get("keyAuthorization")
        if not isinstance(host, str) or not host or len(host) > 253:
            raise ChallengeFormatError(f"{where}.host: expected a host name")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise ChallengeFormatError(f"{where}.token: expected a base64url token")
        if not isinstance(value, str) or not value.startswith(token + ".") or len(value) > 512:
            raise ChallengeFormatError(f"{where}.keyAuthorization: expected TOKEN.THUMBPRINT")
        tokens[token] = (host.lower(), value)
    return epoch, version, tokens


class ChallengeBoard(VersionedBody):
    """The controller's pending http-01 tokens, versioned, and which follower holds which version."""

    def __init__(
        self,
        *,
        epoch: str | None = None,
        forget_after: float = 75.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(b"", epoch=epoch)
        self.forget_after = forget_after
        self._clock = clock
        self._tokens: dict[str, tuple[str, str]] = {}
        self.body = encode_challenges(self.epoch, 0, {})
        self._held: dict[str, tuple[int, float]] = {}  # follower -> (version it holds, last poll)
        self._acked = asyncio.Event()
        self.listeners: list[Callable[[Tokens], None]] = []  # called with the tokens on each change

    def answer(self, host: str, target: bytes) -> bytes | None:
        return answer_token(self._tokens, host, target)

    def put(self, host: str, token: str, value: str) -> int:
        self._tokens[token] = (host.lower().rstrip("."), value)
        return self._bump()

    def drop(self, token: str) -> None:
        if self._tokens.pop(token, None) is not None:
            self._bump()

    def _bump(self) -> int:
        self.publish(encode_challenges(self.epoch, self.version + 1, self._tokens))
        for listener in self.listeners:
            listener(dict(self._tokens))
        return self.version

    def followers(self) -> dict[str, int]:
        """Followers heard from within ``forget_after`` seconds and the version each holds."""
        now = self._clock()
        return {name: v for name, (v, seen) in self._held.items() if now - seen <= self.forget_after}

    def heard(self, name: str, epoch: str | None, after: int) -> None:
        """A poll from ``name`` holding ``after`` of ``epoch`` (another epoch holds nothing of ours)."""
        self._held[name] = (after if epoch == self.epoch else -1, self._clock())
        self._acked.set()
        self._acked = asyncio.Event()

    def lagging(self, version: int, *, at_least_one: bool = False) -> list[str]:
        followers = self.followers()
        if at_least_one and not followers:
            return ["(no proxy follows the board yet)"]
        return sorted(name for name, held in followers.items() if held < version)

    async def wait_taken(self, version: int, within: float, *, at_least_one: bool = False) -> list[str]:
        """Wait until every known follower holds ``version`` (``at_least_one``: and there is one);
        the ones that still do not after ``within`` seconds (empty: all have it)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while lagging := self.lagging(version, at_least_one=at_least_one):
            left = end - loop.time()
            if left <= 0:
                return lagging
            acked = self._acked
            with contextlib.suppress(TimeoutError):
                # Wake on every poll, and now and then to let silent followers age out.
                async with asyncio.timeout(min(left, 1.0)):
                    await acked.wait()
        return []


def add_challenge_routes(app: web.Application, board: ChallengeBoard, token: str | None) -> None:
    """``GET /v1/feed/acme-challenges?after=N&epoch=E&timeout=S&proxy=NAME``; ``token`` None: the
    feed is open (as ``/v1/feed`` is then)."""
    expected = token.encode() if token is not None else None

    async def challenges(request: web.Request) -> web.StreamResponse:
        if expected is not None and (refused := bearer_refusal(request, expected)) is not None:
            return refused
        name = request.query.get("proxy", "")
        query = poll_query(request)
        if isinstance(query, web.Response):
            return query
        after, timeout = query
        if name and not _PROXY_NAME.match(name):
            return web.json_response(
                {"error": "bad request", "detail": "proxy: 1..128 of A-Z a-z 0-9 _ . : -"}, status=400
            )
        epoch = request.query.get("epoch")
        if name:
            board.heard(name, epoch, after)
        if not await board.wait_newer(after, epoch, timeout):
            return web.Response(status=304)
        return answer(board)

    app.router.add_get(CHALLENGES_PATH, challenges)

    async def release(_: web.Application) -> None:
        board.close()

    app.on_shutdown.append(release)


def follower_name() -> str:
    return f"{socket.gethostname()[:80]}-{secrets.token_hex(4)}"


class ChallengeFollower(LongPollFollower):
    """Follows a controller's ``/v1/feed/acme-challenges``; ``answer`` is a ProxyServer answerer."""

    path = CHALLENGES_PATH
    what = "ACME challenges"
    format_error = ChallengeFormatError

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        ssl_context: ssl.SSLContext | None = None,
        poll_timeout: float = 30.0,
        backoff_max: float = 30.0,
        name: str | None = None,
    ) -> None:
        super().__init__(
            url, token=token, ssl_context=ssl_context, poll_timeout=poll_timeout, backoff_max=backoff_max
        )
        self.name = name or follower_name()
        self.tokens: dict[str, tuple[str, str]] = {}
        self.listeners: list[Callable[[Tokens], None]] = []  # called with the tokens on each change

    def answer(self, host: str, target: bytes) -> bytes | None:
        return answer_token(self.tokens, host, target)

    def query(self) -> dict[str, str]:
        return {**super().query(), "proxy": self.name}

    def take(self, body: bytes) -> None:
        epoch, version, tokens = decode_challenges(body)
        if tokens.keys() != self.tokens.keys():
            log.info(
                "acme http-01: answering %d token(s) for %s",
                len(tokens),
                sorted({h for h, _ in tokens.values()}),
            )
        changed = tokens != self.tokens
        self.epoch, self.version, self.tokens = epoch, version, tokens
        if changed:
            for listener in self.listeners:
                listener(dict(tokens))
