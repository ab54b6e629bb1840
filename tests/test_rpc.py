"""The JSON-RPC clients against real anvil processes, plus a scripted local node for the
behaviours anvil cannot be made to show (stalls, garbage frames, out-of-order batch answers)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ChainError, ConnectionLost, MalformedResponse, RpcError, RpcTimeout
from chain.node import ANVIL_DEV_KEYS, AnvilProcess, free_port
from chain.rpc import (
    HttpRpc,
    IpcRpc,
    Rpc,
    StreamRpc,
    WsRpc,
    connect,
    eth_block_number,
    eth_call,
    eth_chain_id,
    eth_get_balance,
    eth_get_block,
    eth_get_logs,
    eth_get_transaction_count,
    eth_send_raw_transaction,
)
from chain.rpc_codec import batch_outcomes
from chain.types import BlockHeader, Log, PendingTx

SENDER = Account.from_key(ANVIL_DEV_KEYS[0])
RECIPIENT = "0x" + "ab" * 20
ANSWER_TOPIC = keccak(b"Answer(uint256)")
# A contract whose code, on any call, emits LOG1(ANSWER_TOPIC, 42) and returns uint256 42.
ANSWER_RUNTIME = (
    bytes.fromhex("602a600052" + "7f") + ANSWER_TOPIC + bytes.fromhex("60206000a1" + "60206000f3")
)
ANSWER_INITCODE = (
    bytes.fromhex(f"60{len(ANSWER_RUNTIME):02x}600c600039" + f"60{len(ANSWER_RUNTIME):02x}6000f3")
    + ANSWER_RUNTIME
)
FORTY_TWO = (42).to_bytes(32, "big")


def signed(nonce: int, *, to: str | None = RECIPIENT, value: int = 0, data: bytes = b"") -> Any:
    tx: dict[str, Any] = {
        "chainId": 31337,
        "nonce": nonce,
        "value": value,
        "data": data,
        "gas": 21_000 if not data else 300_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "type": 2,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return Account.sign_transaction(tx, ANVIL_DEV_KEYS[0])


def tx_hash(signed_tx: Any) -> str:
    return "0x" + bytes(signed_tx.hash).hex()


async def send_and_wait(rpc: Rpc, tx: Any) -> dict[str, Any]:
    """Send a signed tx and wait for its receipt (anvil mines just after it answers)."""
    assert await eth_send_raw_transaction(rpc, bytes(tx.raw_transaction)) == tx_hash(tx)
    for _ in range(1000):
        receipt = await rpc.call("eth_getTransactionReceipt", (tx_hash(tx),))
        if receipt is not None:
            return receipt
        await asyncio.sleep(0.005)
    raise AssertionError(f"no receipt for {tx_hash(tx)}")


async def deploy_answer(rpc: Rpc, nonce: int) -> str:
    receipt = await send_and_wait(rpc, signed(nonce, to=None, data=ANSWER_INITCODE))
    return str(receipt["contractAddress"]).lower()


async def connect_ipc(path: str) -> IpcRpc:
    """anvil creates its socket a moment after it answers over TCP."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return await IpcRpc.connect(path)
        except ConnectionLost:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


@pytest.fixture
def ipc_dir() -> Iterator[Path]:
    # Unix socket paths are limited to ~108 bytes; pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="rpc-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def ipc_anvil(
    anvil_factory: Callable[..., AnvilProcess], ipc_dir: Path
) -> tuple[AnvilProcess, str]:
    path = str(ipc_dir / "anvil.ipc")
    return anvil_factory("--ipc", path), path


async def open_client(kind: str, node: AnvilProcess, ipc_path: str) -> Rpc:
    if kind == "ws":
        return await connect(node.ws_url)
    if kind == "http":
        return await connect(node.http_url)
    return await connect_ipc(ipc_path)


@pytest.fixture(params=["ws", "http", "ipc"])
async def client(
    request: pytest.FixtureRequest, ipc_anvil: tuple[AnvilProcess, str]
) -> AsyncIterator[Rpc]:
    node, path = ipc_anvil
    rpc = await open_client(request.param, node, path)
    yield rpc
    await rpc.close()


