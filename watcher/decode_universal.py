"""Universal Router calls as intents: ``execute(commands, inputs[, deadline])``, command by command.

Each deployed version has its own command table and command mask (:data:`VERSIONS`); a byte's
high bit (0x80) is the allow-revert flag. Sources: Uniswap/universal-router
``contracts/libraries/Commands.sol`` and ``contracts/base/Dispatcher.sol`` at the branches
``deployed-commit-URv1.1`` (mainnet's UniversalRouterV1) and ``deployed-commit-URv1.2``
(UniversalRouterV1_2_V2Support), the tag ``2.0.0`` (UniversalRouterV2), commit 8c79e619 (the npm
package @uniswap/universal-router 2.1.0, which the devnet deploys) and the tag ``2.1.1``
(UniversalRouterV2_1_1); addresses from ``deploy-addresses/mainnet.json``. V4_SWAP's actions are
v4-periphery's ``src/libraries/Actions.sol`` and ``src/V4Router.sol`` at the commits those
versions pin (``lib/v4-periphery``); 2.1.1's pins the structs with ``minHopPriceX36``.

Every command's input is ``abi.encode`` of the types in its table row (the Dispatcher reads the
same words by offset). V2/V3 swaps become :class:`~chain.intents.SwapIntent` values, in order, so
that their multicall's ``swaps`` apply them one after the other; payments, Permit2 and checks
become :class:`~chain.intents.AuxiliaryIntent` values; commands that trade nothing we track (NFT
markets, position managers, bridges) are recognised by name only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from chain.intents import (
    MSG_SENDER,
    ROUTER,
    AuxiliaryIntent,
    CommandIntent,
    Intent,
    MulticallIntent,
    Protocol,
    SwapIntent,
    SwapKind,
    V4SwapIntent,
)
from chain.types import MalformedError
from watcher.abi_reader import compile_decoder
from watcher.decode_v2 import Row, swap_intent
from watcher.decode_v3 import packed_path

# Dispatcher.sol: ``commandType & FLAG_ALLOW_REVERT`` lets a failing command pass.
FLAG_ALLOW_REVERT = 0x80
# Constants.sol (v1) / v4-periphery ActionConstants.sol (v2): amount and recipient sentinels.
CONTRACT_BALANCE = 1 << 255
_ADDRESS_THIS = "0x" + "00" * 19 + "02"
_SENTINELS = {"0x" + "00" * 19 + "01": MSG_SENDER, _ADDRESS_THIS: ROUTER}
# Sub-plans run through the router again; real plans nest once or twice.
MAX_SUB_PLAN_DEPTH = 4


def recipient(address: str) -> str:
    """Dispatcher's ``map(recipient)``: the sentinels by meaning, other addresses as they are."""
    return _SENTINELS.get(address, address)


@dataclass(slots=True)
class _Plan:
    """One ``execute`` being decoded: what its commands share. ``wrapped`` is ether WRAP_ETH put in
    the router as WETH that no swap has spent yet (so a CONTRACT_BALANCE swap's input is known)."""

    router: str
    version: UniversalVersion
    value: int
    deadline: int | None
    wrapped: int = 0

    def swap(
        self,
        protocol: Protocol,
        name: str,
        kind: SwapKind,
        path: tuple[str, ...],
        fees: tuple[int, ...],
        args: tuple[Any, ...],
    ) -> SwapIntent:
        to, amount, limit, _, payer_is_user = args
        whole = kind == "exact_in" and amount == CONTRACT_BALANCE
        eth_in = not payer_is_user and self.wrapped > 0
        fixed: int | None = amount
        if whole:
            fixed = self.wrapped if eth_in else None
        if eth_in:  # exact-out spends at most the limit; the router unwraps what is left
            self.wrapped = max(0, self.wrapped - (fixed if kind == "exact_in" else limit))
        intent = swap_intent(
            protocol, self.router, name, kind, path, fees, fixed, limit, recipient(to),
            self.deadline, self.value, eth_in=eth_in,
        )  # fmt: skip
        return replace(intent, whole_balance=whole)


