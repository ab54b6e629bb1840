"""Cyclic arbitrage over pools of any kind: the best input for a cycle, and the best cycle.

Pools are :class:`~simulation.pools.PoolState` values. A cycle whose pools are all constant
product (V2: :meth:`~simulation.pools.PoolState.constant_product`) takes the closed form below;
any other mix takes an exact integer search on its profit curve (:func:`search_path_input`).

**Where the optimum is.** A path of V2 pools composes into one curve ``out(x) = c·x / (d + e·x)``
(pool ``i`` is ``c = fee_i·R_out``, ``d = 10000·R_in``, ``e = fee_i``; composing two curves gives
``c = c1·c2``, ``d = d1·d2``, ``e = d2·e1 + c1·e2``, all integers), so the real profit
``P(x) = out(x) − x`` peaks at ``x* = (√(c·d) − d) / e`` with value ``(√c − √d)² / e``, and an
arbitrage exists iff ``c > d``. For two pools with one fee γ this is the textbook
``x* = (γ·√(Ra_in·Ra_out·Rb_in·Rb_out) − Ra_in·Rb_in) / (γ·Rb_in + γ²·Ra_out)``.

**Exact integers.** The executed trade floors at every hop, so the integer profit ``p(x)`` is at
most ``P(x)`` and its curve is flat and jagged near ``x*``. After evaluating ``p`` at ``x*``, every
input that could beat the best value ``m`` found satisfies ``P(x) ≥ m + 1`` — an interval, the
roots of a quadratic; when it is empty, ``m`` is the exact maximum (the usual case when every
token on the path has fine units). Otherwise the interval is searched in whichever amount along
the path (input, an intermediate, or output) spans the fewest integers there: for an amount ``y``
after hop ``k``, the cheapest way to reach it is the minimal input through hops ``< k`` and its
value is the output of hops ``≥ k``, so scanning every ``y`` covers every ``x``. The scan goes
outward from the image of ``x*``, and each better ``m`` shrinks the interval. If it is exhausted
within ``scan_limit`` (default :data:`SCAN_LIMIT`) evaluations the result is the exact integer
maximum; if not — a coarse token (few decimals, shallow pool) in the middle of the path makes
the flat region wide — the result can be short of it by what flooring costs: less than one unit
of each intermediate token, valued at the rest of the path (a few wei with 18-decimal tokens).

**Cycles.** :func:`find_cycles` lists every simple cycle of 2..``max_hops`` pools that starts and
ends at a start token. A cycle and its reverse are different trades (buy on A and sell on B, or
the other way round) and both are listed; so are rotations that start at different start tokens,
since they borrow and earn a different asset. :class:`CycleIndex` maps each pool (and each pool
and side) to the cycles through it, so "a pending swap moved pool P" costs one dict lookup.

:func:`best_opportunity` drops cycles with ``c <= d`` (no input profits), bounds the rest by
``(c − d)² / (4·d·e)`` (at least the real maximum), and refines them best bound first, stopping
when no remaining bound can beat the best exact profit found.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from math import isqrt

from simulation.amm import (
    FEE_DENOMINATOR,
    InsufficientLiquidityError,
    check_pool_arguments,
    get_amount_out,
    min_amount_in,
)
from simulation.pools import Hop, PoolState, StateMissing

SCAN_LIMIT = 64
"""Most amounts one refinement evaluates (each costs one pass along the path, ~1 µs a hop)."""
SEARCH_BUDGET = 2
"""Most cycles without a closed form searched in one call, widest marginal gap first."""
SEARCH_SCAN_LIMIT = 32
"""Most inputs the exact search scans each side of its estimate (:func:`search_path_input`)."""


@dataclass(frozen=True, slots=True)
class Cycle:
    """A closed trade path: sell ``tokens[i]`` into ``pools[i]``; the last hop buys ``tokens[0]``.

    ``zero_for_one[i]`` says whether hop ``i`` sells the pool's token0, so the hot path picks
    reserves without comparing token addresses. Build one with :meth:`through` or
    :func:`find_cycles`.
    """

    tokens: tuple[str, ...]
    pools: tuple[str, ...]
    zero_for_one: tuple[bool, ...]
    legs: tuple[tuple[str, bool], ...] = field(init=False, repr=False, compare=False)
    """``(pool address, zero_for_one)`` per hop: the key a search caches a pool's terms under."""

    def __post_init__(self) -> None:
        if not len(self.tokens) == len(self.pools) == len(self.zero_for_one) >= 2:
            raise ValueError("a cycle needs >= 2 hops and one token and direction per pool")
        object.__setattr__(self, "legs", tuple(zip(self.pools, self.zero_for_one, strict=True)))

    @property
    def start_token(self) -> str:
        """The token borrowed at the start and earned at the end."""
        return self.tokens[0]

    @classmethod
    def through(cls, pools: Sequence[PoolState], start_token: str) -> Cycle:
        """The cycle that sells ``start_token`` into ``pools[0]`` and follows ``pools`` in order."""
        tokens: list[str] = []
        token = start_token
        for pool in pools:
            tokens.append(token)
            token = pool.token_out(token)
        if token != start_token:
            raise ValueError(f"pools do not lead back to {start_token}")
        return cls(
            tokens=tuple(tokens),
            pools=tuple(pool.address for pool in pools),
            zero_for_one=tuple(t == p.token0 for t, p in zip(tokens, pools, strict=True)),
        )

    def steps(self, pools: Mapping[str, PoolState]) -> list[Callable[[int], int]]:
        """Each hop's output as a function of its input, pools read by address."""
        return [
            partial(pools[address].amount_out, token_in)
            for address, token_in in zip(self.pools, self.tokens, strict=True)
        ]

    def amounts(self, pools: Mapping[str, PoolState], amount_in: int) -> list[int]:
        """``amount_in`` and what comes out of each hop after it, pools read by address."""
        amounts = [amount_in]
        for address, token_in in zip(self.pools, self.tokens, strict=True):
            amount_in = pools[address].amount_out(token_in, amount_in)
            amounts.append(amount_in)
        return amounts


