"""Run a bundle on a node with one ``eth_simulateV1`` request (the fast path, no state change).

The request holds one block: the balance reader, the bundle's txs, the reader again. With
``validation: true`` the node checks fee caps and balances and charges gas as a real block would;
anvil does not check nonces there, so explicit nonces are checked against the head's state
nonces (fetched in the same batch, cached per head). An invalid tx becomes a
:class:`SimulationError`. ``traceTransfers`` stays off: the reader already gives exact
ETH diffs, gas included, which transfer logs would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chain.errors import RpcError
from chain.rpc import Rpc
from chain.types import MalformedError, hex_to_bytes, hex_to_int, norm_address
from simulation.balances import READER_ADDRESS, READER_CODE, READER_SENDER, BalanceQuery
from simulation.prepared import PreparedTx, check_nonces, senders_with_nonces
from simulation.simulator import BlockEnv, SimLog, SimulationError, TxOutcome, failure_reason

_READER_BALANCE = hex(10**30)


def call_object(tx: PreparedTx) -> dict[str, Any]:
    """The ``eth_simulateV1``/``eth_sendTransaction`` call object of a prepared tx."""
    obj: dict[str, Any] = {
        "from": tx.sender,
        "input": "0x" + tx.data.hex(),
        "gas": hex(tx.gas),
        "value": hex(tx.value),
    }
    if tx.to is not None:
        obj["to"] = tx.to
    if tx.nonce is not None:
        obj["nonce"] = hex(tx.nonce)
    if tx.tx_type == 2:
        obj["maxFeePerGas"] = hex(tx.max_fee)
        obj["maxPriorityFeePerGas"] = hex(tx.priority_fee)
    else:
        obj["gasPrice"] = hex(tx.max_fee)
    if tx.chain_id is not None:
        obj["chainId"] = hex(tx.chain_id)
    if tx.access_list:
        obj["accessList"] = [
            {"address": address, "storageKeys": [f"0x{key:064x}" for key in keys]}
            for address, keys in tx.access_list
        ]
    return obj


def reader_call(query: BalanceQuery, env: BlockEnv) -> dict[str, Any]:
    return {
        "from": READER_SENDER,
        "to": READER_ADDRESS,
        "input": "0x" + query.calldata.hex(),
        "gas": hex(query.gas),
        "maxFeePerGas": hex(env.base_fee),
        "maxPriorityFeePerGas": "0x0",
    }


def reader_overrides() -> dict[str, Any]:
    return {
        READER_ADDRESS: {"code": "0x" + READER_CODE.hex()},
        READER_SENDER: {"balance": _READER_BALANCE},
    }


def request(
    txs: Sequence[PreparedTx], env: BlockEnv, query: BalanceQuery, state: str = "latest"
) -> list[Any]:
    """The ``eth_simulateV1`` params: one block on top of ``state``, reader around the txs."""
    reader = reader_call(query, env)
    block = {
        "blockOverrides": {
            "number": hex(env.number),
            "time": hex(env.timestamp),
            "baseFeePerGas": hex(env.base_fee),
            "feeRecipient": env.coinbase,
            "gasLimit": hex(env.gas_limit),
        },
        "stateOverrides": reader_overrides(),
        "calls": [reader, *(call_object(tx) for tx in txs), reader],
    }
    return [{"blockStateCalls": [block], "validation": True}, state]


def parse_log(obj: Any) -> SimLog:
    # Every simulated log passes here (a swap emits several): the well-formed case takes the
    # straight path; anything else gets the careful parsers and their clear errors.
    try:
        address, topics, data = obj["address"], obj["topics"], obj["data"]
        if len(address) == 42 and address[:2] == "0x" and data[:2] == "0x":
            bytes.fromhex(address[2:])  # hex, or ValueError to the careful path
            parsed = tuple(bytes.fromhex(t[2:]) for t in topics if t[:2] == "0x")
            if len(parsed) == len(topics):
                return SimLog(address.lower(), parsed, bytes.fromhex(data[2:]))
    except (KeyError, TypeError, ValueError):
        pass
    if not isinstance(obj, dict) or not isinstance(obj.get("topics"), list):
        raise MalformedError("log: not an object with topics")
    return SimLog(
        address=norm_address(obj.get("address"), "log address"),
        topics=tuple(hex_to_bytes(topic, "topic") for topic in obj["topics"]),
        data=hex_to_bytes(obj.get("data"), "log data"),
    )


def parse_call(obj: Any) -> TxOutcome:
    if not isinstance(obj, dict):
        raise MalformedError("call result is not an object")
    success = hex_to_int(obj.get("status"), "status") == 1
    return_data = hex_to_bytes(obj.get("returnData", "0x"), "returnData")
    logs = obj.get("logs") or []
    if not isinstance(logs, list):
        raise MalformedError("logs is not a list")
    error = obj.get("error")
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    return TxOutcome(
        success=success,
        revert_reason="" if success else failure_reason(return_data, message or "failed"),
        gas_used=hex_to_int(obj.get("gasUsed"), "gasUsed"),
        logs=tuple(parse_log(log) for log in logs),
        return_data=return_data,
    )


async def simulate_v1(
    rpc: Rpc,
    txs: Sequence[PreparedTx],
    env: BlockEnv,
    query: BalanceQuery,
    timeout: float,
    nonces: dict[str, int],
    state: str = "latest",
) -> tuple[list[TxOutcome], bytes, bytes]:
    """``(outcomes, reader answer before, reader answer after)``; node refusals and answers that
    do not parse become :class:`SimulationError`."""
    # anvil's validation does not check nonces: they are checked here, against the state nonces
    # of this head (``nonces``, a per-head cache; missing ones ride along in the same batch).
    # When all are known, before asking the node: a burst of one sender's later txs (each
    # waiting for an earlier one) then fails at once instead of a round trip each.
    missing = [sender for sender in senders_with_nonces(txs) if sender not in nonces]
    if not missing:
        check_nonces(txs, nonces)
    answers = await rpc.batch(
        [
            ("eth_simulateV1", request(txs, env, query, state)),
            *(("eth_getTransactionCount", [sender, state]) for sender in missing),
        ],
        timeout=timeout,
    )
    for answer in answers:
        if isinstance(answer, RpcError):
            raise SimulationError(f"eth_simulateV1 refused the bundle: {answer}")
    blocks = answers[0]
    try:
        for sender, nonce in zip(missing, answers[1:], strict=True):
            nonces[sender] = hex_to_int(nonce, "nonce")
    except MalformedError as error:
        raise SimulationError(f"eth_getTransactionCount: {error.reason}") from None
    check_nonces(txs, nonces)
    try:
        if not isinstance(blocks, list) or len(blocks) != 1 or not isinstance(blocks[0], dict):
            raise MalformedError("expected one simulated block")
        calls = blocks[0].get("calls")
        if not isinstance(calls, list) or len(calls) != len(txs) + 2:
            raise MalformedError(f"expected {len(txs) + 2} call results")
        before, *outcomes, after = (parse_call(call) for call in calls)
    except MalformedError as error:
        raise SimulationError(f"eth_simulateV1: malformed answer: {error.reason}") from None
    for reading in (before, after):
        if not reading.success:
            raise SimulationError(f"balance reader failed: {reading.revert_reason}")
    return outcomes, before.return_data, after.return_data


async def supports_simulate_v1(rpc: Rpc, timeout: float) -> bool:
    """Whether the node knows ``eth_simulateV1`` (an empty simulation, nothing executed)."""
    try:
        await rpc.call(
            "eth_simulateV1", [{"blockStateCalls": [{"calls": []}]}, "latest"], timeout=timeout
        )
    except RpcError as error:
        if error.code == -32601:  # method not found
            return False
        raise
    return True
