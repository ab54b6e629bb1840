"""``mevbot executor deploy | fund | withdraw | status``: the bot's Executor contract on a node.

The node, WETH, the executor's address and the owner key come from ``--config FILE`` (the same
config ``mevbot run`` reads; for the devnet, its world JSON) or from ``--rpc URL`` with
``--weth-address``/``--executor`` and the key in ``MEVBOT_EXECUTOR_KEY`` (or ``--keystore FILE``,
password in ``MEVBOT_KEYSTORE_PASSWORD``). ``deploy`` deploys the committed artifact
(``chain/artifacts/Executor.json``) owned by the executor key; ``--write-config`` puts its address
into the config file, leaving the rest of the file as it was. Exit 2 for a problem with the
config or the arguments, 1 when the node or the transaction fails; one line each.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chain.rpc import Rpc
    from execution.signer import LocalSigner
    from mevbot.config import Config

KEY_ENV = "MEVBOT_EXECUTOR_KEY"
PASSWORD_ENV = "MEVBOT_KEYSTORE_PASSWORD"
_TOP_LEVEL_EXECUTOR = re.compile(r"^\s*executor\s*=")
_TABLE = re.compile(r"^\s*\[")


class _Refused(Exception):
    """A problem with the arguments or the config: exit 2."""


class _Failed(Exception):
    """The node or a transaction failed: exit 1."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the commands act: the node, its expected chain, WETH, the executor and the key."""

    url: str
    chain_id: int | None
    weth: str | None
    executor: str | None
    signer: Callable[[], LocalSigner]
    config_path: Path | None = None
    # (factory, init-code hash of its pools, Executor.Kind): whose pools may call the Executor back
    factories: tuple[tuple[str, bytes, int], ...] = ()


def _address(value: str | None, what: str) -> str | None:
    from chain.types import MalformedError, norm_address

    if value is None:
        return None
    try:
        return norm_address(value, what)
    except MalformedError as error:
        raise _Refused(str(error)) from None


def _from_config(path: Path) -> Target:
    from mevbot.resolve import load_world, resolve_executor_signer

    config = _load(path)
    weth, executor, url = config.weth, config.executor, config.node.http or config.node.ws
    if config.network == "devnet":
        world = load_world(config)
        url = url or world.rpc["http"]
        weth = weth or world.tokens["WETH"]["address"]
        executor = executor or world.executor
    if url is None:
        raise _Refused(f"node.http: required to reach the {config.network} node")
    signer = lambda: resolve_executor_signer(config)  # noqa: E731 (only verbs that sign ask)
    factories = _factories(config)
    return Target(url, config.chain_id, weth, executor, signer, path, factories)


def _factories(config: Config) -> tuple[tuple[str, bytes, int], ...]:
    """The factories the config's pools come from, each with the init-code hash of Uniswap's own
    pools of its kind (a fork with another hash is refused by the Executor's callback check)."""
    from anvil.uniswap_v3 import V2_PAIR_INIT_CODE_HASH, V3_POOL_INIT_CODE_HASH
    from mevbot.config import ConfigError
    from mevbot.resolve import resolve_deployment

    hashes = {"uniswap-v2": V2_PAIR_INIT_CODE_HASH, "uniswap-v3": V3_POOL_INIT_CODE_HASH}
    try:
        kinds = resolve_deployment(config).pool_kinds
    except ConfigError:
        return ()
    return tuple(
        (factory, hashes[kind.name], kind.executor_hop)
        for factory, kind in kinds.items()
        if kind.name in hashes and kind.executor_hop is not None
    )


def _load(path: Path) -> Config:
    from mevbot.config import load_config

    return load_config(path)


def _from_flags(args: argparse.Namespace) -> Target:
    from execution.signer import LocalSigner, SignerKeyError

    def signer() -> LocalSigner:
        try:
            if args.keystore is not None:
                return LocalSigner.from_keystore(args.keystore, PASSWORD_ENV)
            return LocalSigner.from_env(KEY_ENV)
        except SignerKeyError as error:
            raise _Refused(f"keys: {error}") from None

    return Target(
        args.rpc,
        None,
        _address(args.weth_address, "--weth-address"),
        _address(getattr(args, "executor", None), "--executor"),
        signer,
    )