@dataclass(frozen=True, slots=True)
class Opportunity:
    """The best trade found around one cycle; ``amounts[i]`` enters hop ``i``, the last is out."""

    cycle: Cycle
    amount_in: int
    amount_out: int
    profit: int
    amounts: tuple[int, ...]


def _path_amounts(amount_in: int, hops: Sequence[Hop]) -> list[int]:
    amounts = [amount_in]
    for reserve_in, reserve_out, fee_bps in hops:
        amount_in = get_amount_out(amount_in, reserve_in, reserve_out, fee_bps)
        amounts.append(amount_in)
    return amounts


def _path_out(amount_in: int, hops: Sequence[Hop]) -> int:
    for reserve_in, reserve_out, fee_bps in hops:
        amount_in = get_amount_out(amount_in, reserve_in, reserve_out, fee_bps)
    return amount_in


def _path_min_in(amount_out: int, hops: Sequence[Hop]) -> int | None:
    """The smallest input reaching at least ``amount_out`` through ``hops``; None if none does."""
    try:
        for reserve_in, reserve_out, fee_bps in reversed(hops):
            amount_out = min_amount_in(amount_out, reserve_in, reserve_out, fee_bps)
    except InsufficientLiquidityError:
        return None
    return amount_out


_Term = tuple[int, int, int]
"""One hop's real curve ``c·x / (d + e·x)``: ``(fee·reserve_out, 10000·reserve_in, fee)``."""


def _term(hop: Hop) -> _Term:
    reserve_in, reserve_out, fee_bps = hop
    fee_numerator = FEE_DENOMINATOR - fee_bps
    return fee_numerator * reserve_out, FEE_DENOMINATOR * reserve_in, fee_numerator


def _fold(terms: Iterable[_Term]) -> _Term:
    """The curve ``(c, d, e)`` of the hops one after another."""
    c, d, e = 1, 1, 0
    for hop_c, hop_d, hop_e in terms:
        c, d, e = c * hop_c, d * hop_d, hop_d * e + c * hop_e
    return c, d, e


