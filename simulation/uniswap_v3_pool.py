"""A Uniswap V3 pool as an I/O-free value: the swap loop of ``UniswapV3Pool.swap``, its logs,
and a JSON snapshot of its state.

:class:`V3Pool` implements :class:`~simulation.pools.PoolState` (kind ``uniswap-v3``, route key
``(fee,)``). It holds slot0's price and tick, the in-range liquidity, the tick-bitmap words it
knows (word index -> uint256) and the initialized ticks of those words (tick ->
``(liquidity_gross, liquidity_net)``). A swap steps from initialized tick to initialized tick
word by word, as the contract does; when it needs a word the pool does not know it raises
:class:`MissingTickWordError` naming the word, so that a loader can fetch it — it never stops at
a word boundary on its own. A pool followed since its creation (``bitmap_complete``) knows that
every word it has not recorded is empty.

**Snapshot format** (:meth:`V3Pool.to_json` / :meth:`V3Pool.from_json`), one JSON object; big
integers are decimal strings, ticks and word indexes are JSON object keys (decimal strings)::

    {"kind": "uniswap-v3", "address": "0x…", "token0": "0x…", "token1": "0x…",
     "fee": 3000, "tick_spacing": 60,
     "sqrt_price_x96": "79228162514264337593543950336", "tick": 0, "liquidity": "2000…",
     "bitmap_complete": false,
     "words": {"-1": "<uint256>", "0": "<uint256>"},
     "ticks": {"-60": {"liquidity_gross": "…", "liquidity_net": "-…"}}}

Every set bit of a listed word has its tick in ``ticks``; ``liquidity_net`` is signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from chain.topics import V3_BURN, V3_INITIALIZE, V3_MINT, V3_SWAP
from chain.types import Log
from simulation.pools import StateMissing
from simulation.uniswap_v3_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MAX_UINT128,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    V3Revert,
    add_delta,
    compute_swap_step,
    flip_tick,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    next_initialized_tick_within_one_word,
)

SNAPSHOT_KIND = "uniswap-v3"
_INT256_MAX = (1 << 255) - 1


class MissingTickWordError(StateMissing):
    """A swap reached a tick-bitmap word the pool does not know: fetch it and try again."""

    def __init__(self, pool: str, word: int) -> None:
        super().__init__(f"pool {pool} needs tick-bitmap word {word}")
        self.pool = pool
        self.word = word


@dataclass(frozen=True, slots=True)
class SwapResult:
    """What ``UniswapV3Pool.swap`` would do: the pool's signed balance deltas (positive: paid
    in, negative: paid out, as in the Swap event), its slot0 and liquidity after, the fee growth
    the swap adds to the input token's ``feeGrowthGlobalX128`` (protocol fee off), and how many
    initialized ticks it crossed."""

    amount0: int
    amount1: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee_growth_x128: int
    ticks_crossed: int


def _words(data: bytes, count: int) -> list[bytes]:
    if len(data) != 32 * count:
        raise ValueError(f"log data is {len(data)} bytes, expected {count} words")
    return [data[32 * i : 32 * i + 32] for i in range(count)]


@dataclass(frozen=True, slots=True)
class V3Pool:
    """One V3 pool's state as a value (see the module docstring)."""

    kind: ClassVar[str] = SNAPSHOT_KIND
    address: str
    token0: str
    token1: str
    fee: int
    tick_spacing: int
    sqrt_price_x96: int = 0
    tick: int = 0
    liquidity: int = 0
    words: Mapping[int, int] = field(default_factory=dict, hash=False)
    ticks: Mapping[int, tuple[int, int]] = field(default_factory=dict, hash=False)
    bitmap_complete: bool = False

    @property
    def route_key(self) -> tuple[int]:
        """A V3 factory has one pool per token pair and fee tier."""
        return (self.fee,)

    def token_out(self, token_in: str) -> str:
        """The other token of the pool."""
        return self.token1 if self._zero_for_one(token_in) else self.token0

    def _zero_for_one(self, token_in: str) -> bool:
        if token_in == self.token0:
            return True
        if token_in == self.token1:
            return False
        raise ValueError(f"token {token_in} is not in pool {self.address}")

    # ------------------------------------------------------------------ the swap loop

    def simulate(
        self,
        zero_for_one: bool,
        amount_specified: int,
        sqrt_price_limit_x96: int | None = None,
    ) -> SwapResult:
        """``UniswapV3Pool.swap(zeroForOne, amountSpecified, sqrtPriceLimitX96)``: positive
        ``amount_specified`` is exact input, negative exact output. Without a limit the swap may
        go to the extreme price (``MIN_SQRT_RATIO + 1`` / ``MAX_SQRT_RATIO − 1``, the routers'
        defaults) and fills partly when liquidity runs out.

        Raises :class:`~simulation.uniswap_v3_math.V3Revert` where the pool reverts ('AS' for a
        zero amount, 'SPL' for a limit on the wrong side, 'LOK' for a pool not initialized) and
        :class:`MissingTickWordError` when it needs a bitmap word it does not know.
        """
        return SwapResult(*self._swap(zero_for_one, amount_specified, sqrt_price_limit_x96, True))

    def _swap(
        self, zero_for_one: bool, amount_specified: int, limit: int | None, full: bool
    ) -> tuple[int, int, int, int, int, int, int]:
        """The swap loop, as :class:`SwapResult`'s fields. Quotes pass ``full=False``: a swap
        ending inside a range then skips computing the tick there (the result keeps the starting
        tick) and the fee growth is left at 0."""
        if amount_specified == 0:
            raise V3Revert("AS")
        if not -_INT256_MAX <= amount_specified <= _INT256_MAX:
            raise V3Revert("amountSpecified does not fit int256")
        sqrt_price = self.sqrt_price_x96
        if sqrt_price == 0:
            raise V3Revert("LOK")
        if zero_for_one:
            limit = MIN_SQRT_RATIO + 1 if limit is None else limit
            if not MIN_SQRT_RATIO < limit < sqrt_price:
                raise V3Revert("SPL")
        else:
            limit = MAX_SQRT_RATIO - 1 if limit is None else limit
            if not sqrt_price < limit < MAX_SQRT_RATIO:
                raise V3Revert("SPL")
        exact_in = amount_specified > 0
        remaining, calculated = amount_specified, 0
        tick: int | None = self.tick
        liquidity, fee, spacing, words = self.liquidity, self.fee, self.tick_spacing, self.words
        fee_growth = crossed = 0
        while remaining and sqrt_price != limit:
            if tick is None:  # a step ended inside a range without using up the amount
                tick = get_tick_at_sqrt_ratio(sqrt_price)
            compressed = tick // spacing
            index = compressed >> 8 if zero_for_one else (compressed + 1) >> 8
            word = words.get(index)
            if word is None:
                if not self.bitmap_complete:
                    raise MissingTickWordError(self.address, index)
                word = 0
            tick_next, initialized = next_initialized_tick_within_one_word(
                word, tick, spacing, zero_for_one
            )
            if tick_next < MIN_TICK:
                tick_next = MIN_TICK
            elif tick_next > MAX_TICK:
                tick_next = MAX_TICK
            sqrt_next = get_sqrt_ratio_at_tick(tick_next)
            beyond = sqrt_next < limit if zero_for_one else sqrt_next > limit
            start = sqrt_price
            sqrt_price, amount_in, amount_out, fee_amount = compute_swap_step(
                sqrt_price, limit if beyond else sqrt_next, liquidity, remaining, fee
            )
            if exact_in:
                remaining -= amount_in + fee_amount
                calculated -= amount_out
            else:
                remaining += amount_out
                calculated += amount_in + fee_amount
            if full and liquidity:
                fee_growth += (fee_amount << 128) // liquidity
            if sqrt_price == sqrt_next:
                if initialized:
                    net = self.ticks[tick_next][1]
                    liquidity = add_delta(liquidity, -net if zero_for_one else net)
                    crossed += 1
                tick = tick_next - 1 if zero_for_one else tick_next
            elif sqrt_price != start:
                tick = None
        if tick is None:
            tick = get_tick_at_sqrt_ratio(sqrt_price) if full else self.tick
        if zero_for_one == exact_in:
            amount0, amount1 = amount_specified - remaining, calculated
        else:
            amount0, amount1 = calculated, amount_specified - remaining
        return amount0, amount1, sqrt_price, tick, liquidity, fee_growth, crossed

    # ------------------------------------------------------------------ PoolState

    def amount_out(self, token_in: str, amount_in: int) -> int:
        """What selling ``amount_in`` of ``token_in`` pays out, to the extreme price (a partial
        fill when liquidity runs out pays what the pool has); 0 for a pool not initialized."""
        zero_for_one = self._zero_for_one(token_in)
        if amount_in < 0:
            raise ValueError(f"amount_in must be >= 0, got {amount_in}")
        if amount_in == 0 or self.sqrt_price_x96 == 0:
            return 0
        amount0, amount1, *_ = self._swap(zero_for_one, amount_in, None, False)
        return -(amount1 if zero_for_one else amount0)

    def amount_in(self, token_in: str, amount_out: int) -> int | None:
        """What exactly ``amount_out`` of the other token costs in ``token_in`` (fee included);
        None when the pool cannot pay it all (a router's exact-output swap reverts then)."""
        zero_for_one = self._zero_for_one(token_in)
        if amount_out < 0:
            raise ValueError(f"amount_out must be >= 0, got {amount_out}")
        if amount_out == 0:
            return 0
        if self.sqrt_price_x96 == 0:
            return None
        amount0, amount1, *_ = self._swap(zero_for_one, -amount_out, None, False)
        paid, received = (amount0, -amount1) if zero_for_one else (amount1, -amount0)
        return paid if received == amount_out else None

    def swap(self, token_in: str, amount_in: int) -> tuple[int, V3Pool]:
        """Sell ``amount_in`` of ``token_in``: ``(amount out, the pool after the swap)``."""
        zero_for_one = self._zero_for_one(token_in)
        if amount_in < 0:
            raise ValueError(f"amount_in must be >= 0, got {amount_in}")
        if amount_in == 0 or self.sqrt_price_x96 == 0:
            return 0, self
        result = self.simulate(zero_for_one, amount_in)
        out = -(result.amount1 if zero_for_one else result.amount0)
        return out, self.after(result)

    def after(self, result: SwapResult) -> V3Pool:
        """The pool after a swap :meth:`simulate` computed (ticks and bitmap do not change)."""
        return self.with_slot0(result.sqrt_price_x96, result.tick, result.liquidity)

    def with_slot0(self, sqrt_price_x96: int, tick: int, liquidity: int) -> V3Pool:
        """The same pool at another price, tick and in-range liquidity (built directly, not by
        ``dataclasses.replace``: a block's Swap logs come through here on the hot path)."""
        return V3Pool(
            self.address,
            self.token0,
            self.token1,
            self.fee,
            self.tick_spacing,
            sqrt_price_x96,
            tick,
            liquidity,
            self.words,
            self.ticks,
            self.bitmap_complete,
        )

    def rate(self, token_in: str) -> float:
        """The price (sqrtPrice² / 2¹⁹²) in the swap's direction, less the fee."""
        price = (self.sqrt_price_x96 / Q96) ** 2
        if not self._zero_for_one(token_in):
            price = 1 / price if price else 0.0
        return price * (1_000_000 - self.fee) / 1_000_000

    def constant_product(self, zero_for_one: bool) -> None:
        """Concentrated liquidity has no single constant-product curve."""
        return None

    # ------------------------------------------------------------------ logs

    def apply_log(self, log: Log) -> V3Pool | None:
        """The pool after its Swap, Mint, Burn or Initialize; None for its other logs.

        Swap and Initialize set slot0 (and Swap the liquidity) exactly as the event reports.
        Mint and Burn add or remove liquidity at their two ticks (flipping bitmap bits when a
        tick becomes or stops being initialized) and in range; a tick in a word the pool does
        not know is left for whoever fetches that word.
        """
        topic0 = log.topic0
        if topic0 == V3_SWAP:
            data = log.data
            if len(log.topics) != 3 or len(data) != 160:
                raise ValueError("Swap needs 3 topics and 5 data words")
            sqrt_price = int.from_bytes(data[64:96], "big")
            liquidity = int.from_bytes(data[96:128], "big")
            tick = int.from_bytes(data[128:], "big", signed=True)
            if (
                MIN_SQRT_RATIO <= sqrt_price < MAX_SQRT_RATIO
                and liquidity <= MAX_UINT128
                and MIN_TICK <= tick <= MAX_TICK
            ):
                return self.with_slot0(sqrt_price, tick, liquidity)
            raise ValueError(f"Swap: price {sqrt_price}, liquidity or tick {tick} out of range")
        if topic0 in (V3_MINT, V3_BURN):
            if len(log.topics) != 4:
                raise ValueError("Mint/Burn needs 4 topics")
            lower = int.from_bytes(log.topics[2], "big", signed=True)
            upper = int.from_bytes(log.topics[3], "big", signed=True)
            if topic0 == V3_MINT:
                amount = int.from_bytes(_words(log.data, 4)[1], "big")
            else:
                amount = -int.from_bytes(_words(log.data, 3)[0], "big")
            return self.with_position_change(lower, upper, amount)
        if topic0 == V3_INITIALIZE:
            sqrt_price, tick = _words(log.data, 2)
            return self.with_slot0(
                self._price(int.from_bytes(sqrt_price, "big")),
                self._tick(int.from_bytes(tick, "big", signed=True)),
                self.liquidity,
            )
        return None

    @staticmethod
    def _price(value: int) -> int:
        if not MIN_SQRT_RATIO <= value < MAX_SQRT_RATIO:
            raise ValueError(f"sqrtPriceX96 {value} is out of range")
        return value

    @staticmethod
    def _liquidity(value: int) -> int:
        if value > MAX_UINT128:
            raise ValueError(f"liquidity {value} does not fit uint128")
        return value

    @staticmethod
    def _tick(value: int) -> int:
        if not MIN_TICK <= value <= MAX_TICK:
            raise ValueError(f"tick {value} is out of range")
        return value

    def with_position_change(self, lower: int, upper: int, delta: int) -> V3Pool | None:
        """The pool after ``delta`` liquidity is added (> 0) or removed (< 0) between two ticks
        (``Tick.update``, ``TickBitmap.flipTick``, the in-range update of ``_modifyPosition``);
        None when ``delta`` is 0 (a poke changes nothing here)."""
        spacing = self.tick_spacing
        if not MIN_TICK <= lower < upper <= MAX_TICK or lower % spacing or upper % spacing:
            raise ValueError(f"bad tick range [{lower}, {upper}) for spacing {spacing}")
        if delta == 0:
            return None
        words, ticks = dict(self.words), dict(self.ticks)
        try:
            for tick, sign in ((lower, 1), (upper, -1)):
                index = tick // spacing >> 8
                if index not in words and not self.bitmap_complete:
                    continue
                gross, net = ticks.get(tick, (0, 0))
                gross_after = add_delta(gross, delta)
                if (gross == 0) != (gross_after == 0):
                    flip_tick(words, tick, spacing)
                    if not words[index] and self.bitmap_complete:
                        del words[index]  # an unrecorded word is empty: keep the map small
                if gross_after:
                    ticks[tick] = (gross_after, net + sign * delta)
                else:
                    ticks.pop(tick, None)
            liquidity = self.liquidity
            if lower <= self.tick < upper:
                liquidity = add_delta(liquidity, delta)
        except V3Revert as error:
            raise ValueError(f"pool {self.address}: liquidity change {delta}: {error}") from None
        return replace(self, liquidity=liquidity, words=words, ticks=ticks)

    def with_words(self, words: Mapping[int, int], ticks: Mapping[int, tuple[int, int]]) -> V3Pool:
        """The pool knowing more bitmap words and the initialized ticks in them."""
        pool = replace(self, words={**self.words, **words}, ticks={**self.ticks, **ticks})
        pool.check()
        return pool

    def check(self) -> None:
        """:class:`ValueError` when the state is not one a pool can be in: a price, tick or
        liquidity out of range, or a set bitmap bit without its tick."""
        if self.token0 == self.token1:
            raise ValueError(f"pool {self.address}: token0 and token1 are both {self.token0}")
        if not 0 <= self.fee < 1_000_000 or not 0 < self.tick_spacing < 16384:
            raise ValueError(f"pool {self.address}: bad fee {self.fee} / spacing")
        if self.sqrt_price_x96:
            self._price(self.sqrt_price_x96)
        self._tick(self.tick)
        self._liquidity(self.liquidity)
        for gross, _ in self.ticks.values():
            if not 0 < gross <= MAX_UINT128:
                raise ValueError(f"pool {self.address}: liquidity_gross {gross} out of range")
        for index, word in self.words.items():
            if not 0 <= word < 1 << 256:
                raise ValueError(f"pool {self.address}: word {index} does not fit uint256")
            while word:
                bit = (word & -word).bit_length() - 1
                tick = ((index << 8) + bit) * self.tick_spacing
                if tick not in self.ticks:
                    raise ValueError(f"pool {self.address}: tick {tick} is set but not given")
                word &= word - 1

    # ------------------------------------------------------------------ snapshots

    def to_json(self) -> dict[str, Any]:
        """The snapshot object of the module docstring."""
        return {
            "kind": SNAPSHOT_KIND,
            "address": self.address,
            "token0": self.token0,
            "token1": self.token1,
            "fee": self.fee,
            "tick_spacing": self.tick_spacing,
            "sqrt_price_x96": str(self.sqrt_price_x96),
            "tick": self.tick,
            "liquidity": str(self.liquidity),
            "bitmap_complete": self.bitmap_complete,
            "words": {str(index): str(word) for index, word in sorted(self.words.items())},
            "ticks": {
                str(tick): {"liquidity_gross": str(gross), "liquidity_net": str(net)}
                for tick, (gross, net) in sorted(self.ticks.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> V3Pool:
        """A pool from its snapshot object; :class:`ValueError` in one line for anything else."""
        try:
            if data["kind"] != SNAPSHOT_KIND:
                raise ValueError(f"kind is {data['kind']!r}, not {SNAPSHOT_KIND!r}")
            pool = cls(
                address=str(data["address"]).lower(),
                token0=str(data["token0"]).lower(),
                token1=str(data["token1"]).lower(),
                fee=int(data["fee"]),
                tick_spacing=int(data["tick_spacing"]),
                sqrt_price_x96=int(data["sqrt_price_x96"]),
                tick=int(data["tick"]),
                liquidity=int(data["liquidity"]),
                words={int(index): int(word) for index, word in data["words"].items()},
                ticks={
                    int(tick): (int(info["liquidity_gross"]), int(info["liquidity_net"]))
                    for tick, info in data["ticks"].items()
                },
                bitmap_complete=bool(data["bitmap_complete"]),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a V3 pool snapshot: {type(error).__name__} {error}") from None
        except ValueError as error:
            raise ValueError(f"not a V3 pool snapshot: {error}") from None
        try:
            pool.check()
        except ValueError as error:
            raise ValueError(f"not a V3 pool snapshot: {error}") from None
        return pool