_Build = Callable[[_Plan, str, tuple[Any, ...], int], Intent]


@dataclass(frozen=True, slots=True)
class _Command:
    name: str
    read: Callable[[bytes], tuple[Any, ...]] | None  # None: recognised by name only
    build: _Build | None = None


def _v3_swap(kind: SwapKind) -> _Build:
    """``(recipient, amount, limit, bytes path, payerIsUser)``; exact-out paths run backwards."""

    def build(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> SwapIntent:
        path, fees = packed_path(args[3], exact_out=kind == "exact_out")
        return plan.swap("uniswap-v3", name, kind, path, fees, args)

    return build


def _v2_swap(kind: SwapKind) -> _Build:
    """``(recipient, amount, limit, address[] path, payerIsUser)``."""

    def build(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> SwapIntent:
        if len(args[3]) < 2:
            raise MalformedError(f"{name}: path has {len(args[3])} token(s)")
        return plan.swap("uniswap-v2", name, kind, args[3], (), args)

    return build


def _payment(token: int | None, amount: int | None, to: int | None) -> _Build:
    """A command that moves tokens or ether; the ints are argument positions."""

    def build(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> AuxiliaryIntent:
        value = None if amount is None else args[amount]
        whole = value == CONTRACT_BALANCE
        if whole and name == "WRAP_ETH":
            value = plan.value  # Payments.wrapETH: the router's ether, which is the tx value
        elif whole:
            value = None
        if name == "WRAP_ETH" and args[0] == _ADDRESS_THIS:
            plan.wrapped += value or 0
        return AuxiliaryIntent(
            router=plan.router,
            method=name,
            token=None if token is None else args[token],
            amount=value,
            recipient=None if to is None else recipient(args[to]),
            whole_balance=whole,
        )

    return build


def _permit_single(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> AuxiliaryIntent:
    # ((token, amount, expiration, nonce), spender, sigDeadline), signature
    details, spender = args[0][0], args[0][1]
    return AuxiliaryIntent(plan.router, name, details[0], details[1], spender)


def _sub_plan(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> MulticallIntent:
    return _decode_plan(plan, name, args[0], args[1], depth + 1)


def _v4_swap(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> MulticallIntent:
    actions, params = args
    if len(actions) != len(params):
        raise MalformedError(f"V4_SWAP: {len(actions)} actions but {len(params)} params")
    calls: list[Intent] = []
    for index, (action, data) in enumerate(zip(actions, params, strict=True)):
        spec = plan.version.v4_actions.get(action)
        if spec is None:
            raise MalformedError(f"V4_SWAP action 0x{action:02x} is not a V4Router action")
        try:
            calls.append(spec.build(plan, spec.name, spec.read(data), depth))  # type: ignore[misc]
        except MalformedError as error:
            raise MalformedError(f"V4_SWAP action {index}: {error.reason}") from None
    return MulticallIntent(plan.router, name, plan.deadline, None, plan.value, tuple(calls))


def _v4_single(kind: SwapKind) -> _Build:
    """``((currency0, currency1, fee, tickSpacing, hooks), zeroForOne, amount, limit, ...)``."""

    def build(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> V4SwapIntent:
        key, zero_for_one, amount, limit = args[0][:4]
        path = (key[0], key[1]) if zero_for_one else (key[1], key[0])
        return _v4_intent(name, kind, path, (key[2],), (key[3],), (key[4],), amount, limit)

    return build


def _v4_path(kind: SwapKind) -> _Build:
    """``(currencyIn|currencyOut, (intermediateCurrency, fee, tickSpacing, hooks, hookData)[],
    [minHopPriceX36[],] amount, limit)``. V4Router walks an exact-out path from its end."""

    def build(plan: _Plan, name: str, args: tuple[Any, ...], depth: int) -> V4SwapIntent:
        currency, keys, amount, limit = args[0][0], args[0][1], args[0][-2], args[0][-1]
        if not keys:
            raise MalformedError(f"{name}: empty path")
        hops = tuple(k[0] for k in keys)
        path = (currency, *hops) if kind == "exact_in" else (*hops, currency)
        return _v4_intent(
            name, kind, path, tuple(k[1] for k in keys), tuple(k[2] for k in keys),
            tuple(k[3] for k in keys), amount, limit,
        )  # fmt: skip

    return build


def _v4_intent(
    name: str,
    kind: SwapKind,
    path: tuple[str, ...],
    fees: tuple[int, ...],
    spacings: tuple[int, ...],
    hooks: tuple[str, ...],
    amount: int,
    limit: int,
) -> V4SwapIntent:
    exact_in = kind == "exact_in"
    return V4SwapIntent(
        action=name,
        kind=kind,
        path=path,
        fees=fees,
        tick_spacings=spacings,
        hooks=hooks,
        amount_in=amount if exact_in else None,
        amount_out_min=limit if exact_in else None,
        amount_out=None if exact_in else amount,
        amount_in_max=None if exact_in else limit,
    )


def _table(rows: dict[int, tuple[str, str | None, _Build | None]]) -> Mapping[int, _Command]:
    return MappingProxyType(
        {
            byte: _Command(name, None if types is None else compile_decoder(types), build)
            for byte, (name, types, build) in rows.items()
        }
    )


_V3_SWAP = "address,uint256,uint256,bytes,bool"
_V2_SWAP = "address,uint256,uint256,address[],bool"
_TOKEN_TO_AMOUNT = "address,address,uint256"
# IAllowanceTransfer (permit2): PermitDetails(token, amount, expiration, nonce).
_PERMIT_SINGLE = "((address,uint160,uint48,uint48),address,uint256),bytes"
_PERMIT_BATCH = "((address,uint160,uint48,uint48)[],address,uint256),bytes"
_TRANSFER_BATCH = "(address,address,uint160,address)[]"  # (from, to, amount, token)

# Commands 0x00-0x0d mean the same on every version (Commands.sol).
_COMMON = {
    0x00: ("V3_SWAP_EXACT_IN", _V3_SWAP, _v3_swap("exact_in")),
    0x01: ("V3_SWAP_EXACT_OUT", _V3_SWAP, _v3_swap("exact_out")),
    0x02: ("PERMIT2_TRANSFER_FROM", "address,address,uint160", _payment(0, 2, 1)),
    0x03: ("PERMIT2_PERMIT_BATCH", _PERMIT_BATCH, _payment(None, None, None)),
    0x04: ("SWEEP", _TOKEN_TO_AMOUNT, _payment(0, 2, 1)),  # amount: the minimum
    0x05: ("TRANSFER", _TOKEN_TO_AMOUNT, _payment(0, 2, 1)),
    0x06: ("PAY_PORTION", _TOKEN_TO_AMOUNT, _payment(0, 2, 1)),  # amount: bips
    0x08: ("V2_SWAP_EXACT_IN", _V2_SWAP, _v2_swap("exact_in")),
    0x09: ("V2_SWAP_EXACT_OUT", _V2_SWAP, _v2_swap("exact_out")),
    0x0A: ("PERMIT2_PERMIT", _PERMIT_SINGLE, _permit_single),
    0x0B: ("WRAP_ETH", "address,uint256", _payment(None, 1, 0)),
    0x0C: ("UNWRAP_WETH", "address,uint256", _payment(None, 1, 0)),  # amount: the minimum
    0x0D: ("PERMIT2_TRANSFER_FROM_BATCH", _TRANSFER_BATCH, _payment(None, None, None)),
}
# (owner, token, minBalance): the plan fails unless owner holds at least minBalance.
_BALANCE_CHECK = ("BALANCE_CHECK_ERC20", "address,address,uint256", _payment(1, 2, 0))
_SUB_PLAN = ("EXECUTE_SUB_PLAN", "bytes,bytes[]", _sub_plan)
_NFT_V1 = {
    byte: (name, None, None)
    for byte, name in enumerate(
        ("LOOKS_RARE_721", "NFTX", "CRYPTOPUNKS", "LOOKS_RARE_1155", "OWNER_CHECK_721",
         "OWNER_CHECK_1155", "SWEEP_ERC721", "X2Y2_721", "SUDOSWAP", "NFT20", "X2Y2_1155",
         "FOUNDATION", "SWEEP_ERC1155"),
        start=0x11,
    )
}  # fmt: skip
_V2_THIRD_BLOCK = {
    0x10: ("V4_SWAP", "bytes,bytes[]", _v4_swap),
    0x11: ("V3_POSITION_MANAGER_PERMIT", None, None),
    0x12: ("V3_POSITION_MANAGER_CALL", None, None),
    0x13: ("V4_INITIALIZE_POOL", None, None),
    0x14: ("V4_POSITION_MANAGER_CALL", None, None),
    0x21: _SUB_PLAN,
}

_POOL_KEY = "(address,address,uint24,int24,address)"
_PATH_KEYS = "(address,uint24,int24,address,bytes)[]"


def _v4_actions(hop_limits: bool) -> Mapping[int, _Command]:
    """V4Router's actions (Actions.sol), with or without 2.1.1's ``minHopPriceX36`` fields."""
    single = f"({_POOL_KEY},bool,uint128,uint128,{'uint256,' if hop_limits else ''}bytes)"
    multi = f"(address,{_PATH_KEYS},{'uint256[],' if hop_limits else ''}uint128,uint128)"
    return _table(
        {
            0x06: ("SWAP_EXACT_IN_SINGLE", single, _v4_single("exact_in")),
            0x07: ("SWAP_EXACT_IN", multi, _v4_path("exact_in")),
            0x08: ("SWAP_EXACT_OUT_SINGLE", single, _v4_single("exact_out")),
            0x09: ("SWAP_EXACT_OUT", multi, _v4_path("exact_out")),
            0x0B: ("SETTLE", "address,uint256,bool", _payment(0, 1, None)),
            0x0C: ("SETTLE_ALL", "address,uint256", _payment(0, 1, None)),  # the maximum
            0x0E: ("TAKE", _TOKEN_TO_AMOUNT, _payment(0, 2, 1)),
            0x0F: ("TAKE_ALL", "address,uint256", _payment(0, 1, None)),  # the minimum
            0x10: ("TAKE_PORTION", _TOKEN_TO_AMOUNT, _payment(0, 2, 1)),  # bips
        }
    )


@dataclass(frozen=True, slots=True, eq=False)
class UniversalVersion:
    """A deployed version: its command mask and table, and V4Router's actions where it has them."""

    name: str
    mask: int
    commands: Mapping[int, _Command]
    v4_actions: Mapping[int, _Command] = field(default_factory=lambda: MappingProxyType({}))


V1 = UniversalVersion(
    "universal-router-v1",
    0x1F,
    _table(
        {
            **_COMMON,
            0x0E: ("SEAPORT_V1_4", None, None),
            0x10: ("SEAPORT", None, None),
            **_NFT_V1,
        }
    ),
)
V1_2 = UniversalVersion(
    "universal-router-v1.2",
    0x3F,
    _table(
        {
            **_COMMON,
            0x0E: _BALANCE_CHECK,
            0x10: ("SEAPORT_V1_5", None, None),
            **{byte: row for byte, row in _NFT_V1.items() if byte != 0x14},
            0x11: ("LOOKS_RARE_V2", None, None),
            0x1E: ("ELEMENT_MARKET", None, None),
            0x20: ("SEAPORT_V1_4", None, None),
            0x21: _SUB_PLAN,
            0x22: ("APPROVE_ERC20", None, None),
        }
    ),
)
V2 = UniversalVersion(
    "universal-router-v2",
    0x3F,
    _table({**_COMMON, 0x0E: _BALANCE_CHECK, **_V2_THIRD_BLOCK}),
    _v4_actions(hop_limits=False),
)
V2_1 = UniversalVersion(
    "universal-router-v2.1",
    0x7F,
    _table(
        {
            **_COMMON,
            0x0E: _BALANCE_CHECK,
            **_V2_THIRD_BLOCK,
            0x40: ("ACROSS_V4_DEPOSIT_V3", None, None),
        }
    ),
    _v4_actions(hop_limits=False),
)
V2_1_1 = UniversalVersion(
    "universal-router-v2.1.1",
    0x7F,
    _table(
        {
            **_COMMON,
            0x07: ("PAY_PORTION_FULL_PRECISION", _TOKEN_TO_AMOUNT, _payment(0, 2, 1)),
            0x0E: _BALANCE_CHECK,
            **_V2_THIRD_BLOCK,
            0x40: ("ACROSS_V4_DEPOSIT_V3", None, None),
        }
    ),
    _v4_actions(hop_limits=True),
)


def _decode_plan(
    plan: _Plan, method: str, commands: bytes, inputs: tuple[bytes, ...], depth: int
) -> MulticallIntent:
    """The commands of one plan, in order; a swap into the router followed by UNWRAP_WETH pays
    ether out."""
    if depth >= MAX_SUB_PLAN_DEPTH:
        raise MalformedError(f"sub-plans nested deeper than {MAX_SUB_PLAN_DEPTH}")
    if len(commands) != len(inputs):
        raise MalformedError(f"{len(commands)} commands but {len(inputs)} inputs")
    version = plan.version
    calls: list[CommandIntent] = []
    for index, (byte, data) in enumerate(zip(commands, inputs, strict=True)):
        spec = version.commands.get(byte & version.mask)
        if spec is None:
            raise MalformedError(f"command 0x{byte:02x} is not a {version.name} command")
        try:
            args = () if spec.read is None else spec.read(data)
            intent: Intent = (
                AuxiliaryIntent(plan.router, spec.name)
                if spec.build is None
                else spec.build(plan, spec.name, args, depth)
            )
        except MalformedError as error:
            raise MalformedError(f"command {index} ({spec.name}): {error.reason}") from None
        payer = args[4] if isinstance(intent, SwapIntent) else None
        calls.append(CommandIntent(byte, spec.name, bool(byte & FLAG_ALLOW_REVERT), intent, payer))
    unwraps = [i for i, c in enumerate(calls) if c.name == "UNWRAP_WETH"]
    if unwraps:
        calls = [
            replace(c, intent=replace(c.intent, eth_out=True))
            if i < unwraps[-1] and isinstance(c.intent, SwapIntent) and c.intent.recipient == ROUTER
            else c
            for i, c in enumerate(calls)
        ]
    return MulticallIntent(plan.router, method, plan.deadline, None, plan.value, tuple(calls))


def _execute(version: UniversalVersion) -> Callable[[str, str, int, tuple[Any, ...]], Intent]:
    def build(router: str, method: str, value: int, args: tuple[Any, ...]) -> MulticallIntent:
        deadline = args[2] if len(args) == 3 else None
        plan = _Plan(router, version, value, deadline)
        return _decode_plan(plan, method, args[0], args[1], 0)

    return build


def rows(version: UniversalVersion) -> tuple[Row, ...]:
    """The router's ``execute`` methods (UniversalRouter.sol; selectors are keccak of these)."""
    return (
        ("3593564c", "execute(bytes,bytes[],uint256)", _execute(version)),
        ("24856bc3", "execute(bytes,bytes[])", _execute(version)),
    )