def _profit_bound(c: int, d: int, e: int) -> int:
    """An upper bound on the integer profit of any input, for ``c > d > 0``.

    The real maximum ``(√c − √d)² / e = (c − d)² / (e·(√c + √d)²)`` is at most
    ``(c − d)² / (4·d·e)`` (as ``√c > √d``): no square roots, and tight for the small price
    gaps a single pending swap opens.
    """
    return (c - d) ** 2 // (4 * d * e)


def _input_interval(c: int, d: int, e: int, target: int) -> tuple[int, int] | None:
    """Integers ``[lo, hi]`` containing every ``x >= 1`` with real profit ``P(x) >= target``.

    ``P(x) >= T`` ⇔ ``e·x² − (c − d − e·T)·x + T·d <= 0``; the roots are widened by one so
    that the integer square root's flooring cannot drop a solution.
    """
    linear = c - d - e * target
    discriminant = linear * linear - 4 * e * target * d
    if linear <= 0 or discriminant < 0:
        return None
    root = isqrt(discriminant) + 1
    return max(1, (linear - root) // (2 * e)), (linear + root) // (2 * e) + 1


def _search_span(
    hops: Sequence[Hop], position: int, c: int, d: int, e: int, target: int
) -> tuple[int, int] | None:
    """The amounts after hop ``position`` that an input with real profit >= ``target`` reaches."""
    interval = _input_interval(c, d, e, target)
    if interval is None:
        return None
    before = hops[:position]
    return _path_out(interval[0], before), _path_out(interval[1], before)


def _refine(hops: Sequence[Hop], c: int, d: int, e: int, scan_limit: int) -> tuple[int, int]:
    """``(amount_in, profit)`` maximising the exact integer profit; ``(0, 0)`` if none is > 0.

    Scans outward from the real optimum in the narrowest amount along the path; each better
    profit shrinks the span that could still hold a better one, and the search is exact once that
    span is exhausted (or empty) within ``scan_limit`` evaluations.
    """
    estimate = (isqrt(c * d) - d) // e
    best_in, best_profit = 0, 0
    for amount_in in (estimate, estimate + 1):
        profit = _path_out(amount_in, hops) - amount_in
        if profit > best_profit:
            best_in, best_profit = amount_in, profit
    interval = _input_interval(c, d, e, best_profit + 1)
    if interval is None:
        return best_in, best_profit
    lows, highs = _path_amounts(interval[0], hops), _path_amounts(interval[1], hops)
    position = min(range(len(lows)), key=lambda index: highs[index] - lows[index])
    first, last = lows[position], highs[position]
    before, after = hops[:position], hops[position:]
    centre = min(max(_path_out(estimate, before), first), last)
    down, up = centre, centre + 1
    for _ in range(scan_limit):
        # Alternate sides, nearest to the real optimum first, within the span still possible.
        if down >= first and (up > last or centre - down <= up - centre):
            amount, down = down, down - 1
        elif up <= last:
            amount, up = up, up + 1
        else:
            break
        amount_in = _path_min_in(amount, before)
        if amount_in is None:
            continue
        profit = _path_out(amount, after) - amount_in
        if profit > best_profit:
            best_in, best_profit = amount_in, profit
            span = _search_span(hops, position, c, d, e, best_profit + 1)
            if span is None:
                break
            first, last = span
    # The cheapest input for the best amount may reach past it; report what it really yields.
    return best_in, _path_out(best_in, hops) - best_in


def best_path_input(hops: Sequence[Hop], scan_limit: int = SCAN_LIMIT) -> tuple[int, int]:
    """``(amount_in, profit)`` for the most profitable input along a closed path of hops.

    ``(0, 0)`` when no input makes a profit; :class:`ValueError` for a negative reserve or a fee
    outside ``[0, 10000)``.
    """
    for hop in hops:
        check_pool_arguments(*hop)
    c, d, e = _fold(map(_term, hops))
    if c <= d or d == 0:  # d == 0: an empty pool on the path pays nothing out
        return 0, 0
    return _refine(hops, c, d, e, scan_limit)


def optimal_two_pool(ra_in: int, ra_out: int, rb_in: int, rb_out: int, fee_bps: int = 30) -> int:
    """Best input for: sell X into pool A ``(ra_in X, ra_out Y)``, sell the Y into pool B
    ``(rb_in Y, rb_out X)``. 0 when no input makes a profit."""
    return best_path_input([(ra_in, ra_out, fee_bps), (rb_in, rb_out, fee_bps)])[0]


def search_path_input(
    steps: Sequence[Callable[[int], int]], gain: float, scan_limit: int = SEARCH_SCAN_LIMIT
) -> tuple[int, int]:
    """``(amount_in, profit)`` maximising ``out(x) - x`` along a path with no closed form.

    ``steps`` are the hops' exact integer outputs, each nondecreasing in its input and concave
    up to flooring (as every AMM curve is); a step that cannot price an amount (the local state
    lacks what it needs: :class:`~simulation.pools.StateMissing`) caps the search below it.
    ``gain`` is the product of the hops' marginal rates (:meth:`PoolState.rate`): at most 1, no
    input profits.

    **Where to look.** A constant-product path ``out(x) = g·x / (1 + k·x)`` (a V3 pool within
    its current tick range is one, on its virtual reserves) peaks where ``out(x)/x = √g``, and
    ``out(x)/x`` falls as ``x`` grows on any concave path. A bisection on the input's bit
    length finds that ratio within a factor of two (an amount whose floors could move the ratio
    by a fair part of ``√g − 1`` counts as too small to tell), the constant-product fit
    ``k = (g·x/out(x) − 1)/x`` moves the estimate to ``(√g − 1)/k`` (exact within one tick
    range), a bracket is widened around it until the profit falls on both sides (ticks crossed
    change the curve) and a golden-section search narrows it to a part in 2**12 of the input
    (to single units for small inputs). Every input is quoted once.

    **Exactness.** Flooring makes the integer profit ``p`` jagged below the real, concave curve
    ``P``: ``P - E <= p <= P``, where ``E`` is what the floors can lose (one unit of each hop's
    output, valued at the rest of the path, measured at the estimate). Every input that beats
    the best profit ``m`` found has ``P >= m``, an interval around the estimate on which
    ``p >= m - E``; a scan outward from it, in each direction until ``p`` falls below ``m - E``,
    sees every such input, and the result is the exact integer maximum. A side whose input
    ``scan_limit`` away still has ``p >= m - E`` cannot be exhausted within ``scan_limit``
    inputs and is not scanned: with fine units (18-decimal tokens) that flat region spans
    billions of inputs whose profits differ by a few units at most, and the result is then
    short of the maximum by at most ``E`` plus the bracket's quadratic error: a few wei when
    every token on the path has fine units; through a coarse one ``E`` is one unit of it
    valued in the start token (on the devnet's cycles through USDC the result was 1e8 wei
    short of the maximum, through WBTC up to 5e10 wei: fractions of a cent).
    ``(0, 0)`` when no input makes a profit.
    """
    if not gain > 1.0:
        return 0, 0
    profits: dict[int, int] = {}

    def output(amount: int, first: int = 0) -> int:
        try:
            for step in steps[first:]:
                amount = step(amount)
        except (StateMissing, ArithmeticError):  # unpriceable here, or past what a pool takes
            return -1
        return amount

    def profit(amount: int) -> int:
        known = profits.get(amount)
        if known is None:
            known = profits[amount] = output(amount) - amount if amount > 0 else -1
        return known

    target = gain**0.5
    # Floors at most cost this share of the output before out(x)/x says which side x is on.
    tolerance = (1.0 - 1.0 / target) / 8

    def ratio(amount: int) -> float | None:
        """``out(x)/x``; None where the floors could hide which side of ``√g`` it is."""
        noise, value = 0.0, amount
        try:
            for step in steps:
                value = step(value)
                if value <= 0:
                    return None
                noise += 1.0 / value
        except (StateMissing, ArithmeticError):
            return 0.0
        profits[amount] = value - amount
        return None if noise > tolerance else value / amount

    def larger(bits: int) -> bool:
        """Whether the optimum is above ``2**bits`` (as far as its ratio tells)."""
        nonlocal fitted
        measured = ratio(1 << bits)
        if measured:
            fitted = 1 << bits
        return measured is None or measured >= target

    # Gallop from 2**64 (about the scale of 18-decimal amounts) in strides of 8 bits, then
    # bisect: amounts far past the optimum are the dear ones to quote (they cross every tick).
    fitted = 0
    if larger(64):
        low_bits = 64
        while low_bits < 248 and larger(low_bits + 8):
            low_bits += 8
        high_bits = low_bits + 8
    else:
        high_bits = 64
        while high_bits > 0 and not larger(high_bits - 8):
            high_bits -= 8
        low_bits = max(high_bits - 8, 0)
    while high_bits - low_bits > 1:
        bits = (low_bits + high_bits) // 2
        if larger(bits):
            low_bits = bits
        else:
            high_bits = bits
    estimate = 1 << high_bits if fitted == 0 else fitted
    for _ in range(3):
        measured = ratio(estimate)
        if not measured or measured >= gain:
            break
        moved = int(estimate * (target - 1.0) / (gain / measured - 1.0))
        moved = min(max(moved, 1 << max(low_bits - 1, 0)), 1 << (high_bits + 1))
        if abs(moved - estimate) <= estimate >> 16:
            break
        estimate = moved
    loss = _flooring_loss(steps, estimate, output)
    # Walk uphill from the estimate, doubling the stride, until the profit falls by more than
    # the floors can hide on both sides: the real curve's maximum is then inside the bracket.
    middle, stride = estimate, max(1, estimate >> 12)
    while stride < _MAX_AMOUNT:
        here, left, right = profit(middle), profit(middle - stride), profit(middle + stride)
        if right > here or left > here:
            middle += stride if right >= left else -stride
        elif max(left, right) + loss < here or (middle <= stride and right < here):
            break  # (or the bracket already reaches down to the smallest input)
        stride *= 2
    low, high = max(1, middle - stride), middle + stride
    # Golden section on the integers of the bracket.
    inner = high - round((high - low) * _GOLDEN)
    outer = low + round((high - low) * _GOLDEN)
    while high - low > max(3, high >> 12):
        if profit(inner) >= profit(outer):
            high, outer = outer, inner
            inner = high - round((high - low) * _GOLDEN)
        else:
            low, inner = inner, outer
            outer = low + round((high - low) * _GOLDEN)
        if inner >= outer:
            break
    best_in = max(profits, key=lambda amount: (profits[amount], -amount))
    best_profit = profits[best_in]
    centre = best_in
    for direction in (-1, 1):
        end = centre + direction * scan_limit
        if end >= 1 and profit(end) >= best_profit - loss:
            continue  # flat: the scan could not reach the side's end within scan_limit
        amount = centre + direction
        for _ in range(scan_limit):
            if amount < 1:
                break
            found = profit(amount)
            if found > best_profit:
                best_in, best_profit = amount, found
            elif found < best_profit - loss:
                break
            amount += direction
    # (The scan runs from an unprofitable best too: the floors can hide a profit of ``loss``.)
    return (best_in, best_profit) if best_profit > 0 else (0, 0)


def _flooring_loss(
    steps: Sequence[Callable[[int], int]], amount: int, output: Callable[[int, int], int]
) -> int:
    """What the floors along the path can cost around ``amount``: one unit of each hop's
    output, valued at the rest of the path, plus one for the input's own unit."""
    amounts = [amount]
    try:
        for step in steps:
            amounts.append(step(amounts[-1]))
    except (StateMissing, ArithmeticError):
        return 1
    return 1 + sum(
        max(output(amounts[k] + 1, k) - amounts[-1], 0) + 1 for k in range(1, len(steps))
    )


_MAX_AMOUNT = 1 << 256
"""No token amount reaches this (balances are uint256)."""
_GOLDEN = (5**0.5 - 1) / 2
"""The golden section's inner fraction: each step keeps one of the two inner points."""


class SearchMemo:
    """Exact-search results by cycle, reused while every pool of the cycle is the very same
    state value (pool states are immutable: a pool that moved is a new value). A strategy that
    keeps one searches a cycle once per state of its pools, however often it looks at it.
    At most ``size`` cycles are kept (all are forgotten when it fills)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.hits = 0
        self._results: dict[Cycle, tuple[tuple[PoolState, ...], tuple[int, int]]] = {}

    def search(self, cycle: Cycle, pools: Mapping[str, PoolState], gain: float) -> tuple[int, int]:
        """:func:`search_path_input` over ``cycle`` on ``pools`` (``gain``: its rates
        multiplied): ``(amount_in, profit)``."""
        states = tuple(pools[address] for address in cycle.pools)
        known = self._results.get(cycle)
        if known is not None and all(a is b for a, b in zip(known[0], states, strict=True)):
            self.hits += 1
            return known[1]
        result = search_path_input(cycle.steps(pools), gain)
        if len(self._results) >= self.size:
            self._results.clear()
        self._results[cycle] = (states, result)
        return result


def best_cycle_input(cycle: Cycle, pools: Mapping[str, PoolState]) -> tuple[int, int, int]:
    """``(amount_in, amount_out, profit)`` of the best trade around ``cycle``; zeros if none."""
    opportunity = best_opportunity([cycle], pools)
    if opportunity is None:
        return 0, 0, 0
    return opportunity.amount_in, opportunity.amount_out, opportunity.profit


def _best_bound_first(candidate: tuple[int, int, Cycle, list[Hop], _Term]) -> tuple[int, int]:
    return -candidate[0], candidate[1]


def _rate_product(
    cycle: Cycle, fetched: dict[str, PoolState], pools: Mapping[str, PoolState]
) -> float:
    """The cycle's marginal rates multiplied: at most 1, no input profits (every curve is
    concave); the larger, the wider the gap."""
    product = 1.0
    for address, token_in in zip(cycle.pools, cycle.tokens, strict=True):
        pool = fetched.get(address)
        if pool is None:
            pool = fetched[address] = pools[address]
        product *= pool.rate(token_in)
    return product


def best_opportunity(
    cycles: Iterable[Cycle],
    pools: Mapping[str, PoolState],
    min_profit: int = 0,
    search_budget: int = SEARCH_BUDGET,
    memo: SearchMemo | None = None,
) -> Opportunity | None:
    """The most profitable trade over ``cycles`` with profit > ``min_profit``, or None.

    ``pools`` maps address to pool state (e.g. the state after a pending swap, layered over the
    current state with a ``ChainMap``); every pool of every cycle must be in it.
    Profits are in each cycle's start token: pass cycles of one start token, or convert.
    At most ``search_budget`` cycles without a closed form get the exact search (through
    ``memo`` when given).
    """
    candidates: list[tuple[int, int, Cycle, list[Hop], _Term]] = []
    searched: list[tuple[float, int, Cycle]] = []
    # Cycles found through one moved pool all share it; a local dict makes repeats cheap when
    # ``pools`` is a ChainMap, whose lookups run as Python code (~0.4 µs each).
    fetched: dict[str, PoolState] = {}
    for order, cycle in enumerate(cycles):
        # The hot loop, so _fold is inlined; most cycles then fail c > d and are dropped.
        hops: list[Hop] = []
        c, d, e = 1, 1, 0
        for address, zero_for_one in cycle.legs:
            pool = fetched.get(address)
            if pool is None:
                pool = fetched[address] = pools[address]
            hop = pool.constant_product(zero_for_one)
            if hop is None:
                # Its marginal rates only rank cycles for the search: none when it has no budget.
                if search_budget:
                    gap = _rate_product(cycle, fetched, pools)
                    if gap > 1.0:
                        searched.append((gap, order, cycle))
                break
            reserve_in, reserve_out, fee_bps = hop
            hops.append(hop)
            fee_numerator = FEE_DENOMINATOR - fee_bps
            hop_d = FEE_DENOMINATOR * reserve_in
            c, d, e = c * fee_numerator * reserve_out, d * hop_d, hop_d * e + c * fee_numerator
        else:
            if c <= d or d == 0:  # d == 0: an empty pool on the path pays nothing out
                continue
            bound = _profit_bound(c, d, e)
            if bound > min_profit:
                candidates.append((bound, order, cycle, hops, (c, d, e)))
    candidates.sort(key=_best_bound_first)
    best: tuple[Cycle, int] | None = None
    best_profit = min_profit
    for bound, _, cycle, hops, curve in candidates:
        if bound <= best_profit:
            break
        amount_in, profit = _refine(hops, *curve, SCAN_LIMIT)
        if profit > best_profit:
            best, best_profit = (cycle, amount_in), profit
    # The exact search costs ~25 path quotes a cycle: only the widest gaps get one.
    for gain, _, cycle in sorted(searched, key=lambda item: (-item[0], item[1]))[:search_budget]:
        if memo is None:
            amount_in, profit = search_path_input(cycle.steps(fetched), gain)
        else:
            amount_in, profit = memo.search(cycle, fetched, gain)
        if profit > best_profit:
            best, best_profit = (cycle, amount_in), profit
    if best is None:
        return None
    cycle, amount_in = best
    amounts = tuple(cycle.amounts(fetched, amount_in))
    return Opportunity(cycle, amount_in, amounts[-1], amounts[-1] - amount_in, amounts)


def find_cycles(
    pools: Iterable[PoolState], start_tokens: Iterable[str], max_hops: int = 3
) -> list[Cycle]:
    """Every simple cycle of 2..``max_hops`` distinct pools from a start token back to it.

    Intermediate tokens are distinct and differ from the start token. Order is deterministic:
    by start token as given, then depth-first in pool order.
    """
    if max_hops < 2:
        raise ValueError(f"max_hops must be >= 2, got {max_hops}")
    by_token: dict[str, list[PoolState]] = defaultdict(list)
    for pool in pools:
        by_token[pool.token0].append(pool)
        by_token[pool.token1].append(pool)
    cycles: list[Cycle] = []
    for start in dict.fromkeys(start_tokens):
        _extend_cycles(start, start, [], {start}, by_token, max_hops, cycles)
    return cycles


def _extend_cycles(
    start: str,
    token: str,
    path: list[PoolState],
    seen: set[str],
    by_token: Mapping[str, list[PoolState]],
    max_hops: int,
    found: list[Cycle],
) -> None:
    """Depth-first from ``token``, where ``path`` (from ``start``) has arrived: close or go on."""
    for pool in by_token.get(token, ()):
        if path and pool.address == path[-1].address:
            continue
        next_token = pool.token_out(token)
        if next_token == start:
            found.append(Cycle.through([*path, pool], start))
        elif next_token not in seen and len(path) + 2 <= max_hops:
            path.append(pool)
            seen.add(next_token)
            _extend_cycles(start, next_token, path, seen, by_token, max_hops, found)
            seen.discard(next_token)
            path.pop()


@dataclass(frozen=True, slots=True)
class CycleIndex:
    """Cycles built once from a pool graph, indexed by the pools they trade through.

    A pending swap that sells token X into pool P makes X cheaper in P: only cycles that sell
    the *other* token into P gained from it, so ``cycles_touching(P, token_in=other)`` is the
    half worth searching (the rest were no better before the swap and are worse after it).
    """

    cycles: tuple[Cycle, ...]
    by_leg: Mapping[tuple[str, str], tuple[Cycle, ...]] = field(repr=False)
    by_pool: Mapping[str, tuple[Cycle, ...]] = field(repr=False)

    @classmethod
    def build(
        cls, pools: Iterable[PoolState], start_tokens: Iterable[str], max_hops: int = 3
    ) -> CycleIndex:
        """Enumerate the cycles (see :func:`find_cycles`) and index them by pool address."""
        cycles = find_cycles(pools, start_tokens, max_hops)
        by_leg: dict[tuple[str, str], list[Cycle]] = defaultdict(list)
        by_pool: dict[str, list[Cycle]] = defaultdict(list)
        for cycle in cycles:
            for address, token_in in zip(cycle.pools, cycle.tokens, strict=True):
                by_leg[address, token_in].append(cycle)
                by_pool[address].append(cycle)
        return cls(
            tuple(cycles),
            {leg: tuple(found) for leg, found in by_leg.items()},
            {address: tuple(found) for address, found in by_pool.items()},
        )

    def cycles_touching(self, pool_address: str, token_in: str | None = None) -> tuple[Cycle, ...]:
        """The cycles through ``pool_address`` (only those selling ``token_in`` into it, if
        given), in :attr:`cycles` order; empty if none."""
        if token_in is None:
            return self.by_pool.get(pool_address, ())
        return self.by_leg.get((pool_address, token_in), ())
