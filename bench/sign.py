"""Signing latency: our EIP-1559 signer against eth-account, on a realistic executor call.

``python -m bench.sign [--n 2000]`` prints JSON: per-signature latency percentiles in
microseconds for ``execution.signer.LocalSigner.sign_eip1559`` and for
``eth_account.Account.sign_transaction`` on the same fields (the nonce varies per call so that
no cache helps), and checks the two give the same bytes; and the Executor call's encoding by
``Function.encode`` (:mod:`chain.abi_pack`) against ``eth_abi.encode`` (the minimum profit
varies per call).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import eth_abi
from eth_account import Account
from eth_utils import to_checksum_address

from chain.abi import load_artifact
from execution.signer import LocalSigner

KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # anvil dev key 2
EXECUTOR = "0x" + "5a" * 20
PAIRS = ["0x" + "11" * 20, "0x" + "22" * 20]


ARBITRAGE = load_artifact("Executor").abi.function("arbitrageHops")
HOPS = [(PAIRS[0], 0, True), (PAIRS[1], 0, False)]  # two V2 pairs (Executor.Kind.V2)


def _calldata(min_profit: int = 2 * 10**15) -> bytes:
    return ARBITRAGE.encode(HOPS, 5 * 10**18, False, min_profit, 3 * 10**15)


def _calldata_eth_abi(min_profit: int) -> bytes:
    args = (HOPS, 5 * 10**18, False, min_profit, 3 * 10**15)
    return ARBITRAGE.selector + eth_abi.encode(ARBITRAGE.input_types, args)


def _percentiles(samples: list[int]) -> dict[str, float | int]:
    samples.sort()
    return {
        "p50": round(samples[len(samples) // 2] / 1000, 1),
        "p99": round(samples[len(samples) * 99 // 100] / 1000, 1),
        "n": len(samples),
    }


def _time(sign: Callable[[int], bytes], n: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for nonce in range(n):
        before = clock()
        sign(nonce)
        samples.append(clock() - before)
    return samples


def run(n: int) -> dict[str, object]:
    data = _calldata()
    signer = LocalSigner(KEY)
    fields = {"chain_id": 1, "to": EXECUTOR, "data": data, "value": 0, "gas": 330_000}
    fees = {"max_fee_per_gas": 31 * 10**9, "max_priority_fee_per_gas": 0}

    def ours(nonce: int) -> bytes:
        return signer.sign_eip1559(nonce=nonce, **fields, **fees).raw

    def theirs(nonce: int) -> bytes:
        tx = {
            "type": 2,
            "chainId": 1,
            "nonce": nonce,
            "to": to_checksum_address(EXECUTOR),
            "data": data,
            "value": 0,
            "gas": 330_000,
            "maxFeePerGas": fees["max_fee_per_gas"],
            "maxPriorityFeePerGas": 0,
        }
        return bytes(Account.sign_transaction(tx, KEY).raw_transaction)

    for nonce in range(50):  # warm-up, and the equality check
        if ours(nonce) != theirs(nonce):
            raise SystemExit(f"signatures differ at nonce {nonce}")
    if _calldata(7) != _calldata_eth_abi(7):
        raise SystemExit("calldata differs from eth-abi's")
    return {
        "ours_us": _percentiles(_time(ours, n)),
        "eth_account_us": _percentiles(_time(theirs, n)),
        "calldata_ours_us": _percentiles(_time(_calldata, n)),
        "calldata_eth_abi_us": _percentiles(_time(_calldata_eth_abi, n)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="signatures per signer")
    print(json.dumps(run(parser.parse_args().n)))


if __name__ == "__main__":
    main()
