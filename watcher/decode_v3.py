"""Uniswap V3 router calls as intents: SwapRouter and SwapRouter02 swaps (single pool and packed
paths) and the payment/permit/approval housekeeping that rides along in their multicalls.

Rows are (selector, signature, builder) like :mod:`watcher.decode_v2`; the multicall rows live in
:mod:`watcher.decode` because they decode their inner calls recursively.
"""

from __future__ import annotations

from typing import Any

from chain.intents import AuxiliaryIntent, SwapIntent, SwapKind
from chain.types import MalformedError
from watcher.decode_v2 import SWAP_ROUTER02_V2_ROWS, Build, Row, swap_intent


def packed_path(packed: bytes, *, exact_out: bool) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Tokens and fee tiers of a packed path ``token(20) (fee(3) token(20))+``, input first.

    exactOutput paths are encoded output first; they are reversed here so that every
    :class:`~chain.intents.SwapIntent` path reads input -> output.
    """
    size = len(packed)
    if size < 43 or (size - 20) % 23:
        raise MalformedError(f"V3 path of {size} bytes is not token (fee token)+")
    tokens = tuple(["0x" + packed[i : i + 20].hex() for i in range(0, size, 23)])
    fees = tuple([int.from_bytes(packed[i : i + 3], "big") for i in range(20, size, 23)])
    return (tokens[::-1], fees[::-1]) if exact_out else (tokens, fees)


def _single(kind: SwapKind, *, has_deadline: bool) -> Build:
    """``exact*Single((tokenIn, tokenOut, fee, recipient[, deadline], amount, limit, sqrtLimit))``;
    the price limit is not part of the intent."""
    at = 5 if has_deadline else 4

    def build(router: str, method: str, value: int, args: tuple[Any, ...]) -> SwapIntent:
        params = args[0]
        return swap_intent(
            "uniswap-v3", router, method, kind, (params[0], params[1]), (params[2],),
            params[at], params[at + 1], params[3], params[4] if has_deadline else None, value,
            eth_in=value > 0,
        )  # fmt: skip

    return build


def _path(kind: SwapKind, *, has_deadline: bool) -> Build:
    """``exactInput/exactOutput((path, recipient[, deadline], amount, limit))``."""
    at = 3 if has_deadline else 2

    def build(router: str, method: str, value: int, args: tuple[Any, ...]) -> SwapIntent:
        params = args[0]
        path, fees = packed_path(params[0], exact_out=kind == "exact_out")
        return swap_intent(
            "uniswap-v3", router, method, kind, path, fees,
            params[at], params[at + 1], params[1], params[2] if has_deadline else None, value,
            eth_in=value > 0,
        )  # fmt: skip

    return build


def _auxiliary(
    token: int | None = None, amount: int | None = None, recipient: int | None = None
) -> Build:
    """Housekeeping; the ints are the argument positions of the token, amount and recipient."""

    def build(router: str, method: str, value: int, args: tuple[Any, ...]) -> AuxiliaryIntent:
        return AuxiliaryIntent(
            router=router,
            method=method,
            token=None if token is None else args[token],
            amount=None if amount is None else args[amount],
            recipient=None if recipient is None else args[recipient],
        )

    return build


def _position(recipient: int | None) -> Build:
    """ApproveAndCall's ``mint``/``increaseLiquidity((token0, token1, ...))``: liquidity for the
    position manager, from what the multicall left in the router."""

    def build(router: str, method: str, value: int, args: tuple[Any, ...]) -> AuxiliaryIntent:
        params = args[0]
        return AuxiliaryIntent(
            router, method, params[0], None, None if recipient is None else params[recipient]
        )

    return build


# PeripheryPayments(WithFee) and SelfPermit, in both routers.
_PAYMENT_ROWS: tuple[Row, ...] = (
    ("49404b7c", "unwrapWETH9(uint256,address)", _auxiliary(amount=0, recipient=1)),
    ("9b2c0a37", "unwrapWETH9WithFee(uint256,address,uint256,address)",
     _auxiliary(amount=0, recipient=1)),
    ("df2ab5bb", "sweepToken(address,uint256,address)", _auxiliary(0, 1, 2)),
    ("e0e189a0", "sweepTokenWithFee(address,uint256,address,uint256,address)",
     _auxiliary(0, 1, 2)),
    ("12210e8a", "refundETH()", _auxiliary()),
    ("f3995c67", "selfPermit(address,uint256,uint256,uint8,bytes32,bytes32)", _auxiliary(0, 1)),
    ("c2e3140a", "selfPermitIfNecessary(address,uint256,uint256,uint8,bytes32,bytes32)",
     _auxiliary(0, 1)),
    ("4659a494", "selfPermitAllowed(address,uint256,uint256,uint8,bytes32,bytes32)",
     _auxiliary(0)),
    ("a4a78f0c", "selfPermitAllowedIfNecessary(address,uint256,uint256,uint8,bytes32,bytes32)",
     _auxiliary(0)),
)  # fmt: skip

SWAP_ROUTER_ROWS: tuple[Row, ...] = (
    ("414bf389", "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,"
     "uint160))", _single("exact_in", has_deadline=True)),
    ("c04b8d59", "exactInput((bytes,address,uint256,uint256,uint256))",
     _path("exact_in", has_deadline=True)),
    ("db3e2198", "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,"
     "uint160))", _single("exact_out", has_deadline=True)),
    ("f28c0498", "exactOutput((bytes,address,uint256,uint256,uint256))",
     _path("exact_out", has_deadline=True)),
    *_PAYMENT_ROWS,
)  # fmt: skip

# IV3SwapRouter (swap-router-contracts): the deadline moved to multicall(uint256,bytes[]).
SWAP_ROUTER02_ROWS: tuple[Row, ...] = (
    ("04e45aaf", "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))",
     _single("exact_in", has_deadline=False)),
    ("b858183f", "exactInput((bytes,address,uint256,uint256))",
     _path("exact_in", has_deadline=False)),
    ("5023b4df", "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint160))",
     _single("exact_out", has_deadline=False)),
    ("09b81346", "exactOutput((bytes,address,uint256,uint256))",
     _path("exact_out", has_deadline=False)),
    *SWAP_ROUTER02_V2_ROWS,
    *_PAYMENT_ROWS,
    ("49616997", "unwrapWETH9(uint256)", _auxiliary(amount=0)),
    ("d4ef38de", "unwrapWETH9WithFee(uint256,uint256,address)", _auxiliary(amount=0)),
    ("e90a182f", "sweepToken(address,uint256)", _auxiliary(0, 1)),
    ("3068c554", "sweepTokenWithFee(address,uint256,uint256,address)", _auxiliary(0, 1)),
    ("1c58db4f", "wrapETH(uint256)", _auxiliary(amount=0)),
    ("f2d5d56b", "pull(address,uint256)", _auxiliary(0, 1)),
    ("571ac8b0", "approveMax(address)", _auxiliary(0)),
    ("cab372ce", "approveMaxMinusOne(address)", _auxiliary(0)),
    ("639d71a9", "approveZeroThenMax(address)", _auxiliary(0)),
    ("ab3fdd50", "approveZeroThenMaxMinusOne(address)", _auxiliary(0)),
    ("efdeed8e", "checkOracleSlippage(bytes[],uint128[],uint24,uint32)", _auxiliary()),
    ("f25801a7", "checkOracleSlippage(bytes,uint24,uint32)", _auxiliary()),
    # swap-router-contracts contracts/base/ApproveAndCall.sol (selectors: the npm artifact's ABI).
    ("dee00f35", "getApprovalType(address,uint256)", _auxiliary(0, 1)),
    ("b3a2af13", "callPositionManager(bytes)", _auxiliary()),
    ("11ed56c9", "mint((address,address,uint24,int24,int24,uint256,uint256,address))",
     _position(7)),
    ("f100b205", "increaseLiquidity((address,address,uint256,uint256,uint256))", _position(None)),
)  # fmt: skip