@pytest.fixture(params=["ws", "ipc"])
async def stream_client(
    request: pytest.FixtureRequest, ipc_anvil: tuple[AnvilProcess, str]
) -> AsyncIterator[StreamRpc]:
    node, path = ipc_anvil
    rpc = await open_client(request.param, node, path)
    assert isinstance(rpc, StreamRpc)
    yield rpc
    await rpc.close()


# -- against anvil -----------------------------------------------------------------------------


async def test_helpers_read_and_write_the_chain(client: Rpc) -> None:
    assert await eth_chain_id(client) == 31337
    assert await eth_block_number(client) == 0
    genesis = await eth_get_block(client, 0)
    assert isinstance(genesis, BlockHeader) and genesis.number == 0

    await send_and_wait(client, signed(0, value=123_456_789))
    assert await eth_block_number(client) == 1
    block = await eth_get_block(client, "latest")
    assert block is not None and block.number == 1 and block.parent_hash == genesis.hash
    assert await eth_get_block(client, 99) is None
    assert await eth_get_balance(client, RECIPIENT) == 123_456_789
    assert await eth_get_balance(client, RECIPIENT, 0) == 0
    assert await eth_get_transaction_count(client, SENDER.address) == 1

    contract = await deploy_answer(client, 1)
    assert await eth_call(client, contract, b"\x01\x02") == FORTY_TWO
    assert await eth_call(client, contract, b"", block=1) == b""  # not deployed yet at block 1

    emit = signed(2, to=contract, data=b"\x00")
    await send_and_wait(client, emit)
    logs = await eth_get_logs(client, {"address": contract, "fromBlock": 0, "toBlock": "latest"})
    assert logs == [
        Log(
            address=contract,
            topics=(ANSWER_TOPIC,),
            data=FORTY_TWO,
            block_number=3,
            block_hash=logs[0].block_hash,
            tx_hash=tx_hash(emit),
            tx_index=0,
            log_index=0,
        )
    ]
    assert logs[0].block_hash == (await eth_get_block(client, 3)).hash  # type: ignore[union-attr]


