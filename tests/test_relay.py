"""The Flashbots relay protocol: signature header, relay client, local relay, over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
import rlp
from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from anvil.relay import (
    CallBundleRequest,
    ReceivedBundle,
    ReceivedMevBundle,
    RpcError,
    SimMevBundleRequest,
    start_relay,
)
from chain.node import ANVIL_DEV_KEYS, AnvilProcess, free_port
from chain.types import Bundle, SignedTx
from execution.dialects import Replacement, Submission
from execution.relay import (
    MultiRelay,
    RelayBadResponse,
    RelayClient,
    RelayError,
    RelayOutcome,
    RelayThrottled,
    RelayTimeout,
    RelayUnreachable,
    mev_bundle,
    parse_call_bundle_result,
)
from execution.signature import (
    HEADER,
    FlashbotsSigner,
    SignatureError,
    flashbots_signature,
    verify_flashbots_signature,
)

VECTOR_KEY = "0xfad9c8855b740a0b7ed4c221dbad0f33a83a49cad6b3fe8d5817ac83d38b6a19"
VECTOR_HEADER = (
    "0x96216849c49358B10257cb55b28eA603c874b05E:0x1446053488f02d460c012c84c4091cd5054d98c6cfca01"
    "b65f6c1a72773e80e60b8a4931aeee7ed18ce3adb45b2107e8c59e25556c1f871a8334e30e5bddbed21c"
)
SEARCHER = Account.from_key(VECTOR_KEY)
USER_KEY = ANVIL_DEV_KEYS[1]
COINBASE = "0x" + "c0" * 20
HASH = "0x" + "ab" * 32
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# The eth_callBundle example response of flashbots-docs advanced/rpc-endpoint.mdx, verbatim.
DOCS_CALL_BUNDLE_RESPONSE = b"""{
  "jsonrpc": "2.0",
  "id": "123",
  "result": {
    "bundleGasPrice": "476190476193",
    "bundleHash": "0x73b1e258c7a42fd0230b2fd05529c5d4b6fcb66c227783f8bece8aeacdd1db2e",
    "coinbaseDiff": "20000000000126000",
    "ethSentToCoinbase": "20000000000000000",
    "gasFees": "126000",
    "results": [
      {
        "coinbaseDiff": "10000000000063000",
        "ethSentToCoinbase": "10000000000000000",
        "fromAddress": "0x02A727155aeF8609c9f7F2179b2a1f560B39F5A0",
        "gasFees": "63000",
        "gasPrice": "476190476193",
        "gasUsed": 21000,
        "toAddress": "0x73625f59CAdc5009Cb458B751b3E7b6b48C06f2C",
        "txHash": "0x669b4704a7d993a946cdd6e2f95233f308ce0c4649d2e04944e8299efcaa098a",
        "value": "0x"
      },
      {
        "coinbaseDiff": "10000000000063000",
        "ethSentToCoinbase": "10000000000000000",
        "fromAddress": "0x02A727155aeF8609c9f7F2179b2a1f560B39F5A0",
        "gasFees": "63000",
        "gasPrice": "476190476193",
        "gasUsed": 21000,
        "toAddress": "0x73625f59CAdc5009Cb458B751b3E7b6b48C06f2C",
        "txHash": "0xa839ee83465657cac01adc1d50d96c1b586ed498120a84a64749c0034b4f19fa",
        "value": "0x"
      }
    ],
    "stateBlockNumber": 5221585,
    "totalGasUsed": 42000
  }
}"""


def signed_tx(
    nonce: int,
    *,
    to: str = COINBASE,
    value: int = 0,
    tip: int = 2 * 10**9,
    max_fee: int = 50 * 10**9,
    key: str = USER_KEY,
) -> SignedTx:
    account = Account.from_key(key)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "value": value,
            "gas": 21000,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "data": b"",
        }
    )
    return SignedTx(
        raw=bytes(signed.raw_transaction),
        hash="0x" + bytes(signed.hash).hex(),
        sender=account.address.lower(),
        nonce=nonce,
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@asynccontextmanager
async def http_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A scripted HTTP server on a free loopback port, for relays that misbehave."""
    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def client(url: str, session: aiohttp.ClientSession, **kwargs: Any) -> RelayClient:
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("backoff_base", 0.01)
    return RelayClient(url, SEARCHER, session=session, **kwargs)


# --- the signature header -------------------------------------------------------------------------


def test_signature_matches_go_utils_test_vector() -> None:
    assert flashbots_signature(b"Hello", SEARCHER) == VECTOR_HEADER
    assert verify_flashbots_signature(b"Hello", VECTOR_HEADER) == SEARCHER.address.lower()


