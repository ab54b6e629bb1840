"""Uniswap V2 constant-product math in exact integers, bit-for-bit with ``UniswapV2Library``.

The fee is given in basis points: the contract's ``997/1000`` is ``fee_bps=30`` (``9970/10000``
floors to the same integers), and forks with other fees (25 bps, 100 bps…) use the same formulas.

Error policy (chosen for the per-pending-tx hot path):

* **Invalid arguments** — a negative amount or reserve, a fee outside ``0 <= fee_bps < 10000`` —
  raise :class:`ValueError`: they are bugs in the caller, never market conditions.
* **No output** — a zero input, or an empty pool (either reserve zero) — makes
  :func:`get_amount_out` return ``0`` where the contract would revert with
  ``INSUFFICIENT_INPUT_AMOUNT`` / ``INSUFFICIENT_LIQUIDITY``; a search loop can then treat
  "nothing comes out" like any other bad price, with no exception handling.
* **Impossible output** — asking :func:`get_amount_in` / :func:`min_amount_in` for at least the
  whole out-reserve, or for any output from an empty pool — raises
  :class:`InsufficientLiquidityError` (a ``ValueError``), because no input amount answers it and
  ``0`` would read as "free".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from chain.topics import SYNC
from chain.types import Log

FEE_DENOMINATOR = 10_000


class InsufficientLiquidityError(ValueError):
    """The pool cannot pay out the requested amount (the contract's ``INSUFFICIENT_LIQUIDITY``)."""


def _check_fee(fee_bps: int) -> None:
    if not 0 <= fee_bps < FEE_DENOMINATOR:
        raise ValueError(f"fee_bps must be in [0, {FEE_DENOMINATOR}), got {fee_bps}")


def _check_non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def check_pool_arguments(reserve_in: int, reserve_out: int, fee_bps: int) -> None:
    """Raise :class:`ValueError` for a negative reserve or a fee outside ``[0, 10000)``."""
    _check_non_negative(reserve_in=reserve_in, reserve_out=reserve_out)
    _check_fee(fee_bps)


def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """Output of swapping ``amount_in`` into a V2 pool (``UniswapV2Library.getAmountOut``).

    Returns 0 for a zero input or an empty pool (see the module's error policy).
    """
    # One combined test keeps the common case to a single branch; the rare cases sort it out.
    if amount_in > 0 and reserve_in > 0 and reserve_out > 0 and 0 <= fee_bps < FEE_DENOMINATOR:
        amount_in_with_fee = amount_in * (FEE_DENOMINATOR - fee_bps)
        return (amount_in_with_fee * reserve_out) // (
            reserve_in * FEE_DENOMINATOR + amount_in_with_fee
        )
    _check_non_negative(amount_in=amount_in, reserve_in=reserve_in, reserve_out=reserve_out)
    _check_fee(fee_bps)
    return 0


def _input_ratio(
    amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int
) -> tuple[int, int]:
    """``(numerator, denominator)`` of the exact real input for ``amount_out``, after the checks."""
    if not (0 < amount_out < reserve_out and reserve_in > 0 and 0 <= fee_bps < FEE_DENOMINATOR):
        _check_non_negative(amount_out=amount_out, reserve_in=reserve_in, reserve_out=reserve_out)
        _check_fee(fee_bps)
        if amount_out > 0:
            raise InsufficientLiquidityError(
                f"cannot take {amount_out} out of reserves ({reserve_in}, {reserve_out})"
            )
        return 0, 1
    return (
        reserve_in * amount_out * FEE_DENOMINATOR,
        (reserve_out - amount_out) * (FEE_DENOMINATOR - fee_bps),
    )


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """Input the router charges for exactly ``amount_out`` (``UniswapV2Library.getAmountIn``).

    Like the contract this is ``floor(...) + 1``, which is one wei more than needed when the
    division is exact; :func:`min_amount_in` gives the true minimum. ``amount_out == 0`` costs 0
    (the contract reverts with ``INSUFFICIENT_OUTPUT_AMOUNT``). Raises
    :class:`InsufficientLiquidityError` when the pool cannot pay ``amount_out``.
    """
    numerator, denominator = _input_ratio(amount_out, reserve_in, reserve_out, fee_bps)
    return numerator // denominator + 1 if numerator else 0