async def raw_answer(url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as reply:
        return orjson.loads(await reply.read())


async def test_node_error_arrives_verbatim(
    client: Rpc, ipc_anvil: tuple[AnvilProcess, str]
) -> None:
    node, _ = ipc_anvil
    underpriced = Account.sign_transaction(
        {
            "chainId": 31337,
            "nonce": 0,
            "to": to_checksum_address(RECIPIENT),
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 1,
            "maxPriorityFeePerGas": 1,
            "type": 2,
        },
        ANVIL_DEV_KEYS[0],
    )
    params = ("0x" + bytes(underpriced.raw_transaction).hex(),)
    raw = await raw_answer(
        node.http_url,
        {"jsonrpc": "2.0", "id": 7, "method": "eth_sendRawTransaction", "params": params},
    )
    with pytest.raises(RpcError) as caught:
        await client.call("eth_sendRawTransaction", params)
    assert caught.value.code == raw["error"]["code"]
    assert caught.value.message == raw["error"]["message"]
    assert "fee" in caught.value.message.lower()
    assert isinstance(caught.value, ChainError)


async def test_batch_keeps_request_order_with_failures(client: Rpc) -> None:
    await client.call("anvil_setBalance", (RECIPIENT, hex(5 * 10**18)))
    outcomes = await client.batch(
        [
            ("eth_chainId", ()),
            ("eth_getBalance", ("0x12", "latest")),
            ("eth_getBalance", (RECIPIENT, "latest")),
            ("eth_getBlockByNumber", ("0x0", False)),
            ("eth_sendRawTransaction", ("0xdeadbeef",)),
            ("eth_blockNumber", ()),
        ]
    )
    assert outcomes[0] == "0x7a69"
    assert isinstance(outcomes[1], RpcError)
    assert outcomes[2] == hex(5 * 10**18)
    assert outcomes[3]["number"] == "0x0"
    assert isinstance(outcomes[4], RpcError)
    assert outcomes[5] == "0x0"
    assert await client.batch([]) == []


async def test_subscriptions_deliver_pending_txs_and_heads(stream_client: StreamRpc) -> None:
    full = await stream_client.subscribe("newPendingTransactions", True)
    hashes = await stream_client.subscribe("newPendingTransactions")
    heads = await stream_client.subscribe("newHeads")
    sent = [signed(nonce, value=1000 + nonce) for nonce in range(3)]
    for tx in sent:
        await send_and_wait(stream_client, tx)

    async with asyncio.timeout(5):
        seen_full = [PendingTx.from_rpc(await anext(full)) for _ in sent]
        seen_hashes = [await anext(hashes) for _ in sent]
        seen_heads = [BlockHeader.from_rpc(await anext(heads)) for _ in sent]
    assert [(p.hash, p.sender, p.to, p.value, p.nonce) for p in seen_full] == [
        (tx_hash(tx), SENDER.address.lower(), RECIPIENT, 1000 + n, n) for n, tx in enumerate(sent)
    ]
    assert seen_hashes == [tx_hash(tx) for tx in sent]
    assert [h.number for h in seen_heads] == [1, 2, 3]
    assert full.dropped == hashes.dropped == heads.dropped == 0

    await heads.unsubscribe()
    with pytest.raises(StopAsyncIteration):
        await anext(heads)
    # The node stopped the stream too: unsubscribing again there reports nothing to remove.
    assert await stream_client.call("eth_unsubscribe", (heads.id,)) is False


async def test_logs_subscription(stream_client: StreamRpc) -> None:
    contract = await deploy_answer(stream_client, 0)
    logs = await stream_client.subscribe("logs", {"address": contract})
    emit = signed(1, to=contract, data=b"\x00")
    await eth_send_raw_transaction(stream_client, bytes(emit.raw_transaction))
    async with asyncio.timeout(5):
        log = Log.from_rpc(await anext(logs))
    assert (log.address, log.topic0, log.data, log.tx_hash) == (
        contract,
        ANSWER_TOPIC,
        FORTY_TWO,
        tx_hash(emit),
    )


@pytest.mark.faults
@pytest.mark.parametrize("kind", ["ws", "ipc"])
async def test_killed_node_fails_calls_and_subscriptions_promptly(
    kind: str, ipc_anvil: tuple[AnvilProcess, str]
) -> None:
    node, path = ipc_anvil
    rpc = await open_client(kind, node, path)
    assert isinstance(rpc, StreamRpc)
    heads = await rpc.subscribe("newHeads")
    # Mining 100k blocks keeps anvil busy for far longer than this test: these calls stay pending.
    long_calls = [
        asyncio.create_task(rpc.call("anvil_mine", (hex(100_000),), timeout=60)) for _ in range(3)
    ]
    await asyncio.sleep(0.2)
    assert rpc.in_flight == 3 and rpc.connected
    started = time.monotonic()
    node.kill()
    async with asyncio.timeout(3):
        for task in long_calls:
            with pytest.raises(ConnectionLost):
                await task
        await rpc.closed.wait()
        with pytest.raises(ConnectionLost):
            async for _ in heads:
                pass
    assert time.monotonic() - started < 3
    assert not rpc.connected and rpc.in_flight == 0
    with pytest.raises(ConnectionLost):
        await rpc.call("eth_blockNumber")
    await rpc.close()


async def test_two_hundred_concurrent_calls_on_one_websocket(anvil: AnvilProcess) -> None:
    accounts = ["0x" + f"{index + 1:040x}" for index in range(200)]
    async with connect(anvil.ws_url) as rpc:
        assert all(
            outcome is None
            for outcome in await rpc.batch(
                [("anvil_setBalance", (a, hex(10**9 + i))) for i, a in enumerate(accounts)]
            )
        )
        balances = await asyncio.gather(*(eth_get_balance(rpc, a) for a in accounts))
        assert balances == [10**9 + i for i in range(200)]
        assert isinstance(rpc, WsRpc) and rpc.in_flight == 0 and rpc.malformed_frames == 0


async def test_connect_picks_transport_and_fails_clearly(
    ipc_anvil: tuple[AnvilProcess, str],
) -> None:
    node, path = ipc_anvil
    await connect_ipc(path)  # wait until the socket exists
    for url, kind in (
        (node.ws_url, WsRpc),
        (node.http_url, HttpRpc),
        (path, IpcRpc),
        ("ipc://" + path, IpcRpc),
    ):
        async with connect(url) as rpc:
            assert isinstance(rpc, kind)
            assert await eth_chain_id(rpc) == 31337
    with pytest.raises(ValueError, match="transport"):
        connect("localhost:8545")
    nobody = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionLost, match="cannot connect"):
        await connect(nobody)
    http = await connect(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionLost):
        await http.call("eth_chainId")
    await http.close()