def _target(args: argparse.Namespace) -> Target:
    if args.config is not None:
        return _from_config(Path(args.config))
    if getattr(args, "write_config", False):
        raise _Refused("--write-config needs --config FILE")
    return _from_flags(args)


async def _checked_rpc(target: Target, rpc: Rpc) -> None:
    from chain.rpc import eth_chain_id

    found = await eth_chain_id(rpc)
    if target.chain_id is not None and found != target.chain_id:
        raise _Refused(
            f"{target.url} is chain {found}, but the config is for chain {target.chain_id}; "
            "point node.http at the config's chain"
        )


def _executor(target: Target) -> str:
    if target.executor is None:
        raise _Refused(
            "no executor address: set executor in the config (or give --executor); "
            "`mevbot executor deploy` makes one"
        )
    return target.executor


def _weth(target: Target) -> str:
    if target.weth is None:
        raise _Refused("no WETH address: set weth in the config (or give --weth-address)")
    return target.weth


def _amount(text: str, decimals: int, what: str) -> int:
    try:
        value = Decimal(text) * 10**decimals
    except InvalidOperation:
        raise _Refused(f"{what}: {text!r} is not a number") from None
    if value <= 0 or value != value.to_integral_value():
        raise _Refused(f"{what}: {text} is not a positive amount in units of 1e-{decimals}")
    return int(value)


def _units(amount: int, decimals: int) -> str:
    text = f"{Decimal(amount) / Decimal(10) ** decimals:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- token reads --------------------------------------------------------------------------------


async def _call(rpc: Rpc, to: str, fn: Any, *args: Any) -> tuple[Any, ...]:
    from chain.rpc import eth_call

    return fn.decode_output(await eth_call(rpc, to, fn.encode(*args)))


async def _token(rpc: Rpc, token: str) -> tuple[str, int]:
    """The token's symbol (printable) and decimals."""
    from chain.abi import Abi
    from chain.errors import ChainError
    from chain.types import MalformedError
    from mevbot.logfmt import printable

    erc20 = Abi.from_signatures(
        "function symbol() returns (string)", "function decimals() returns (uint8)"
    )
    try:
        (decimals,) = await _call(rpc, token, erc20.function("decimals"))
    except (ChainError, MalformedError):
        raise _Failed(f"{token} does not answer decimals(): not an ERC-20 token") from None
    try:
        (symbol,) = await _call(rpc, token, erc20.function("symbol"))
    except (ChainError, MalformedError):
        symbol = token
    return printable(symbol, 20), int(decimals)


async def _balance_of(rpc: Rpc, token: str, holder: str) -> int:
    from chain.abi import Abi

    fn = Abi.from_signatures("function balanceOf(address) returns (uint256)").function("balanceOf")
    (balance,) = await _call(rpc, token, fn, holder)
    return int(balance)


# -- the verbs ----------------------------------------------------------------------------------


async def _deploy(args: argparse.Namespace, target: Target, rpc: Rpc) -> None:
    from mevbot.executor_code import creation_code
    from mevbot.transact import transact

    signer, weth = target.signer(), _weth(target)
    if not target.factories:
        print(
            "no pool factories in the config: the executor will accept no pool's callback "
            "(no flash-financed trades); name the network's DEXes (v2_factories) to allow them"
        )
    code = creation_code(signer.address, weth, target.factories)
    mined = await transact(rpc, signer, None, code, wait_s=args.wait)
    address = _address(mined.contract, "contractAddress")
    print(
        f"executor {address} deployed: owner {signer.address}, WETH {weth}, tx {mined.tx_hash} "
        f"in block {mined.block}"
    )
    if args.write_config:
        assert target.config_path is not None and address is not None
        write_executor(target.config_path, address)
        print(f'wrote executor = "{address}" into {target.config_path}')
    else:
        print(f'set executor = "{address}" in your config (or deploy with --write-config)')