@pytest.mark.parametrize("body", [b"", b"Hello", b'{"jsonrpc":"2.0","id":1}', bytes(range(256))])
def test_signature_is_eip191_over_the_hex_text_and_equals_eth_account(body: bytes) -> None:
    header = flashbots_signature(body, FlashbotsSigner(SEARCHER))
    address, signature_hex = header.split(":")
    message = encode_defunct(text="0x" + keccak(body).hex())
    assert Account.recover_message(message, signature=bytes.fromhex(signature_hex[2:])) == address
    reference = SEARCHER.sign_message(message).signature
    assert signature_hex == "0x" + bytes(reference).hex()


@settings(max_examples=40, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=300),
    secret=st.integers(min_value=1, max_value=SECP256K1_ORDER - 1),
    flip_at=st.integers(min_value=0),
)
def test_signature_round_trips_and_any_flipped_byte_is_rejected(
    body: bytes, secret: int, flip_at: int
) -> None:
    account = Account.from_key(secret.to_bytes(32, "big"))
    header = flashbots_signature(body, account)
    assert verify_flashbots_signature(body, header) == account.address.lower()
    # Addresses compare case-insensitively, as go-utils does.
    assert verify_flashbots_signature(body, header.lower()) == account.address.lower()

    tampered_body = bytearray(body)
    tampered_body[flip_at % len(body)] ^= 0xFF
    with pytest.raises(SignatureError):
        verify_flashbots_signature(bytes(tampered_body), header)

    address, signature_hex = header.split(":")
    signature = bytearray(bytes.fromhex(signature_hex[2:]))
    signature[flip_at % 65] ^= 0x01
    with pytest.raises(SignatureError):
        verify_flashbots_signature(body, f"{address}:0x{signature.hex()}")


def _with_v(v: int) -> str:
    address, signature_hex = VECTOR_HEADER.split(":")
    return f"{address}:{signature_hex[:-2]}{v:02x}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "no signature provided"),
        (VECTOR_HEADER.replace(":", ""), "missing separator"),
        (VECTOR_HEADER.replace(":0x", ":"), "signature is not 0x-prefixed hex"),
        (VECTOR_HEADER[:-2], "signature is 64 bytes, expected 65"),
        (VECTOR_HEADER + "00", "signature is 66 bytes, expected 65"),
        (VECTOR_HEADER[:-1] + "g", "signature is not hex"),
        (_with_v(29), "invalid recovery id"),
        (_with_v(0x1B), "signing address mismatch"),  # the other parity
        ("0x" + "11" * 20 + VECTOR_HEADER[42:], "signing address mismatch"),
    ],
)
def test_verification_rejects_malformed_headers(header: str, reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_flashbots_signature(b"Hello", header)
    assert caught.value.reason == reason


def test_verification_accepts_v_as_0_1_or_27_28() -> None:
    assert VECTOR_HEADER.endswith("1c")
    for v in (0x1C, 0x01):
        assert verify_flashbots_signature(b"Hello", _with_v(v)) == SEARCHER.address.lower()


def test_signer_repr_and_client_repr_hide_the_key(session: aiohttp.ClientSession) -> None:
    secret = VECTOR_KEY[2:]
    relay_client = client("https://user:pw@relay.example/key123?apikey=abc", session)
    for text in (repr(FlashbotsSigner(SEARCHER)), repr(relay_client), relay_client.name):
        assert secret not in text.lower()
        assert "apikey" not in text and "pw" not in text
    assert SEARCHER.address in repr(relay_client)


# --- client <-> local relay -------------------------------------------------------------------------


async def test_send_bundle_reaches_the_book_with_the_exact_raw_txs(
    session: aiohttp.ClientSession,
) -> None:
    relay = await start_relay()
    try:
        txs = (signed_tx(0, value=10**16), signed_tx(1))
        bundle = Bundle(txs=txs, block_number=1234)
        receipt = await client(relay.url, session, name="local").send_bundle(bundle)

        expected = "0x" + keccak(b"".join(bytes.fromhex(t.hash[2:]) for t in txs)).hex()
        assert receipt.bundle_hash == expected == bundle.bundle_hash
        assert receipt.relay == "local" and receipt.smart is False
        [held] = relay.book.for_block(1234)
        assert isinstance(held, ReceivedBundle)
        assert [t.raw for t in held.bundle.txs] == [t.raw for t in txs]
        assert [(t.sender, t.nonce) for t in held.bundle.txs] == [(t.sender, t.nonce) for t in txs]
        assert held.searcher == SEARCHER.address.lower()
        stats = relay.book.searcher_stats(SEARCHER.address)
        assert (stats.received, dict(stats.by_block)) == (1, {1234: 1})

        smart = await client(relay.url, session).send_bundle(
            Bundle(txs=txs, block_number=1235, builders=("flashbots",))
        )
        assert smart.smart is True and smart.raw == {"bundleHash": expected, "smart": "true"}
    finally:
        await relay.stop()


async def test_replacement_uuid_replaces_and_cancel_removes(session: aiohttp.ClientSession) -> None:
    relay = await start_relay()
    try:
        relay_client = client(relay.url, session, dialect="flashbots")
        first = Bundle(txs=(signed_tx(0),), block_number=50, replacement_uuid="u-1")
        second = Bundle(txs=(signed_tx(0, tip=3 * 10**9),), block_number=51)
        await relay_client.send_bundle(first)
        await relay_client.replace(Submission(second, Replacement("u-1", 1)))
        assert relay.book.for_block(50) == ()
        assert [e.bundle_hash for e in relay.book.for_block(51)] == [second.bundle_hash]

        cancelled = await relay_client.cancel(Replacement("u-1", 2))
        assert cancelled.cancelled == (second.bundle_hash,)
        assert relay.book.blocks() == ()
        assert (await relay_client.cancel(Replacement("u-1", 3))).cancelled == ()
    finally:
        await relay.stop()


@asynccontextmanager
async def proxy_to(target: str, rewrite: Callable[[bytes, dict[str, str]], bytes]) -> Any:
    """A hop in front of the relay that rewrites body/headers, as a careless middlebox would."""
    async with aiohttp.ClientSession() as upstream:

        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k in (HEADER, "Content-Type")}
            body = rewrite(await request.read(), headers)
            async with upstream.post(target, data=body, headers=headers) as answer:
                return web.Response(
                    body=await answer.read(), status=answer.status, content_type="application/json"
                )

        async with http_server(forward) as url:
            yield url


