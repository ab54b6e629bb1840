"""Uniswap V2 calls as intents: Router02 (and forks) swaps and liquidity, SwapRouter02's V2 swaps,
and the pair's own ``swap``.

Rows are (selector, signature, builder); :mod:`watcher.decode` compiles the signature into a
calldata reader and calls the builder with (router, method name, tx value, decoded arguments).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chain.intents import Intent, LiquidityIntent, PairSwapIntent, Protocol, SwapIntent, SwapKind
from chain.types import MalformedError

Build = Callable[[str, str, int, tuple[Any, ...]], Intent]
Row = tuple[str, str, Build]


def swap_intent(
    protocol: Protocol,
    router: str,
    method: str,
    kind: SwapKind,
    path: tuple[str, ...],
    fees: tuple[int, ...],
    amount: int | None,
    limit: int,
    recipient: str,
    deadline: int | None,
    value: int,
    *,
    eth_in: bool,
    eth_out: bool = False,
    fee_on_transfer: bool = False,
) -> SwapIntent:
    """``amount`` is what the swap fixes (the input or the output), ``limit`` its slippage bound."""
    exact_in = kind == "exact_in"
    return SwapIntent(
        protocol=protocol,
        router=router,
        method=method,
        kind=kind,
        path=path,
        fees=fees,
        amount_in=amount if exact_in else None,
        amount_out_min=limit if exact_in else None,
        amount_out=None if exact_in else amount,
        amount_in_max=None if exact_in else limit,
        recipient=recipient,
        deadline=deadline,
        value=value,
        eth_in=eth_in,
        eth_out=eth_out,
        fee_on_transfer=fee_on_transfer,
    )


def _swap(
    kind: SwapKind,
    *,
    eth_in: bool = False,
    eth_out: bool = False,
    fee_on_transfer: bool = False,
    has_deadline: bool = True,
) -> Build:
    """``(amount, [limit,] path, to[, deadline])``. ETH-in variants have no limit argument: the
    tx value is the exact input or the maximum input. SwapRouter02 (no deadline) pays with ETH
    whenever the call carries value."""

    def build(router: str, method: str, value: int, args: tuple[Any, ...]) -> SwapIntent:
        if eth_in:
            fixed, path, recipient = args[0], args[1], args[2]
            amount, limit = (value, fixed) if kind == "exact_in" else (fixed, value)
        else:
            amount, limit, path, recipient = args[0], args[1], args[2], args[3]
        if len(path) < 2:
            raise MalformedError(f"{method}: path has {len(path)} token(s)")
        return swap_intent(
            "uniswap-v2", router, method, kind, path, (), amount, limit, recipient,
            args[-1] if has_deadline else None, value,
            eth_in=eth_in or (not has_deadline and value > 0),
            eth_out=eth_out,
            fee_on_transfer=fee_on_transfer,
        )  # fmt: skip

    return build


def _add_liquidity(router: str, method: str, value: int, args: tuple[Any, ...]) -> LiquidityIntent:
    token_a, token_b, desired_a, desired_b, min_a, min_b, to, deadline = args
    return LiquidityIntent(
        router, method, "add", (token_a, token_b), False, None,
        (desired_a, desired_b), (min_a, min_b), to, deadline, value,
    )  # fmt: skip


def _add_liquidity_eth(
    router: str, method: str, value: int, args: tuple[Any, ...]
) -> LiquidityIntent:
    token, desired, min_token, min_eth, to, deadline = args
    return LiquidityIntent(
        router, method, "add", (token,), True, None,
        (desired, value), (min_token, min_eth), to, deadline, value,
    )  # fmt: skip


def _remove_liquidity(
    router: str, method: str, value: int, args: tuple[Any, ...]
) -> LiquidityIntent:
    # The *WithPermit variants append (approveMax, v, r, s), which say nothing about the pool.
    token_a, token_b, liquidity, min_a, min_b, to, deadline = args[:7]
    return LiquidityIntent(
        router, method, "remove", (token_a, token_b), False, liquidity,
        (), (min_a, min_b), to, deadline, value,
    )  # fmt: skip


def _remove_liquidity_eth(
    router: str, method: str, value: int, args: tuple[Any, ...]
) -> LiquidityIntent:
    token, liquidity, min_token, min_eth, to, deadline = args[:6]
    return LiquidityIntent(
        router, method, "remove", (token,), True, liquidity,
        (), (min_token, min_eth), to, deadline, value,
    )  # fmt: skip


def _pair_swap(router: str, method: str, value: int, args: tuple[Any, ...]) -> PairSwapIntent:
    amount0_out, amount1_out, to, data = args
    return PairSwapIntent(router, amount0_out, amount1_out, to, len(data))


ROUTER02_ROWS: tuple[Row, ...] = (
    ("38ed1739", "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
     _swap("exact_in")),
    ("8803dbee", "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
     _swap("exact_out")),
    ("7ff36ab5", "swapExactETHForTokens(uint256,address[],address,uint256)",
     _swap("exact_in", eth_in=True)),
    ("4a25d94a", "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
     _swap("exact_out", eth_out=True)),
    ("18cbafe5", "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
     _swap("exact_in", eth_out=True)),
    ("fb3bdb41", "swapETHForExactTokens(uint256,address[],address,uint256)",
     _swap("exact_out", eth_in=True)),
    ("5c11d795", "swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],"
     "address,uint256)", _swap("exact_in", fee_on_transfer=True)),
    ("b6f9de95", "swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,"
     "uint256)", _swap("exact_in", eth_in=True, fee_on_transfer=True)),
    ("791ac947", "swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],"
     "address,uint256)", _swap("exact_in", eth_out=True, fee_on_transfer=True)),
    ("e8e33700", "addLiquidity(address,address,uint256,uint256,uint256,uint256,address,uint256)",
     _add_liquidity),
    ("f305d719", "addLiquidityETH(address,uint256,uint256,uint256,address,uint256)",
     _add_liquidity_eth),
    ("baa2abde", "removeLiquidity(address,address,uint256,uint256,uint256,address,uint256)",
     _remove_liquidity),
    ("02751cec", "removeLiquidityETH(address,uint256,uint256,uint256,address,uint256)",
     _remove_liquidity_eth),
    ("2195995c", "removeLiquidityWithPermit(address,address,uint256,uint256,uint256,address,"
     "uint256,bool,uint8,bytes32,bytes32)", _remove_liquidity),
    ("ded9382a", "removeLiquidityETHWithPermit(address,uint256,uint256,uint256,address,uint256,"
     "bool,uint8,bytes32,bytes32)", _remove_liquidity_eth),
    ("af2979eb", "removeLiquidityETHSupportingFeeOnTransferTokens(address,uint256,uint256,uint256,"
     "address,uint256)", _remove_liquidity_eth),
    ("5b0d5984", "removeLiquidityETHWithPermitSupportingFeeOnTransferTokens(address,uint256,"
     "uint256,uint256,address,uint256,bool,uint8,bytes32,bytes32)", _remove_liquidity_eth),
)  # fmt: skip

# SwapRouter02's V2 swaps (V2SwapRouter.sol): no deadline (the multicall carries it), no ETH
# variants (value is wrapped when the input token is WETH).
SWAP_ROUTER02_V2_ROWS: tuple[Row, ...] = (
    ("472b43f3", "swapExactTokensForTokens(uint256,uint256,address[],address)",
     _swap("exact_in", has_deadline=False)),
    ("42712a67", "swapTokensForExactTokens(uint256,uint256,address[],address)",
     _swap("exact_out", has_deadline=False)),
)  # fmt: skip

PAIR_ROWS: tuple[Row, ...] = (("022c0d9f", "swap(uint256,uint256,address,bytes)", _pair_swap),)