async def _fund(args: argparse.Namespace, target: Target, rpc: Rpc) -> None:
    from chain.abi import Abi
    from mevbot.transact import transact

    if args.eth is None and args.weth is None:
        raise _Refused("give --eth AMOUNT and/or --weth AMOUNT")
    executor, signer = _executor(target), target.signer()
    eth = _amount(args.eth, 18, "--eth") if args.eth is not None else 0
    weth = _amount(args.weth, 18, "--weth") if args.weth is not None else 0
    if eth:
        mined = await transact(rpc, signer, executor, value=eth, wait_s=args.wait)
        print(f"sent {args.eth} ETH to the executor {executor}: tx {mined.tx_hash}")
    if weth:
        token = _weth(target)
        wrap = Abi.from_signatures(
            "function deposit()", "function transfer(address,uint256) returns (bool)"
        )
        # WETH9 mints to msg.sender: wrap from the owner key, then transfer it over.
        deposit = wrap.function("deposit").encode()
        await transact(rpc, signer, token, deposit, weth, wait_s=args.wait)
        moved = wrap.function("transfer").encode(executor, weth)
        mined = await transact(rpc, signer, token, moved, wait_s=args.wait)
        print(f"sent {args.weth} WETH (wrapped) to the executor {executor}: tx {mined.tx_hash}")


async def _withdraw(args: argparse.Namespace, target: Target, rpc: Rpc) -> None:
    from chain.rpc import eth_get_balance
    from mevbot.executor_code import WITHDRAW, WITHDRAW_ETH
    from mevbot.transact import transact

    executor, signer = _executor(target), target.signer()
    to = _address(args.to, "--to") or signer.address
    if args.asset.upper() == "ETH":
        token, symbol, decimals = None, "ETH", 18
        held = await eth_get_balance(rpc, executor)
    else:
        token = _weth(target) if args.asset.upper() == "WETH" else _address(args.asset, "ASSET")
        assert token is not None
        symbol, decimals = await _token(rpc, token)
        held = await _balance_of(rpc, token, executor)
    amount = held if args.amount == "all" else _amount(args.amount, decimals, "AMOUNT")
    if amount == 0 or amount > held:
        raise _Failed(f"the executor holds {_units(held, decimals)} {symbol}: nothing to withdraw")
    data = WITHDRAW_ETH.encode(amount, to) if token is None else WITHDRAW.encode(token, amount, to)
    mined = await transact(rpc, signer, executor, data, wait_s=args.wait)
    print(
        f"withdrew {_units(amount, decimals)} {symbol} ({amount} base units) from the executor "
        f"{executor} to {to}: tx {mined.tx_hash}"
    )


async def _status(args: argparse.Namespace, target: Target, rpc: Rpc) -> None:
    from chain.rpc import eth_get_balance
    from chain.types import hex_to_bytes
    from mevbot.executor_code import OWNER, WETH, is_artifact_code

    executor = _executor(target)
    code = hex_to_bytes(await rpc.call("eth_getCode", [executor, "latest"]), "code")
    if not code:
        raise _Failed(f"no contract at {executor}; `mevbot executor deploy` deploys one")
    (owner,) = await _call(rpc, executor, OWNER)
    (weth,) = await _call(rpc, executor, WETH)
    owner, weth = str(owner).lower(), str(weth).lower()
    same = is_artifact_code(code, owner, weth)
    rows = [
        ("executor", executor),
        ("code", "the committed artifact" if same else "NOT the committed artifact's code"),
        ("owner", owner),
        ("ETH", _units(await eth_get_balance(rpc, executor), 18)),
    ]
    for token in (weth, *(_address(t, "--token") for t in args.token)):
        assert token is not None
        symbol, decimals = await _token(rpc, token)
        rows.append((symbol, _units(await _balance_of(rpc, token, executor), decimals)))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def write_executor(path: Path, address: str) -> None:
    """Set the top-level ``executor`` of the TOML file at ``path``, the rest unchanged."""
    lines = path.read_text().splitlines(keepends=True)
    first_table = next((i for i, line in enumerate(lines) if _TABLE.match(line)), len(lines))
    entry = f'executor = "{address}"\n'
    for index in range(first_table):
        if _TOP_LEVEL_EXECUTOR.match(lines[index]):
            lines[index] = entry
            break
    else:
        if first_table and not lines[first_table - 1].endswith("\n"):
            lines[first_table - 1] += "\n"
        lines.insert(first_table, entry)
    path.write_text("".join(lines))
    _load(path)  # what was written still reads as a valid config