def _drop_signature(body: bytes, headers: dict[str, str]) -> bytes:
    del headers[HEADER]
    return body


def _reserialize(body: bytes, headers: dict[str, str]) -> bytes:
    # Same JSON, different whitespace: the signature no longer covers these bytes.
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)


@pytest.mark.parametrize(
    ("rewrite", "code", "message"),
    [
        (_drop_signature, -32600, "signature is required"),
        (_reserialize, -32025, "invalid flashbots signature"),
    ],
)
async def test_signature_errors_reach_the_client_verbatim(
    session: aiohttp.ClientSession,
    rewrite: Callable[[bytes, dict[str, str]], bytes],
    code: int,
    message: str,
) -> None:
    relay = await start_relay()
    try:
        async with proxy_to(relay.url, rewrite) as url:
            relay_client = client(url, session, name="proxied")
            with pytest.raises(RelayError) as caught:
                await relay_client.send_bundle(Bundle(txs=(signed_tx(0),), block_number=7))
        assert (caught.value.status, caught.value.code, caught.value.message) == (
            200,
            code,
            message,
        )
        assert caught.value.relay == "proxied"
        assert relay.book.blocks() == ()
        stats = relay_client.stats()
        assert (stats.sent, stats.ok, dict(stats.errors), stats.retries) == (
            1,
            0,
            {"rejected": 1},
            0,
        )
    finally:
        await relay.stop()


async def test_raw_answers_of_the_local_relay_match_the_documented_shapes(
    session: aiohttp.ClientSession,
) -> None:
    relay = await start_relay()
    try:
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle","params":[]}'
        async with session.post(
            relay.url, data=body, headers={"Content-Type": "application/json"}
        ) as answer:
            assert await answer.read() == (
                b'{"jsonrpc":"2.0","id":null,"error":'
                b'{"code":-32600,"message":"signature is required"}}'
            )
        bad_tx = b'{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle","params":[{"txs":["0x02dead"],"blockNumber":"0x10"}]}'
        headers = {
            "Content-Type": "application/json",
            HEADER: flashbots_signature(bad_tx, SEARCHER),
        }
        async with session.post(relay.url, data=bad_tx, headers=headers) as answer:
            assert answer.status == 400
            assert await answer.read() == b'{"error":"unable to decode txs"}'
    finally:
        await relay.stop()


