"""http-01 tokens reach a proxy's worker processes: the board and the follower tell their listeners
of every change, and ``challenge_answers`` turns the tokens into the proxy's shared fixed answers,
which a ProxyServer answers (with the same host rule as the board) and withdraws."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ingressfed.acme.challenge_feed import (
    PREFIX,
    ChallengeBoard,
    ChallengeFollower,
    add_challenge_routes,
    challenge_answers,
)
from ingressfed.proxy.server import ProxyServer
from tests.fakes.http_app import serve_app
from tests.proxy.conftest import settings


async def test_the_board_and_the_follower_report_each_change() -> None:
    board = ChallengeBoard()
    seen: list[dict[str, tuple[str, str]]] = []
    board.listeners.append(lambda tokens: seen.append(dict(tokens)))
    board.put("Shop.Example.com.", "tok1", "tok1.thumb")
    board.drop("tok1")
    board.drop("tok1")  # nothing to drop: no change, no call
    assert seen == [{"tok1": ("shop.example.com", "tok1.thumb")}, {}]

    app = web.Application()
    add_challenge_routes(app, board, token="secret")
    runner, url = await serve_app(app)
    try:
        follower = ChallengeFollower(url, token="secret", poll_timeout=0.5)
        followed: list[dict[str, tuple[str, str]]] = []
        follower.listeners.append(lambda tokens: followed.append(dict(tokens)))
        board.put("shop.example.com", "tok2", "tok2.thumb")
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer secret"}) as session:
            assert await follower.poll(session)
            assert not await follower.poll(session)  # nothing new: no call
        assert followed == [{"tok2": ("shop.example.com", "tok2.thumb")}]
    finally:
        await runner.cleanup()


async def test_shared_answers_are_answered_by_host_and_withdrawn() -> None:
    answers = challenge_answers({"tok3": ("shop.example.com", "tok3.thumb")})
    assert answers == {PREFIX.decode() + "tok3": ("shop.example.com", b"tok3.thumb")}
    async with ProxyServer(settings()) as proxy:
        proxy.share_answers("acme", answers)
        path = PREFIX + b"tok3"
        assert proxy._answer("shop.example.com:80", path + b"?x=1") == b"tok3.thumb"
        assert proxy._answer("SHOP.example.com.", path) == b"tok3.thumb"
        assert proxy._answer("other.example.com", path) is None  # another host's request routes
        assert proxy._answer("shop.example.com", PREFIX + b"nope") is None
        proxy.share_answers("acme", {})
        assert proxy._answer("shop.example.com", path) is None