VERBS: dict[str, Callable[[argparse.Namespace, Target, Any], Awaitable[None]]] = {
    "deploy": _deploy,
    "fund": _fund,
    "withdraw": _withdraw,
    "status": _status,
}


def cmd_executor(args: argparse.Namespace) -> int:
    from chain.errors import ChainError
    from chain.rpc import connect
    from mevbot.config import ConfigError
    from mevbot.logfmt import printable
    from mevbot.transact import TransactError

    def fail(message: object, code: int) -> int:
        print(f"mevbot executor {args.verb}: {printable(str(message), 1000)}", file=sys.stderr)
        return code

    try:
        target = _target(args)
    except (ConfigError, _Refused) as error:
        return fail(error, 2)

    async def main() -> None:
        async with connect(target.url, timeout=args.timeout) as rpc:
            await _checked_rpc(target, rpc)
            await VERBS[args.verb](args, target, rpc)

    try:
        asyncio.run(main())
    except (ConfigError, _Refused) as error:
        return fail(error, 2)
    except (_Failed, TransactError) as error:
        return fail(error, 1)
    except (ChainError, OSError, TimeoutError) as error:
        return fail(f"{target.url}: {type(error).__name__}: {error}", 1)
    return 0


def _common(parser: argparse.ArgumentParser, *, executor: bool) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", metavar="FILE", help="the bot's TOML config (node, addresses)")
    where.add_argument("--rpc", metavar="URL", help="the node, when there is no config")
    parser.add_argument("--weth-address", metavar="ADDR", help="WETH's address (with --rpc)")
    if executor:
        parser.add_argument("--executor", metavar="ADDR", help="the executor (with --rpc)")
    parser.add_argument(
        "--keystore",
        type=Path,
        metavar="FILE",
        help=f"the owner's keystore (with --rpc; password in {PASSWORD_ENV}); else {KEY_ENV}",
    )
    parser.add_argument(
        "--wait", type=float, default=120.0, metavar="S", help="wait S s for each tx to be mined"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="each RPC call's timeout"
    )
    parser.set_defaults(handler=cmd_executor)


def register(commands: Any) -> None:
    executor = commands.add_parser(
        "executor",
        help="deploy, fund, withdraw from or inspect the bot's Executor contract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = executor.add_subparsers(dest="verb", metavar="VERB", required=True)
    deploy = verbs.add_parser("deploy", help="deploy the Executor owned by the executor key")
    _common(deploy, executor=False)
    deploy.add_argument(
        "--write-config",
        action="store_true",
        help="write the address into the --config file as executor (the rest unchanged)",
    )
    fund = verbs.add_parser("fund", help="send the executor ETH and/or WETH from the owner key")
    _common(fund, executor=True)
    fund.add_argument("--eth", metavar="AMOUNT", help="ether to send (e.g. 0.5)")
    fund.add_argument("--weth", metavar="AMOUNT", help="ether to wrap and send as WETH")
    withdraw = verbs.add_parser("withdraw", help="move ETH or tokens out of the executor")
    _common(withdraw, executor=True)
    withdraw.add_argument("asset", metavar="ASSET", help="ETH, WETH or a token address")
    withdraw.add_argument("amount", metavar="AMOUNT", help="in the asset's units, or all")
    withdraw.add_argument("--to", metavar="ADDR", help="the receiver (default: the owner key)")
    status = verbs.add_parser("status", help="owner, code and balances of the executor")
    _common(status, executor=True)
    status.add_argument(
        "--token", action="append", default=[], metavar="ADDR", help="a token balance to show"
    )