@pytest.mark.parametrize(
    ("params", "status", "code", "message"),
    [
        ([{"txs": ["0x02f8deadbeef"], "blockNumber": "0x10"}], 400, None, "unable to decode txs"),
        ([{"txs": [], "blockNumber": "0x10"}], 200, -32602, "bundle missing txs"),
        ([{"txs": [signed_tx(0).raw_hex]}], 200, -32602, "bundle missing blockNumber"),
        (
            [{"txs": [signed_tx(0).raw_hex] * 101, "blockNumber": "0x10"}],
            200,
            -32602,
            "bundle has more than 100 txs",
        ),
    ],
)
async def test_invalid_bundles_are_refused_and_not_retried(
    session: aiohttp.ClientSession,
    params: list[Any],
    status: int,
    code: int | None,
    message: str,
) -> None:
    relay = await start_relay()
    try:
        relay_client = client(relay.url, session)
        with pytest.raises(RelayError) as caught:
            await relay_client.request("eth_sendBundle", params)
        assert (caught.value.status, caught.value.code, caught.value.message) == (
            status,
            code,
            message,
        )
        assert relay_client.stats().retries == 0
        assert relay.book.blocks() == ()
    finally:
        await relay.stop()


async def test_oversized_request_is_refused_with_the_relay_message(
    session: aiohttp.ClientSession,
) -> None:
    relay = await start_relay(max_request_bytes=4096)
    try:
        with pytest.raises(RelayError) as caught:
            await client(relay.url, session).request(
                "eth_sendBundle", [{"txs": ["0x" + "ab" * 4096]}]
            )
        assert caught.value.message == "request body is too big, max size: 4096"
    finally:
        await relay.stop()


async def test_mev_send_bundle_backrun_is_validated_hashed_and_stored(
    session: aiohttp.ClientSession,
) -> None:
    relay = await start_relay()
    try:
        relay_client = client(relay.url, session)
        target = "0x" + keccak(b"pending tx from the stream").hex()
        backrun = signed_tx(0, value=1)
        params = mev_bundle(100, [target, backrun], max_block=103)
        assert params == {
            "version": "v0.1",
            "inclusion": {"block": "0x64", "maxBlock": "0x67"},
            "body": [{"hash": target}, {"tx": backrun.raw_hex, "canRevert": False}],
        }
        receipt = await relay_client.send_mev_bundle(params)
        expected = "0x" + keccak(bytes.fromhex(target[2:] + backrun.hash[2:])).hex()
        assert receipt.bundle_hash == expected
        [held] = relay.book.for_block(100)
        assert isinstance(held, ReceivedMevBundle)
        assert (held.backrun_of, held.max_block, held.txs) == (target, 103, (backrun,))

        too_wide = dict(params, inclusion={"block": "0x64", "maxBlock": "0x90"})
        with pytest.raises(RelayError) as caught:
            await relay_client.send_mev_bundle(too_wide)
        assert (caught.value.code, caught.value.message) == (-32000, "invalid inclusion")
        with pytest.raises(ValueError, match="invalid inclusion"):
            mev_bundle(100, [target, backrun], max_block=131)
        with pytest.raises(ValueError, match="only come first"):
            mev_bundle(100, [backrun, target])
    finally:
        await relay.stop()


# --- misbehaving relays -------------------------------------------------------------------------------


async def test_500_then_200_is_retried_with_the_same_signed_bytes(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[bytes, str]] = []
    bundle = Bundle(txs=(signed_tx(0),), block_number=9)

    async def flaky(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers[HEADER]))
        if len(seen) == 1:
            return web.Response(status=500, text="upstream hiccup")
        return web.json_response(
            {"jsonrpc": "2.0", "id": 1, "result": {"bundleHash": bundle.bundle_hash}}
        )

    async with http_server(flaky) as url:
        relay_client = client(url, session)
        receipt = await relay_client.send_bundle(bundle)
    assert receipt.bundle_hash == bundle.bundle_hash
    assert len(seen) == 2 and seen[0] == seen[1]
    assert verify_flashbots_signature(*seen[0]) == SEARCHER.address.lower()
    stats = relay_client.stats()
    assert (stats.sent, stats.ok, stats.retries, dict(stats.errors)) == (1, 1, 1, {})


async def test_persistent_500_gives_the_server_error_after_the_retries(
    session: aiohttp.ClientSession,
) -> None:
    calls = 0

    async def broken(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "error": {"code": -32000, "message": "internal server error"},
            },
            status=502,
        )

    async with http_server(broken) as url:
        relay_client = client(url, session, max_retries=2)
        with pytest.raises(RelayError) as caught:
            await relay_client.call_bundle([signed_tx(0)], 5)
    assert calls == 3
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        502,
        -32000,
        "internal server error",
    )
    assert dict(relay_client.stats().errors) == {"server_error": 1}


