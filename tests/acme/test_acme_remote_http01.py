"""ACME http-01 answered by a remote ``ingressfed proxy`` (a follower in another process): the
controller runs ACME with no in-process proxy, puts the token on ``/v1/feed/acme-challenges``, and
the fake CA fetches it from the follower's plain listener; the follower then serves the issued
certificate by SNI (from the certificate feed)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509

from ingressfed.acme.challenge_feed import (
    CHALLENGES_PATH,
    ChallengeBoard,
    ChallengeFormatError,
    decode_challenges,
    encode_challenges,
)
from ingressfed.app import start
from ingressfed.config import load_config
from tests.acme.test_acme_run import HOST, _config, _wait_served
from tests.fakes.acme_server import FakeAcme
from tests.fakes.ports import free_port, free_ports

TOKEN = "t0ken-for-the-feed"


async def test_http01_token_is_fetched_from_a_remote_follower_proxy(tmp_path: Path) -> None:
    follower_port, follower_https, admin = free_ports(3)
    async with FakeAcme(http_address=("127.0.0.1", follower_port)) as acme:
        path = _config(tmp_path, acme, challenge="http-01", dns_port=free_port(), proxy_port=free_port())
        doc = yaml.safe_load(path.read_text())
        doc["proxy"] = {"enabled": False}
        doc["dnsServer"] = {"enabled": False}
        (tmp_path / "feed-token").write_text(TOKEN + "\n")
        doc["controller"]["feedTokenFile"] = str(tmp_path / "feed-token")
        path.write_text(yaml.safe_dump(doc))
        config = load_config(path)
        # The follower's own config: only its HTTPS listener (certificates come from the feed).
        follower_config = tmp_path / "follower.yaml"
        follower_config.write_text(
            yaml.safe_dump(
                {
                    "federation": {"name": "federation", "zone": "example.com"},
                    "proxy": {"tls": {"listen": f"127.0.0.1:{follower_https}"}},
                }
            )
        )
        async with start(config):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ingressfed.cli", "proxy", "--config", str(follower_config),
                "--feed", f"http://{config.controller.listen}", "--token-file", str(tmp_path / "feed-token"),
                "--listen", f"127.0.0.1:{follower_port}", "--admin-listen", f"127.0.0.1:{admin}",
            )  # fmt: skip
            try:
                cert = await _wait_served(follower_https, acme.authority.ca_pem)
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                assert san.get_values_for_type(x509.DNSName) == [HOST]
                assert acme.validations == [("http-01", HOST, True)], acme.validations
                assert acme.requests["new-order"] == 1
                # The token is gone from the board once the order ended.
                url = f"http://{config.controller.listen}{CHALLENGES_PATH}"
                async with aiohttp.ClientSession() as session:
                    async with session.get(url, params={"timeout": "0"}) as resp:
                        assert resp.status == 401  # the feed token guards it
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    async with session.get(url, params={"timeout": "0"}, headers=headers) as resp:
                        assert resp.status == 200
                        _, version, tokens = decode_challenges(await resp.read())
                    assert tokens == {} and version >= 2
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), 20)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()


async def test_the_board_knows_which_follower_holds_a_token() -> None:
    now = [0.0]
    board = ChallengeBoard(forget_after=10, clock=lambda: now[0])
    assert await board.wait_taken(0, 0.1) == []  # nobody follows: nothing to wait for
    assert await board.wait_taken(0, 0.1, at_least_one=True) != []  # ...unless one must answer
    board.heard("edge-a", board.epoch, 0)
    board.heard("edge-b", "another-epoch", 7)  # a follower of a previous controller holds nothing
    version = board.put("Shop.Example.com.", "tok", "tok.thumb")
    assert board.lagging(version) == ["edge-a", "edge-b"]
    board.heard("edge-a", board.epoch, version)
    assert board.lagging(version) == ["edge-b"]
    now[0] = 11.0  # edge-b stopped polling: forgotten, the order need not wait for it
    board.heard("edge-a", board.epoch, version)
    assert await board.wait_taken(version, 0.1) == []
    assert board.answer("shop.example.com:80", b"/.well-known/acme-challenge/tok") == b"tok.thumb"
    assert board.answer("other.example.com", b"/.well-known/acme-challenge/tok") is None
    assert board.answer("shop.example.com", b"/.well-known/acme-challenge/other") is None
    assert board.answer("shop.example.com", b"/tok") is None
    board.drop("tok")
    assert board.answer("shop.example.com", b"/.well-known/acme-challenge/tok") is None
    assert board.version == version + 1


def test_the_wire_form_is_decoded_strictly() -> None:
    epoch, version, tokens = decode_challenges(encode_challenges("e", 3, {"tok": ("a.example.com", "tok.x")}))
    assert (epoch, version, tokens) == ("e", 3, {"tok": ("a.example.com", "tok.x")})
    bad = [
        (b"not json", "not JSON"),
        (b'{"format": "x"}', "format"),
        (
            b'{"format": "ingressfed.acme-challenges/v1", "epoch": "e", "version": -1, "challenges": []}',
            "version",
        ),
        (
            b'{"format": "ingressfed.acme-challenges/v1", "epoch": "e", "version": 1, "challenges": {}}',
            "challenges",
        ),
    ]
    item = '{"format": "ingressfed.acme-challenges/v1", "epoch": "e", "version": 1, "challenges": [%s]}'
    bad += [
        (
            (item % '{"host": "a", "token": "../x", "keyAuthorization": "../x.y"}').encode(),
            "challenges[0].token",
        ),
        ((item % '{"host": "a", "token": "t", "keyAuthorization": "u.y"}').encode(), "keyAuthorization"),
        ((item % '{"token": "t", "keyAuthorization": "t.y"}').encode(), "challenges[0].host"),
    ]
    for data, field in bad:
        with pytest.raises(ChallengeFormatError) as exc:
            decode_challenges(data)
        assert field in str(exc.value), (data, exc.value)