# -- against a scripted local node ---------------------------------------------------------------

STALL = "test_stall"
GARBAGE_FRAMES = ("not json {", '{"jsonrpc":"2.0","id":999999,"result":"0x0"}', "[]", '{"x":1}')


def scripted_answer(request: dict[str, Any]) -> dict[str, Any] | None:
    """The scripted node's answer to one request; None means it never answers."""
    method = request["method"]
    if method == STALL:
        return None
    if method == "test_fail":
        error = {"code": 3, "message": "execution reverted: nope", "data": "0x08c379a0"}
        return {"jsonrpc": "2.0", "id": request["id"], "error": error}
    if method == "test_shapeless":
        return {"jsonrpc": "2.0", "id": request["id"]}
    result = {"eth_blockNumber": "0x2a", "eth_unsubscribe": True}.get(method, method)
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


def scripted_batch(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers to a batch, in reverse order (JSON-RPC allows any order)."""
    return [a for a in reversed([scripted_answer(r) for r in requests]) if a is not None]


async def scripted_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for frame in ws:
        message = orjson.loads(frame.data)
        if isinstance(message, list):
            await ws.send_bytes(orjson.dumps(scripted_batch(message)))
            continue
        if message["method"] == "test_garbage":
            for garbage in GARBAGE_FRAMES:
                await ws.send_str(garbage)
        if message["method"] == "eth_subscribe":
            # params: [kind, notifications before the answer, notifications after it]
            _, before, after = message["params"]
            answer = {"jsonrpc": "2.0", "id": message["id"], "result": "0xab"}
            for index in range(before + after + 1):
                if index == before:
                    await ws.send_bytes(orjson.dumps(answer))
                    continue
                note = {"subscription": "0xab", "result": index - (index > before)}
                await ws.send_str(
                    orjson.dumps(
                        {"jsonrpc": "2.0", "method": "eth_subscription", "params": note}
                    ).decode()
                )
            continue
        answer = scripted_answer(message)
        if answer is not None:
            await ws.send_bytes(orjson.dumps(answer))
    return ws


async def scripted_http(request: web.Request) -> web.Response:
    message = orjson.loads(await request.read())
    if isinstance(message, list):
        return web.Response(body=orjson.dumps(scripted_batch(message)))
    if message["method"] == "test_proxy_error":
        return web.Response(status=502, text="<html>502 Bad Gateway</html>")
    answer = scripted_answer(message)
    if answer is None:
        await asyncio.sleep(3600)
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


@pytest.fixture
async def scripted_node() -> AsyncIterator[str]:
    """Base URL (host:port) of the scripted node: WebSocket at /ws, HTTP POST at /."""
    app = web.Application()
    app.router.add_get("/ws", scripted_ws)
    app.router.add_post("/", scripted_http)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture(params=["ws", "http"])
async def scripted_client(request: pytest.FixtureRequest, scripted_node: str) -> AsyncIterator[Rpc]:
    url = f"ws://{scripted_node}/ws" if request.param == "ws" else f"http://{scripted_node}/"
    async with connect(url, timeout=0.3) as rpc:
        yield rpc


async def test_stalled_call_times_out_and_client_keeps_working(scripted_client: Rpc) -> None:
    started = time.monotonic()
    with pytest.raises(RpcTimeout, match=rf"{STALL}.*0\.3 s"):
        await scripted_client.call(STALL)
    with pytest.raises(RpcTimeout, match=rf"{STALL}.*0\.05 s"):
        await scripted_client.call(STALL, timeout=0.05)
    assert time.monotonic() - started < 1.5
    assert await eth_block_number(scripted_client) == 42
    if isinstance(scripted_client, StreamRpc):
        assert scripted_client.in_flight == 0 and scripted_client.connected


async def test_batch_answered_out_of_order_comes_back_in_request_order(
    scripted_client: Rpc,
) -> None:
    outcomes = await scripted_client.batch(
        [("a_one", ()), ("test_fail", ()), ("eth_blockNumber", ()), ("a_four", [1])]
    )
    assert outcomes == [
        "a_one",
        RpcError(3, "execution reverted: nope", "0x08c379a0"),
        "0x2a",
        "a_four",
    ]
    with pytest.raises(RpcError, match="execution reverted: nope") as caught:
        await scripted_client.call("test_fail")
    assert caught.value.data == "0x08c379a0"


async def test_wrong_shaped_answers_raise_malformed_response(scripted_client: Rpc) -> None:
    with pytest.raises(MalformedResponse, match="test_shapeless: response has neither"):
        await scripted_client.call("test_shapeless")
    if isinstance(scripted_client, HttpRpc):
        with pytest.raises(MalformedResponse, match=r"HTTP 502.*502 Bad Gateway"):
            await scripted_client.call("test_proxy_error")
    assert await eth_block_number(scripted_client) == 42


async def test_garbage_frames_are_counted_and_skipped(scripted_node: str) -> None:
    async with connect(f"ws://{scripted_node}/ws") as rpc:
        assert isinstance(rpc, WsRpc)
        assert await rpc.call("test_garbage") == "test_garbage"
        assert await eth_block_number(rpc) == 42
        assert rpc.malformed_frames == len(GARBAGE_FRAMES) and rpc.connected


async def test_early_notifications_are_kept_and_overflow_drops_oldest(scripted_node: str) -> None:
    async with connect(f"ws://{scripted_node}/ws") as rpc:
        assert isinstance(rpc, WsRpc)
        sub = await rpc.subscribe("test", 3, 5, capacity=4)
        await asyncio.sleep(0.1)  # let all eight notifications arrive
        assert (sub.received, sub.dropped, sub.queued) == (8, 4, 4)
        assert [await anext(sub) for _ in range(4)] == [4, 5, 6, 7]
        await sub.unsubscribe()
        with pytest.raises(StopAsyncIteration):
            await anext(sub)

        early = await rpc.subscribe("test", 2, 0)
        assert [await anext(early) for _ in range(2)] == [0, 1]
    with pytest.raises(StopAsyncIteration):  # closing the client ends its subscriptions cleanly
        await anext(early)


# -- the batch decoder on arbitrary input --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.lists(st.one_of(st.text(max_size=5), st.none()), min_size=1, max_size=30), st.randoms())
def test_batch_outcomes_follow_request_order(results: list[str | None], rng: Any) -> None:
    calls = [(f"m{i}", ()) for i in range(len(results))]
    answers: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 100 + i, "error": {"code": -1, "message": f"e{i}"}}
        if result is None
        else {"jsonrpc": "2.0", "id": 100 + i, "result": result}
        for i, result in enumerate(results)
    ]
    rng.shuffle(answers)
    outcomes = batch_outcomes(answers, 100, calls)
    assert outcomes == [
        RpcError(-1, f"e{i}") if result is None else result for i, result in enumerate(results)
    ]


@given(json_values)
def test_batch_decoder_raises_only_typed_errors(answer: Any) -> None:
    calls = [("m0", ()), ("m1", ())]
    try:
        outcomes = batch_outcomes(answer, 0, calls)
    except (MalformedResponse, RpcError):
        return
    assert len(outcomes) == 2