async def test_429_backs_off_then_succeeds(session: aiohttp.ClientSession) -> None:
    answers = [web.Response(status=429, text="slow down", headers={"Retry-After": "0.2"})]
    stamps: list[float] = []

    async def throttling(request: web.Request) -> web.Response:
        stamps.append(time.monotonic())
        if answers:
            return answers.pop()
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": ["0x" + "ab" * 32]})

    async with http_server(throttling) as url:
        relay_client = client(url, session)
        receipt = await relay_client.cancel(Replacement("u"))
    assert receipt.cancelled == ("0x" + "ab" * 32,)
    assert stamps[1] - stamps[0] >= 0.19
    assert (relay_client.stats().throttled, relay_client.stats().retries) == (1, 1)


async def test_a_relay_that_never_answers_times_out_within_the_budget(
    session: aiohttp.ClientSession,
) -> None:
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="too late")

    async with http_server(silent) as url:
        relay_client = client(url, session, timeout=0.3, max_retries=3)
        started = time.monotonic()
        with pytest.raises(RelayTimeout):
            await relay_client.send_bundle(Bundle(txs=(signed_tx(0),), block_number=1))
        elapsed = time.monotonic() - started
        release.set()
    assert 0.29 <= elapsed < 0.45
    assert dict(relay_client.stats().errors) == {"timeout": 1}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (b'{"jsonrpc":"2.0","id":1,"result":{"bundleHa', "not JSON"),
        (b'["0x2228f5d8954ce31dc1601a8ba264dbd401bf1428388ce88238932815c5d6f23f"]', "a JSON list"),
        (b'{"jsonrpc":"2.0","id":1}', "no result"),
        (b'{"jsonrpc":"2.0","id":1,"result":{"bundleHash":"0x1234"}}', "not a 32-byte hash"),
    ],
)
async def test_garbage_answers_are_bad_responses(
    session: aiohttp.ClientSession, body: bytes, reason: str
) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    async with http_server(garbage) as url:
        relay_client = client(url, session)
        with pytest.raises(RelayBadResponse) as caught:
            await relay_client.send_bundle(Bundle(txs=(signed_tx(0),), block_number=1))
    assert reason in caught.value.reason
    assert caught.value.excerpt.startswith(repr(body[:10].decode())[:-1])
    assert relay_client.stats().retries == 0
    assert dict(relay_client.stats().errors) == {"bad_response": 1}


async def test_bare_error_shape_is_reported_verbatim(session: aiohttp.ClientSession) -> None:
    async def old_relay(request: web.Request) -> web.Response:
        return web.json_response({"error": "error in signature check 0xabc"}, status=403)

    async with http_server(old_relay) as url:
        with pytest.raises(RelayError) as caught:
            await client(url, session).send_bundle(Bundle(txs=(signed_tx(0),), block_number=1))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        403,
        None,
        "error in signature check 0xabc",
    )


async def test_rate_limiter_holds_the_limit_in_every_window(
    session: aiohttp.ClientSession,
) -> None:
    relay = await start_relay()
    try:
        relay_client = client(
            relay.url,
            session,
            timeout=5.0,
            rate_limit_per_min={"eth_sendBundle": 3},
            rate_window=0.4,
        )
        started = time.monotonic()
        await asyncio.gather(
            *(
                relay_client.send_bundle(Bundle(txs=(signed_tx(0),), block_number=b))
                for b in range(7)
            )
        )
        elapsed = time.monotonic() - started
        arrivals = sorted(e.received_at for b in range(7) for e in relay.book.for_block(b))
        assert len(arrivals) == 7
        # Any 4 consecutive arrivals span at least one window (minus loopback jitter).
        assert all(arrivals[i + 3] - arrivals[i] >= 0.38 for i in range(4))
        assert elapsed >= 0.79
        assert relay_client.stats().rate_limited == 4

        hurried = client(relay.url, session, timeout=0.2, rate_limit_per_min={"eth_sendBundle": 1})
        await hurried.send_bundle(Bundle(txs=(signed_tx(1),), block_number=1))
        with pytest.raises(RelayThrottled):
            await hurried.send_bundle(Bundle(txs=(signed_tx(1),), block_number=2))
    finally:
        await relay.stop()


async def _until_healthy(outcomes: AsyncIterator[RelayOutcome]) -> AsyncIterator[RelayOutcome]:
    async for outcome in outcomes:
        yield outcome
        if outcome.relay == "healthy":
            return


