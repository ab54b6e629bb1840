"""Run a bundle on an anvil fork by really mining it, then rolling back (for nodes without
``eth_simulateV1``).

``evm_snapshot``, set the next block's coinbase/timestamp/base fee, read balances, send every tx
(raw envelopes as they are; unsigned calls through ``eth_sendTransaction``, which works because
the fork runs with ``--auto-impersonate``), ``evm_mine`` one block (the fork runs with
``--no-mining --order fifo`` so the block holds exactly the bundle in order), read receipts,
top-call traces (return data, revert reason) and balances, ``evm_revert``.

anvil races here about 0.2% of the time (``transaction already imported``, ``Transaction
confirmation timeout``): the pool is emptied with ``anvil_dropAllTransactions``, the snapshot
reverted and the bundle retried; ``races_recovered`` counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chain.errors import RpcError
from chain.rpc import Rpc
from chain.types import MalformedError, hex_to_bytes, hex_to_int
from simulation.balances import READER_ADDRESS, READER_CODE, READER_SENDER, BalanceQuery
from simulation.fork_v1 import call_object, parse_log
from simulation.prepared import PreparedTx
from simulation.simulator import BlockEnv, SimulationError, TxOutcome, failure_reason

_RACES = ("already imported", "confirmation timeout")
_TOP_CALL = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}


def _is_race(error: RpcError) -> bool:
    message = error.message.lower()
    return any(race in message for race in _RACES)


def _reader_eth_call(query: BalanceQuery) -> tuple[str, list[Any]]:
    call = {"from": READER_SENDER, "to": READER_ADDRESS, "input": "0x" + query.calldata.hex()}
    overrides = {READER_ADDRESS: {"code": "0x" + READER_CODE.hex()}}
    return "eth_call", [call, "latest", overrides]


def _checked(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, RpcError):
            raise result
    return results


class SnapshotRunner:
    """Mines bundles on one anvil fork; ``attempts`` bounds the race retries per bundle."""

    def __init__(self, attempts: int = 3) -> None:
        self.attempts = attempts
        self.races_recovered = 0

    async def run(
        self,
        rpc: Rpc,
        txs: Sequence[PreparedTx],
        env: BlockEnv,
        query: BalanceQuery,
        timeout: float,
    ) -> tuple[list[TxOutcome], bytes, bytes]:
        attempt = 0
        while True:
            attempt += 1
            snapshot = await rpc.call("evm_snapshot", timeout=timeout)
            clean = False
            try:
                outcome = await self._mine(rpc, txs, env, query, timeout)
                clean = True
                return outcome
            except RpcError as error:
                if not _is_race(error) or attempt == self.attempts:
                    raise SimulationError(f"fork refused the bundle: {error}") from None
                self.races_recovered += 1
            finally:
                if not clean:
                    await rpc.call("anvil_dropAllTransactions", timeout=timeout)
                await rpc.call("evm_revert", [snapshot], timeout=timeout)

    async def _mine(
        self,
        rpc: Rpc,
        txs: Sequence[PreparedTx],
        env: BlockEnv,
        query: BalanceQuery,
        timeout: float,
    ) -> tuple[list[TxOutcome], bytes, bytes]:
        reader = _reader_eth_call(query)
        *_, before = _checked(
            await rpc.batch(
                [
                    ("anvil_setCoinbase", [env.coinbase]),
                    ("evm_setNextBlockTimestamp", [env.timestamp]),
                    ("anvil_setNextBlockBaseFeePerGas", [hex(env.base_fee)]),
                    reader,
                ],
                timeout=timeout,
            )
        )
        hashes = []
        for tx in txs:
            if tx.raw is not None:
                sent = await rpc.call(
                    "eth_sendRawTransaction", ["0x" + tx.raw.hex()], timeout=timeout
                )
            else:
                sent = await rpc.call("eth_sendTransaction", [call_object(tx)], timeout=timeout)
            hashes.append(sent)
        await rpc.call("evm_mine", timeout=timeout)
        calls: list[tuple[str, list[Any]]] = [("eth_getTransactionReceipt", [h]) for h in hashes]
        calls += [("debug_traceTransaction", [h, _TOP_CALL]) for h in hashes]
        calls.append(reader)
        results = _checked(await rpc.batch(calls, timeout=timeout))
        receipts, traces, after = results[: len(txs)], results[len(txs) : -1], results[-1]
        try:
            outcomes = [
                _outcome(index, receipt, trace)
                for index, (receipt, trace) in enumerate(zip(receipts, traces, strict=True))
            ]
            return outcomes, hex_to_bytes(before, "eth_call"), hex_to_bytes(after, "eth_call")
        except MalformedError as error:
            raise SimulationError(f"fork answered nonsense: {error.reason}") from None


def _outcome(index: int, receipt: Any, trace: Any) -> TxOutcome:
    if receipt is None:
        raise SimulationError(f"tx {index} was not included in the block (nonce gap or fee cap)")
    if not isinstance(receipt, dict) or not isinstance(trace, dict):
        raise MalformedError(f"tx {index}: receipt or trace is not an object")
    success = hex_to_int(receipt.get("status"), "status") == 1
    return_data = hex_to_bytes(trace.get("output", "0x"), "output")
    return TxOutcome(
        success=success,
        revert_reason="" if success else failure_reason(return_data, str(trace.get("error", ""))),
        gas_used=hex_to_int(receipt.get("gasUsed"), "gasUsed"),
        logs=tuple(parse_log(log) for log in receipt.get("logs") or ()),
        return_data=return_data,
    )
