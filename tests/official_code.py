"""Does an address run Uniswap's official bytecode? Compare eth_getCode with the npm artifact.

solc leaves every immutable as 32 zero bytes in an artifact's deployed code, behind a PUSH32,
and the constructor writes the value there; a library's code starts with PUSH20 of zeros that
becomes its own address. Those immediates are masked; every other byte must be equal.
"""

from __future__ import annotations

from typing import Any

from anvil import artifacts
from anvil.deployer import Deployer

PUSH1, PUSH20, PUSH32 = 0x60, 0x73, 0x7F


def masked_positions(code: bytes) -> set[int]:
    """Byte offsets of the zero PUSH32 immediates (immutables) and of a leading PUSH20 of
    zeros (a library's own address)."""
    masked: set[int] = set()
    if code[:1] == bytes([PUSH20]) and code[1:21] == bytes(20):
        masked.update(range(1, 21))
    index = 0
    while index < len(code):
        opcode = code[index]
        width = opcode - PUSH1 + 1 if PUSH1 <= opcode <= PUSH32 else 0
        if opcode == PUSH32 and code[index + 1 : index + 33] == bytes(32):
            masked.update(range(index + 1, index + 33))
        index += 1 + width
    return masked


def differences(name: str, onchain: bytes, libraries: dict[str, str] | None = None) -> list[int]:
    """Offsets where ``onchain`` differs from ``name``'s artifact outside the masked immediates
    (a length mismatch counts as a difference at the shorter length)."""
    expected = artifacts.runtime_code(name, libraries)
    if len(expected) != len(onchain):
        return [min(len(expected), len(onchain))]
    masked = masked_positions(expected)
    return [
        i
        for i, (a, b) in enumerate(zip(expected, onchain, strict=True))
        if a != b and i not in masked
    ]


def official_contracts(world: Any) -> list[tuple[str, str, dict[str, str] | None]]:
    """(artifact name, address, linked libraries) of every official contract in ``world``."""
    v3 = world.v3
    out: list[tuple[str, str, dict[str, str] | None]] = [
        ("WETH9", world.tokens["WETH"]["address"], None)
    ]
    for dex in world.dexes.values():
        out += [
            ("UniswapV2Factory", dex["factory"], None),
            ("UniswapV2Router02", dex["router"], None),
        ]
        out += [("UniswapV2Pair", pair["address"], None) for pair in dex["pairs"].values()]
    out += [
        ("UniswapV3Factory", v3["factory"], None),
        ("NFTDescriptor", v3["nft_descriptor_library"], None),
        (
            "NonfungibleTokenPositionDescriptor",
            v3["position_descriptor"],
            {"NFTDescriptor": v3["nft_descriptor_library"]},
        ),
        ("NonfungiblePositionManager", v3["position_manager"], None),
        ("QuoterV2", v3["quoter"], None),
        ("SwapRouter", v3["swap_router"], None),
        ("SwapRouter02", v3["swap_router02"], None),
        ("UniversalRouter", v3["universal_router"], None),
    ]
    out += [("UniswapV3Pool", pool["address"], None) for pool in v3["pools"]]
    return out


def mismatches(world: Any) -> list[str]:
    """The official contracts of ``world`` whose code on chain is not the artifact's."""
    deployer = Deployer(world.rpc["http"])
    found = []
    for name, address, libraries in official_contracts(world):
        onchain = bytes.fromhex(deployer.rpc("eth_getCode", address, "latest")[2:])
        if differences(name, onchain, libraries):
            found.append(f"{name} at {address}")
    return found