async def test_multi_relay_delivers_to_the_healthy_relay_despite_dead_ones(
    session: aiohttp.ClientSession,
) -> None:
    relay = await start_relay()
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="")

    try:
        closed_url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
        async with http_server(silent) as silent_url:
            multi = MultiRelay(
                [
                    client(silent_url, session, name="silent", timeout=1.0),
                    client(closed_url, session, name="closed", timeout=1.0),
                    client(relay.url, session, name="healthy", timeout=1.0),
                ]
            )
            bundle = Bundle(txs=(signed_tx(0),), block_number=77)
            async with aclosing(multi.iter_send(bundle)) as outcomes_so_far:
                seen = [outcome async for outcome in _until_healthy(outcomes_so_far)]
            assert "silent" not in [o.relay for o in seen]
            healthy = seen[-1]
            assert healthy.ok and healthy.receipt is not None
            assert healthy.elapsed < 0.5
            assert [e.bundle_hash for e in relay.book.for_block(77)] == [bundle.bundle_hash]

            outcomes = await multi.send_bundle(Bundle(txs=(signed_tx(1),), block_number=78))
            release.set()
        by_name = {o.relay: o for o in outcomes}
        assert [o.relay for o in outcomes] == ["silent", "closed", "healthy"]
        assert isinstance(by_name["silent"].error, RelayTimeout)
        assert isinstance(by_name["closed"].error, RelayUnreachable)
        assert by_name["healthy"].ok and by_name["healthy"].elapsed < 0.5
        assert len(relay.book.for_block(78)) == 1
    finally:
        await relay.stop()


async def test_send_for_blocks_targets_consecutive_blocks(session: aiohttp.ClientSession) -> None:
    relay = await start_relay()
    try:
        multi = MultiRelay([client(relay.url, session, name="local")])
        txs = (signed_tx(0), signed_tx(1))
        outcomes = await multi.send_for_blocks(Bundle(txs=txs, block_number=200), 3)
        assert sorted(outcomes) == [200, 201, 202]
        for block in (200, 201, 202):
            [held] = relay.book.for_block(block)
            assert isinstance(held, ReceivedBundle)
            assert [t.raw for t in held.bundle.txs] == [t.raw for t in txs]
            assert outcomes[block][0].receipt is not None
        with pytest.raises(ValueError, match="replacementUuid"):
            await multi.send_for_blocks(Bundle(txs=txs, block_number=1, replacement_uuid="u"), 2)
    finally:
        await relay.stop()


# --- eth_callBundle ---------------------------------------------------------------------------------


def test_call_bundle_parses_the_documented_example() -> None:
    result = parse_call_bundle_result(orjson.loads(DOCS_CALL_BUNDLE_RESPONSE)["result"])
    assert result.bundle_gas_price == 476190476193
    assert (
        result.bundle_hash == "0x73b1e258c7a42fd0230b2fd05529c5d4b6fcb66c227783f8bece8aeacdd1db2e"
    )
    assert result.coinbase_diff == 20000000000126000
    assert result.eth_sent_to_coinbase == 20000000000000000
    assert result.gas_fees == 126000
    assert (result.state_block_number, result.total_gas_used) == (5221585, 42000)
    first, second = result.results
    assert first.tx_hash == "0x669b4704a7d993a946cdd6e2f95233f308ce0c4649d2e04944e8299efcaa098a"
    assert second.tx_hash == "0xa839ee83465657cac01adc1d50d96c1b586ed498120a84a64749c0034b4f19fa"
    assert (first.gas_used, first.gas_price, first.gas_fees) == (21000, 476190476193, 63000)
    assert (first.coinbase_diff, first.eth_sent_to_coinbase) == (10000000000063000, 10**16)
    assert first.from_address == "0x02a727155aef8609c9f7f2179b2a1f560b39f5a0"
    assert first.to_address == "0x73625f59cadc5009cb458b751b3e7b6b48c06f2c"
    assert (first.value, first.error, first.revert, first.ok) == (b"", None, None, True)
    assert result.first_failure is None


async def test_call_bundle_over_http_returns_the_documented_example(
    session: aiohttp.ClientSession,
) -> None:
    async def docs_relay(request: web.Request) -> web.Response:
        return web.Response(body=DOCS_CALL_BUNDLE_RESPONSE, content_type="application/json")

    async with http_server(docs_relay) as url:
        result = await client(url, session).call_bundle([signed_tx(0)], 0xB63DCD)
    assert result == parse_call_bundle_result(orjson.loads(DOCS_CALL_BUNDLE_RESPONSE)["result"])


