"""Contract artifacts for the devnet: Uniswap's official builds from npm, ours from chain/artifacts.

The Uniswap contracts are deployed from the compiled artifacts their npm packages ship (pinned in
package.json, installed into ``node_modules`` by ``make setup``): the same creation code mainnet
runs, so pool addresses follow from the init-code hashes the routers have baked in. Only the
devnet (``anvil/``) and tests read ``node_modules``; the bot needs nothing from it. Every other
name (the Executor, our tokens, the feeds) is one of our own artifacts, built
by ``make contracts`` into ``chain/artifacts``. Aave V3's contracts come the same way from
``@aave/core-v3``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from chain.abi import ARTIFACTS_DIR, Abi, Artifact, load_artifact
from chain.node import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"

# Contract name -> (npm package, artifact path inside it). v2's builds are solc standard-JSON
# outputs (waffle), v3's and the routers' are hardhat artifacts; :func:`artifact_json` reads both.
OFFICIAL: dict[str, tuple[str, str]] = {
    "UniswapV2Factory": ("@uniswap/v2-core", "build/UniswapV2Factory.json"),
    "UniswapV2Pair": ("@uniswap/v2-core", "build/UniswapV2Pair.json"),
    "UniswapV2Router02": ("@uniswap/v2-periphery", "build/UniswapV2Router02.json"),
    "WETH9": ("@uniswap/v2-periphery", "build/WETH9.json"),
    "UniswapV3Factory": (
        "@uniswap/v3-core",
        "artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    ),
    "UniswapV3Pool": (
        "@uniswap/v3-core",
        "artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    ),
    "NFTDescriptor": (
        "@uniswap/v3-periphery",
        "artifacts/contracts/libraries/NFTDescriptor.sol/NFTDescriptor.json",
    ),
    "NonfungibleTokenPositionDescriptor": (
        "@uniswap/v3-periphery",
        "artifacts/contracts/NonfungibleTokenPositionDescriptor.sol/"
        "NonfungibleTokenPositionDescriptor.json",
    ),
    "NonfungiblePositionManager": (
        "@uniswap/v3-periphery",
        "artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
    ),
    "QuoterV2": ("@uniswap/v3-periphery", "artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json"),
    "SwapRouter": ("@uniswap/v3-periphery", "artifacts/contracts/SwapRouter.sol/SwapRouter.json"),
    "SwapRouter02": (
        "@uniswap/swap-router-contracts",
        "artifacts/contracts/SwapRouter02.sol/SwapRouter02.json",
    ),
    "UniversalRouter": (
        "@uniswap/universal-router",
        "artifacts/contracts/UniversalRouter.sol/UniversalRouter.json",
    ),
}


_AAVE = "artifacts/contracts/protocol"
# Aave V3 (@aave/core-v3): the pool, its configurator and the logic libraries they link, the
# tokens' implementations, the oracle and the data provider.
OFFICIAL.update(
    {
        name: ("@aave/core-v3", f"{_AAVE}/{folder}/{name}.sol/{name}.json")
        for folder, names in (
            ("configuration", ("PoolAddressesProvider", "ACLManager")),
            ("pool", ("Pool", "PoolConfigurator", "DefaultReserveInterestRateStrategy")),
            ("tokenization", ("AToken", "StableDebtToken", "VariableDebtToken")),
            (
                "libraries/logic",
                (
                    "SupplyLogic",
                    "BorrowLogic",
                    "LiquidationLogic",
                    "EModeLogic",
                    "BridgeLogic",
                    "FlashLoanLogic",
                    "PoolLogic",
                    "ConfiguratorLogic",
                ),
            ),
        )
        for name in names
    }
    | {
        name: ("@aave/core-v3", f"artifacts/contracts/misc/{name}.sol/{name}.json")
        for name in ("AaveOracle", "AaveProtocolDataProvider")
    }
)


class MissingArtifact(FileNotFoundError):
    """An official artifact is not installed; the message says how to install it."""


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def official_path(name: str) -> Path:
    """Where ``name``'s official artifact is installed (:class:`MissingArtifact` if nowhere)."""
    package, path = OFFICIAL[name]
    file = NODE_MODULES / package / path
    if not file.exists():
        raise MissingArtifact(f"{package} is not installed ({file} missing): run `make setup`")
    return file


@cache
def artifact_json(name: str) -> dict[str, Any]:
    """``{"abi", "bytecode", "deployedBytecode", "linkReferences"}`` of ``name`` (0x-hex
    bytecode, library placeholders left in place), official or ours."""
    if name not in OFFICIAL:
        load_artifact(name)  # the clear error when it is missing
        return json.loads((ARTIFACTS_DIR / f"{name}.json").read_text()) | {
            "linkReferences": {},
            "deployedLinkReferences": {},
        }
    package = OFFICIAL[name][0]
    data = json.loads(official_path(name).read_text())
    if "evm" in data:  # solc standard-JSON output (v2's waffle builds)
        creation, runtime = data["evm"]["bytecode"], data["evm"]["deployedBytecode"]
        code, deployed = creation["object"], runtime["object"]
        links, deployed_links = creation["linkReferences"], runtime.get("linkReferences", {})
    else:
        code, deployed = data["bytecode"], data["deployedBytecode"]
        links = data.get("linkReferences", {})
        deployed_links = data.get("deployedLinkReferences", {})
    return {
        "contractName": name,
        "package": package,
        "abi": data["abi"],
        "bytecode": "0x" + code.removeprefix("0x"),
        "deployedBytecode": "0x" + deployed.removeprefix("0x"),
        "linkReferences": links,
        "deployedLinkReferences": deployed_links,
    }


def package_version(package: str) -> str:
    """The installed version of an npm package (what the lock pinned)."""
    return json.loads((NODE_MODULES / package / "package.json").read_text())["version"]


def creation_code(name: str, libraries: Mapping[str, str] | None = None) -> bytes:
    """``name``'s creation code with each linked library's address written where the
    artifact's link references say (hardhat's ``__$...$__`` placeholders)."""
    data = artifact_json(name)
    return _link(name, data["bytecode"], data["linkReferences"], libraries)


def runtime_code(name: str, libraries: Mapping[str, str] | None = None) -> bytes:
    """``name``'s deployed code as the artifact has it (immutables zero), libraries linked."""
    data = artifact_json(name)
    return _link(name, data["deployedBytecode"], data["deployedLinkReferences"], libraries)


def _link(
    name: str, code: str, references: dict[str, Any], libraries: Mapping[str, str] | None
) -> bytes:
    code = code.removeprefix("0x")
    for source in references.values():
        for library, places in source.items():
            if libraries is None or library not in libraries:
                raise ValueError(f"{name} links library {library}: pass its address")
            address = libraries[library].removeprefix("0x").lower()
            for place in places:
                start = 2 * place["start"]
                code = code[:start] + address + code[start + 2 * place["length"] :]
    return bytes.fromhex(code)


@cache
def load(name: str) -> Artifact:
    """The :class:`chain.abi.Artifact` of ``name``: official when Uniswap ships it, else ours.
    A contract that links libraries has empty ``bytecode`` and ``deployed_bytecode`` here:
    see :func:`creation_code` and :func:`runtime_code`."""
    if name not in OFFICIAL:
        return load_artifact(name)
    data = artifact_json(name)
    return Artifact(
        name=name,
        abi=Abi(data["abi"]),
        bytecode=b"" if data["linkReferences"] else _hex(data["bytecode"]),
        deployed_bytecode=b"" if data["deployedLinkReferences"] else _hex(data["deployedBytecode"]),
    )