def min_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """The smallest input for which :func:`get_amount_out` gives at least ``amount_out``.

    Raises :class:`InsufficientLiquidityError` when the pool cannot pay ``amount_out``.
    """
    numerator, denominator = _input_ratio(amount_out, reserve_in, reserve_out, fee_bps)
    return -(-numerator // denominator)


def amounts_out(amount_in: int, hops: Sequence[tuple[int, int]], fee_bps: int = 30) -> list[int]:
    """Amounts along a swap path (``UniswapV2Library.getAmountsOut``).

    ``hops`` are the ``(reserve_in, reserve_out)`` of each pool in trade direction; the result
    starts with ``amount_in`` and has one amount per hop after it.
    """
    amounts = [amount_in]
    for reserve_in, reserve_out in hops:
        amount_in = get_amount_out(amount_in, reserve_in, reserve_out, fee_bps)
        amounts.append(amount_in)
    return amounts


def spot_price(reserve_in: int, reserve_out: int) -> Fraction:
    """Marginal price of the input token in output-token units, before the fee (raw units)."""
    if reserve_in <= 0:
        raise InsufficientLiquidityError(f"no price in an empty pool (reserve_in={reserve_in})")
    _check_non_negative(reserve_out=reserve_out)
    return Fraction(reserve_out, reserve_in)


@dataclass(frozen=True, slots=True)
class Pool:
    """One V2 pair's state: a value; :meth:`swap` returns the pool as it is after the trade.

    It implements :class:`~simulation.pools.PoolState` (kind ``uniswap-v2``).
    """

    kind: ClassVar[str] = "uniswap-v2"
    address: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee_bps: int = 30

    def __post_init__(self) -> None:
        if self.token0 == self.token1:
            raise ValueError(f"pool {self.address}: token0 and token1 are both {self.token0}")
        _check_non_negative(reserve0=self.reserve0, reserve1=self.reserve1)
        _check_fee(self.fee_bps)

    @property
    def route_key(self) -> tuple[()]:
        """A V2 factory has one pair per token pair."""
        return ()

    def token_out(self, token_in: str) -> str:
        """The other token of the pair."""
        if token_in == self.token0:
            return self.token1
        if token_in == self.token1:
            return self.token0
        raise ValueError(f"token {token_in} is not in pool {self.address}")

    def reserves_for(self, token_in: str) -> tuple[int, int]:
        """``(reserve_in, reserve_out)`` for a trade that sells ``token_in``."""
        if token_in == self.token0:
            return self.reserve0, self.reserve1
        if token_in == self.token1:
            return self.reserve1, self.reserve0
        raise ValueError(f"token {token_in} is not in pool {self.address}")

    def amount_out(self, token_in: str, amount_in: int) -> int:
        """What selling ``amount_in`` of ``token_in`` pays out."""
        reserve_in, reserve_out = self.reserves_for(token_in)
        return get_amount_out(amount_in, reserve_in, reserve_out, self.fee_bps)

    def amount_in(self, token_in: str, amount_out: int) -> int | None:
        """What Router02 charges for exactly ``amount_out`` (``getAmountIn``); None when the
        pair cannot pay it."""
        reserve_in, reserve_out = self.reserves_for(token_in)
        try:
            return get_amount_in(amount_out, reserve_in, reserve_out, self.fee_bps)
        except InsufficientLiquidityError:
            return None

    def rate(self, token_in: str) -> float:
        reserve_in, reserve_out = self.reserves_for(token_in)
        if not reserve_in:
            return 0.0
        return reserve_out / reserve_in * (FEE_DENOMINATOR - self.fee_bps) / FEE_DENOMINATOR

    def constant_product(self, zero_for_one: bool) -> tuple[int, int, int]:
        if zero_for_one:
            return self.reserve0, self.reserve1, self.fee_bps
        return self.reserve1, self.reserve0, self.fee_bps

    def apply_log(self, log: Log) -> Pool | None:
        """The pair after its ``Sync(reserve0, reserve1)``; None for its other logs."""
        if log.topic0 != SYNC:
            return None
        if len(log.data) != 64:
            raise ValueError("Sync data is not two words")
        return self.with_reserves(
            int.from_bytes(log.data[:32], "big"), int.from_bytes(log.data[32:], "big")
        )

    def swap(self, token_in: str, amount_in: int) -> tuple[int, Pool]:
        """Sell ``amount_in`` of ``token_in``: ``(amount_out, pool after the swap)``.

        The whole input (fee included) stays in the pool, as in ``UniswapV2Pair.swap``.
        """
        amount_out = self.amount_out(token_in, amount_in)
        if token_in == self.token0:
            after = (self.reserve0 + amount_in, self.reserve1 - amount_out)
        else:
            after = (self.reserve0 - amount_out, self.reserve1 + amount_in)
        return amount_out, self.with_reserves(*after)

    def with_reserves(self, reserve0: int, reserve1: int) -> Pool:
        """The same pair with new reserves (e.g. from a ``Sync`` event)."""
        return Pool(self.address, self.token0, self.token1, reserve0, reserve1, self.fee_bps)

    def spot_price(self, token_in: str) -> Fraction:
        """Marginal price of ``token_in`` in units of the other token, before the fee."""
        return spot_price(*self.reserves_for(token_in))

    @property
    def price0(self) -> Fraction:
        """Price of token0 in token1 (``reserve1 / reserve0``, raw units)."""
        return spot_price(self.reserve0, self.reserve1)

    @property
    def price1(self) -> Fraction:
        """Price of token1 in token0 (``reserve0 / reserve1``, raw units)."""
        return spot_price(self.reserve1, self.reserve0)