def test_call_bundle_parses_a_reverted_tx() -> None:
    answer = orjson.loads(DOCS_CALL_BUNDLE_RESPONSE)["result"]
    del answer["results"][1]["value"]
    answer["results"][1] |= {"error": "execution reverted", "revert": "too little received"}
    result = parse_call_bundle_result(answer)
    failed = result.first_failure
    assert failed is not None and failed is result.results[1]
    assert (failed.error, failed.revert, failed.value) == (
        "execution reverted",
        "too little received",
        None,
    )


async def _rpc(session: aiohttp.ClientSession, url: str, method: str, params: list[Any]) -> Any:
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=5)) as answer:
        message = await answer.json()
    if "error" in message:
        raise RpcError(-32000, message["error"]["message"])
    return message["result"]


def anvil_call_bundle(session: aiohttp.ClientSession, rpc_url: str, coinbase: str) -> Any:
    """An eth_callBundle simulator on anvil's eth_simulateV1 (EIP-1559 txs), building the fields
    the relay documents: per-tx priority fees from the simulated base fee, direct payments to the
    coinbase from the simulated ETH transfer logs."""
    transfer_topic = "0x" + keccak(b"Transfer(address,address,uint256)").hex()

    async def simulate(request: CallBundleRequest | SimMevBundleRequest) -> Any:
        if not isinstance(request, CallBundleRequest):
            raise RpcError(-32601, "method not found")
        calls, tips = [], []
        for tx in request.txs:
            _, nonce, tip, max_fee, gas, to, value, data, *_ = rlp.decode(tx.raw[1:])
            calls.append(
                {
                    "from": tx.sender,
                    "to": "0x" + to.hex(),
                    "nonce": hex(int.from_bytes(nonce, "big")),
                    "gas": hex(int.from_bytes(gas, "big")),
                    "maxFeePerGas": hex(int.from_bytes(max_fee, "big")),
                    "maxPriorityFeePerGas": hex(int.from_bytes(tip, "big")),
                    "value": hex(int.from_bytes(value, "big")),
                    "input": "0x" + data.hex(),
                }
            )
            tips.append((int.from_bytes(tip, "big"), int.from_bytes(max_fee, "big")))
        state = request.state_block
        state_tag = hex(state) if isinstance(state, int) else state
        fee_history = await _rpc(session, rpc_url, "eth_feeHistory", ["0x1", state_tag, []])
        base_fee = int(fee_history["baseFeePerGas"][-1], 16)
        overrides = {"feeRecipient": coinbase, "baseFeePerGas": hex(base_fee)}
        [block] = await _rpc(
            session,
            rpc_url,
            "eth_simulateV1",
            [
                {
                    "blockStateCalls": [{"blockOverrides": overrides, "calls": calls}],
                    "validation": True,
                    "traceTransfers": True,
                },
                state_tag,
            ],
        )
        results, totals = [], {"coinbaseDiff": 0, "gasFees": 0, "ethSentToCoinbase": 0, "gas": 0}
        for tx, call, (tip, max_fee) in zip(request.txs, block["calls"], tips, strict=True):
            gas_used = int(call["gasUsed"], 16)
            gas_fees = gas_used * min(tip, max_fee - base_fee)
            sent = sum(
                int(entry["data"], 16)
                for entry in call["logs"]
                if entry["topics"][0] == transfer_topic
                and entry["topics"][2][-40:] == coinbase[2:].lower()
            )
            entry = {
                "coinbaseDiff": str(gas_fees + sent),
                "ethSentToCoinbase": str(sent),
                "fromAddress": tx.sender,
                "gasFees": str(gas_fees),
                "gasPrice": str((gas_fees + sent) // gas_used),
                "gasUsed": gas_used,
                "toAddress": calls[len(results)]["to"],
                "txHash": tx.hash,
            }
            if call["status"] == "0x1":
                entry["value"] = call["returnData"]
            else:
                entry["error"] = call["error"]["message"]
            results.append(entry)
            totals["coinbaseDiff"] += gas_fees + sent
            totals["gasFees"] += gas_fees
            totals["ethSentToCoinbase"] += sent
            totals["gas"] += gas_used
        state_header = await _rpc(session, rpc_url, "eth_getBlockByNumber", [state_tag, False])
        return {
            "bundleGasPrice": str(totals["coinbaseDiff"] // totals["gas"]),
            "bundleHash": request.bundle_hash,
            "coinbaseDiff": str(totals["coinbaseDiff"]),
            "ethSentToCoinbase": str(totals["ethSentToCoinbase"]),
            "gasFees": str(totals["gasFees"]),
            "results": results,
            "stateBlockNumber": int(state_header["number"], 16),
            "totalGasUsed": totals["gas"],
        }

    return simulate


async def test_call_bundle_on_anvil_predicts_the_coinbase_balance_change(
    session: aiohttp.ClientSession, anvil: AnvilProcess
) -> None:
    relay = await start_relay(simulator=anvil_call_bundle(session, anvil.http_url, COINBASE))
    try:
        txs = [signed_tx(0, value=10**16), signed_tx(1, to="0x" + "11" * 20, value=5)]
        head = int(await _rpc(session, anvil.http_url, "eth_blockNumber", []), 16)
        result = await client(relay.url, session).call_bundle(txs, head + 1)

        assert result.bundle_hash == Bundle(txs=tuple(txs), block_number=0).bundle_hash
        assert result.state_block_number == head
        assert [r.tx_hash for r in result.results] == [t.hash for t in txs]
        assert [r.gas_used for r in result.results] == [21000, 21000]
        assert result.total_gas_used == 42000
        assert result.eth_sent_to_coinbase == 10**16
        assert [r.eth_sent_to_coinbase for r in result.results] == [10**16, 0]

        # Now really mine the bundle as one block paying COINBASE and compare with the chain.
        await _rpc(session, anvil.http_url, "anvil_setCoinbase", [COINBASE])
        await _rpc(session, anvil.http_url, "evm_setAutomine", [False])
        before = int(
            await _rpc(session, anvil.http_url, "eth_getBalance", [COINBASE, "latest"]), 16
        )
        for tx in txs:
            await _rpc(session, anvil.http_url, "eth_sendRawTransaction", [tx.raw_hex])
        await _rpc(session, anvil.http_url, "evm_mine", [])
        after = int(await _rpc(session, anvil.http_url, "eth_getBalance", [COINBASE, "latest"]), 16)
        mined = await _rpc(session, anvil.http_url, "eth_getBlockByNumber", ["latest", False])
        assert mined["transactions"] == [t.hash for t in txs]
        assert after - before == result.coinbase_diff
        assert result.gas_fees == result.coinbase_diff - 10**16 > 0
        assert result.bundle_gas_price == result.coinbase_diff // 42000
    finally:
        await relay.stop()


async def test_a_failing_relay_is_logged_once_then_as_a_count_and_its_last_error_kept(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="execution.relay")
    down = True

    async def builder(request: web.Request) -> web.Response:
        if down:
            error = {"code": -32000, "message": "builder down"}
            return web.json_response({"jsonrpc": "2.0", "id": 1, "error": error}, status=400)
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {"bundleHash": HASH}})

    async with http_server(builder) as url:
        relay = client(url, session, name="flaky", failure_log_every_s=3600)
        bundle = Bundle(txs=(signed_tx(0),), block_number=5)
        for _ in range(3):
            with pytest.raises(RelayError):
                await relay.send_bundle(bundle)
        relay.failure_log_every_s = 0  # the interval has passed: the count comes out
        with pytest.raises(RelayError):
            await relay.send_bundle(bundle)
        down = False
        assert (await relay.send_bundle(bundle)).bundle_hash == HASH
    stats = relay.stats()
    assert (stats.sent, stats.ok, dict(stats.errors)) == (5, 1, {"rejected": 4})
    assert stats.last_error == "HTTP 400 code -32000: builder down"
    first, count, back = [r.getMessage() for r in caplog.records if r.name == "execution.relay"]
    assert first == "relay flaky: HTTP 400 code -32000: builder down"
    assert re.fullmatch(
        r"relay flaky: 3 more failures in \d+ s, the last: HTTP 400 code -32000: builder down",
        count,
    )
    assert back == "relay flaky answers again (0 failures not logged)"


async def test_a_garbled_refund_answer_is_one_counted_bad_response(
    session: aiohttp.ClientSession,
) -> None:
    async def garbled(request: web.Request) -> web.Response:
        refunds = [{"hash": "0x12", "amount": "0x1", "blockNumber": "0x1", "status": "paid"}]
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {"refunds": refunds}})

    async with http_server(garbled) as url:
        relay_client = client(url, session)
        with pytest.raises(RelayBadResponse) as caught:
            await relay_client.fee_refunds("0x" + "cd" * 20)
    assert caught.value.reason == "status: expected pending or received, got 'paid'"
    assert relay_client.stats().errors == {"bad_response": 1}
