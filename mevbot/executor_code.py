"""The Executor from the committed artifact (``chain/artifacts/Executor.json``): its creation
code for an owner and WETH, its getters, and whether code found on chain is that artifact's.

solc leaves each immutable (``owner``, ``weth``) as 32 zero bytes in the artifact's deployed
bytecode and writes the value there at deployment, so the code on chain is the artifact's with
those two words filled in.
"""

from __future__ import annotations

from collections.abc import Sequence

import eth_abi

from chain.abi import load_artifact

EXECUTOR = load_artifact("Executor")
OWNER = EXECUTOR.abi.function("owner")
WETH = EXECUTOR.abi.function("weth")
WITHDRAW = EXECUTOR.abi.function("withdraw")
WITHDRAW_ETH = EXECUTOR.abi.function("withdrawETH")
_ZERO_WORD = bytes(32)


def creation_code(owner: str, weth: str, factories: Sequence[tuple[str, bytes, int]]) -> bytes:
    """What a deployment transaction carries: the creation bytecode and constructor(owner, weth,
    factories), each factory ``(address, init-code hash of its pools, Executor.Kind)``."""
    arguments = eth_abi.encode(
        ["address", "address", "(address,bytes32,uint8)[]"], [owner, weth, list(factories)]
    )
    return EXECUTOR.bytecode + arguments


def is_artifact_code(code: bytes, owner: str, weth: str) -> bool:
    """True when ``code`` is the artifact's deployed bytecode with ``owner`` and ``weth`` as its
    immutables."""
    masked = code
    for address in (owner, weth):
        masked = masked.replace(eth_abi.encode(["address"], [address]), _ZERO_WORD)
    return masked == EXECUTOR.deployed_bytecode
