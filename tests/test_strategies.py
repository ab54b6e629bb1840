"""Strategies: backrun arbitrage and oracle-update liquidation backruns, exact to the wei.

Synthetic states check sizing and profit against brute force over the integer math; the devnet
tests send the victim tx, then our Executor call right after it, mine one block and compare the
executor's balance change with the candidate's expected profit.
"""

from __future__ import annotations

from dataclasses import dataclass

from devnet_txs import transmit
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from anvil import artifacts
from anvil.traffic import Traffic
from anvil.world import World
from chain.abi import load_artifact
from chain.ocr import transmit_answer
from chain.rpc import connect
from chain.topics import PAIR_CREATED, SYNC
from chain.types import BlockHeader, Log, PendingTx
from simulation.aave_v3 import (
    RAY,
    AavePosition,
    ReserveState,
    health_factor,
    liquidation,
    max_liquidatable_debt,
    percent_mul,
    ray_mul,
)
from simulation.actions import HopArbitrageAction, LiquidationAction
from simulation.amm import Pool, get_amount_out
from simulation.candidates import Candidate
from simulation.liquidation import PositionIndex, find_liquidations
from simulation.loader import load_feeds, load_lending, load_pools
from simulation.state import ChainState, FeedAnswer, FeedLink, StateChanges
from simulation.uniswap_v2 import UNISWAP_V2
from strategies.backrun import BackrunArbitrage
from strategies.base import BlockContext, PendingContext
from strategies.liquidation import LiquidationBackrun
from watcher.decode import Decoder, RouterKind

ROUTER_ABI = artifacts.load("UniswapV2Router02").abi
SWAP = ROUTER_ABI.function("swapExactTokensForTokens")
EXECUTOR = load_artifact("Executor").abi
ERC20_BALANCE = load_artifact("ERC20Token").abi.function("balanceOf")

WETH, TKN, DAI, USDC, WBTC = ("0x" + c * 20 for c in ("ee", "11", "da", "cc", "bb"))
FACTORY_A, FACTORY_B, FACTORY_C = "0x" + "fa" * 20, "0x" + "fb" * 20, "0x" + "fc" * 20
ROUTER_A, ROUTER_B = "0x" + "0a" * 20, "0x" + "0b" * 20
UNTRACKED_ROUTER = "0x" + "0c" * 20
TRADER = "0x" + "77" * 20
LENDING_POOL = "0x" + "1e" * 20
FEED_WETH, FEED_USDC, FEED_WBTC = "0x" + "f1" * 20, "0x" + "f2" * 20, "0x" + "f3" * 20
# Each feed proxy's aggregator: where oracles transmit.
AGGREGATOR_OF = {feed: "0x" + "a" + feed[3:] for feed in (FEED_WETH, FEED_USDC, FEED_WBTC)}
DECODER = Decoder(
    {r: RouterKind.UNISWAP_V2_ROUTER for r in (ROUTER_A, ROUTER_B, UNTRACKED_ROUTER)},
    feeds=tuple(AGGREGATOR_OF.values()),
)
WAD = 10**18


def _address(n: int) -> str:
    return "0x" + f"{n:040x}"


def _pending(to: str, calldata: bytes, nonce: int = 0, raw: bool = True) -> PendingTx:
    digest = keccak(to.encode() + calldata + nonce.to_bytes(8, "big"))
    return PendingTx(
        hash="0x" + digest.hex(),
        sender=TRADER,
        to=to,
        value=0,
        input=calldata,
        nonce=nonce,
        gas=250_000,
        raw=b"\x02" + calldata if raw else None,
        received_at=123,
    )


def _context(state: ChainState, tx: PendingTx) -> PendingContext:
    intent = DECODER.decode(tx.to, tx.input, tx.value)
    return PendingContext(tx, state.after(intent), state.block_number + 1)


def _swap_tx(router: str, token_in: str, token_out: str, amount_in: int, **kw: bool) -> PendingTx:
    return _pending(router, SWAP.encode(amount_in, 0, [token_in, token_out], TRADER, 2**40), **kw)


# ---------------------------------------------------------------- synthetic AMM states


def _two_dex_state(weth_reserve: int, tkn_reserve: int) -> tuple[ChainState, Pool, Pool]:
    """WETH/TKN on two DEXes at the same price."""
    state = ChainState(
        routers={ROUTER_A: {"uniswap-v2": FACTORY_A}, ROUTER_B: {"uniswap-v2": FACTORY_B}}
    )
    pool_a = Pool(_address(0xA1), WETH, TKN, weth_reserve, tkn_reserve)
    pool_b = Pool(_address(0xB1), WETH, TKN, weth_reserve, tkn_reserve)
    state.add_pool(FACTORY_A, pool_a)
    state.add_pool(FACTORY_B, pool_b)
    return state, pool_a, pool_b


def _brute_force_best(pools: list[Pool]) -> int:
    """The best WETH profit over every input of every WETH cycle through the two pools."""
    best = 0
    for first, second in ((pools[0], pools[1]), (pools[1], pools[0])):
        reserve_in, reserve_out = first.reserves_for(WETH)
        back_in, back_out = second.reserves_for(TKN)
        for amount in range(1, reserve_in + 1):
            mid = get_amount_out(amount, reserve_in, reserve_out)
            best = max(best, get_amount_out(mid, back_in, back_out) - amount)
    return best


def _cycle_profit(action: HopArbitrageAction, pools: dict[str, Pool]) -> int:
    amount, token = action.amount_in, action.token_in
    for address in action.pools:
        amount, token = pools[address].amount_out(token, amount), pools[address].token_out(token)
    assert token == action.token_in
    return amount - action.amount_in


def test_a_pending_swap_that_moves_a_pool_gives_one_backrun_with_the_exact_best_profit():
    state, pool_a, pool_b = _two_dex_state(100_000, 200_000)
    strategy = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    tx = _swap_tx(ROUTER_A, TKN, WETH, 30_000)
    context = _context(state, tx)

    candidates = strategy.on_pending(context, state)

    assert len(candidates) == 1
    candidate = candidates[0]
    after = dict(state.pools_after(context.effect))
    assert candidate.expected_profit == _brute_force_best([after[pool_a.address], pool_b])
    assert candidate.expected_profit == _cycle_profit(candidate.action, after) > 0
    assert candidate.expected_profit_wei == candidate.expected_profit
    assert candidate.profit_token == WETH and candidate.action.token_in == WETH
    # TKN is cheap on A after the swap: buy it there, sell it on B.
    assert candidate.action.pools == (pool_a.address, pool_b.address)
    assert candidate.key == f"backrun:{context.target_block}:{tx.hash}"
    assert candidate.target_block == state.block_number + 1 and candidate.detected_at == 123


def test_a_candidate_only_backruns_its_trigger():
    state, _, _ = _two_dex_state(100_000, 200_000)
    strategy = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    assert strategy.on_block(_block_context(state, frozenset(state.pools)), state) == []
    tx = _swap_tx(ROUTER_B, WETH, TKN, 25_000)

    (candidate,) = strategy.on_pending(_context(state, tx), state)

    assert candidate.backrun == (tx,) and candidate.trigger_hash == tx.hash
    # The profit exists only once the trigger has traded: ours must come after it.
    assert _cycle_profit(candidate.action, dict(state.pools)) < 0


def test_a_tiny_swap_or_an_untracked_router_gives_nothing():
    state, _, _ = _two_dex_state(10**21, 2 * 10**21)
    strategy = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    tiny = _context(state, _swap_tx(ROUTER_A, TKN, WETH, 10**18))  # 0.05%: inside the fees
    assert tiny.effect.pools and strategy.on_pending(tiny, state) == []
    untracked = _context(state, _swap_tx(UNTRACKED_ROUTER, TKN, WETH, 10**20))
    assert untracked.effect.empty and strategy.on_pending(untracked, state) == []
    assert strategy.stats.triggers == 1


def test_a_trigger_without_its_signed_envelope_is_skipped_and_counted():
    state, _, _ = _two_dex_state(100_000, 200_000)
    strategy = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    context = _context(state, _swap_tx(ROUTER_A, TKN, WETH, 30_000, raw=False))
    assert strategy.on_pending(context, state) == []
    assert strategy.stats.skipped_no_raw == 1


def test_the_minimum_profit_and_the_inventory_cap_hold_exactly():
    state, _, _ = _two_dex_state(100_000, 200_000)
    tx = _swap_tx(ROUTER_A, TKN, WETH, 30_000)
    context = _context(state, tx)
    (free,) = BackrunArbitrage.for_state("a", state, start_token=WETH).on_pending(context, state)
    profit = free.expected_profit
    at_min = BackrunArbitrage.for_state(
        "b", state, start_token=WETH, min_expected_profit_wei=profit
    )
    assert [c.expected_profit for c in at_min.on_pending(context, state)] == [profit]
    above = BackrunArbitrage.for_state(
        "c", state, start_token=WETH, min_expected_profit_wei=profit + 1
    )
    assert above.on_pending(context, state) == []

    cap = free.action.amount_in // 3
    capped = BackrunArbitrage.for_state("d", state, start_token=WETH, max_amount_in=cap)
    (candidate,) = capped.on_pending(context, state)
    after = dict(state.pools_after(context.effect))
    assert candidate.action.amount_in == cap
    assert candidate.expected_profit == _cycle_profit(candidate.action, after) < profit


@settings(max_examples=25, deadline=None)
@given(
    weth_reserve=st.integers(1_000, 8_000),
    price=st.integers(1, 4),
    swap_share=st.integers(1, 60),
    sell_weth=st.booleans(),
)
def test_backrun_profit_equals_brute_force_for_any_swap(weth_reserve, price, swap_share, sell_weth):
    state, pool_a, pool_b = _two_dex_state(weth_reserve, weth_reserve * price)
    strategy = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    token_in, token_out = (WETH, TKN) if sell_weth else (TKN, WETH)
    amount = pool_a.reserves_for(token_in)[0] * swap_share // 100
    context = _context(state, _swap_tx(ROUTER_A, token_in, token_out, amount))
    after = dict(state.pools_after(context.effect))
    best = _brute_force_best([after[pool_a.address], pool_b])
    candidates = strategy.on_pending(context, state)
    assert [c.expected_profit for c in candidates] == ([best] if best > 0 else [])
    for candidate in candidates:
        assert _cycle_profit(candidate.action, after) == best


def _block_context(state: ChainState, pools: frozenset[str], new_pairs=()) -> BlockContext:
    header = BlockHeader(
        state.block_number, "0x" + "00" * 32, "0x" + "00" * 32, 0, 0, 0, 0, "0x" + "00" * 20, 9
    )
    return BlockContext(
        header, StateChanges(pools=pools, new_pairs=new_pairs), state.block_number + 1
    )


def _log(address: str, topics: tuple[bytes, ...], data: bytes, number: int) -> Log:
    return Log(address, topics, data, number, "0x" + f"{number:064x}", "0x" + "00" * 32, 0, 0)


def _word(value: int | str) -> bytes:
    return (int(value, 16) if isinstance(value, str) else value).to_bytes(32, "big")


def test_block_state_arbitrage_finds_disjoint_trades_and_new_pairs():
    state = ChainState(
        routers={ROUTER_A: {"uniswap-v2": FACTORY_A}, ROUTER_B: {"uniswap-v2": FACTORY_B}},
        factories={FACTORY_A: UNISWAP_V2, FACTORY_B: UNISWAP_V2},
    )
    state.add_pool(FACTORY_A, Pool(_address(0xA1), WETH, TKN, 10**21, 2 * 10**21))
    state.add_pool(FACTORY_B, Pool(_address(0xB1), WETH, TKN, 10**21, int(2.1 * 10**21)))
    state.add_pool(FACTORY_A, Pool(_address(0xA2), WETH, DAI, 10**21, 3 * 10**21))
    strategy = BackrunArbitrage.for_state("arb", state, start_token=WETH)

    (first,) = strategy.on_block(_block_context(state, frozenset()), state)
    assert first.backrun == () and first.trigger_hash is None
    assert first.key.startswith(f"arb:{state.block_number + 1}:")
    assert set(first.action.pools) == {_address(0xA1), _address(0xB1)}
    assert first.expected_profit == _cycle_profit(first.action, dict(state.pools)) > 0

    # A new WETH/DAI pair on the second DEX, priced 8% above the first: a second, disjoint trade.
    new_pair = _address(0xB2)
    token0, token1 = sorted((WETH, DAI))
    reserves = {WETH: 10**21, DAI: int(3.24 * 10**21)}
    logs = [
        _log(
            FACTORY_B, (PAIR_CREATED, _word(token0), _word(token1)), _word(new_pair) + _word(1), 7
        ),
        _log(new_pair, (SYNC,), _word(reserves[token0]) + _word(reserves[token1]), 7),
    ]
    changes = state.apply_block(7, "0x" + f"{7:064x}", logs)
    header = BlockHeader(7, "0x" + f"{7:064x}", "0x" + "00" * 32, 0, 0, 0, 0, "0x" + "00" * 20, 9)
    candidates = strategy.on_block(BlockContext(header, changes, 8), state)

    assert strategy.stats.cycle_rebuilds == 1
    assert [set(c.action.pools) for c in candidates] == [
        {_address(0xA2), new_pair},
        {_address(0xA1), _address(0xB1)},
    ]
    for candidate in candidates:
        assert candidate.expected_profit == _cycle_profit(candidate.action, dict(state.pools))
    assert candidates[0].expected_profit > candidates[1].expected_profit > 0


# ---------------------------------------------------------------- synthetic lending states


def _reserve(asset: str, reserve_id: int, decimals: int, ltv: int, threshold: int, bonus: int):
    """A reserve at index 1 (scaled = actual amounts) with a 10% liquidation protocol fee."""
    configuration = ltv | threshold << 16 | bonus << 32 | decimals << 48 | 1000 << 152
    return ReserveState(asset, reserve_id, configuration, RAY, 0, RAY, 0, 0)


RESERVES = {
    WETH: _reserve(WETH, 0, 18, 8000, 8250, 10500),
    USDC: _reserve(USDC, 1, 6, 8000, 8500, 10450),
    WBTC: _reserve(WBTC, 2, 8, 7000, 7500, 11000),
}
FLASH_PREMIUM_BPS = 9


def _position(collateral: dict[str, int], debt: dict[str, int]) -> AavePosition:
    """Collateral enabled and borrowing flagged for every asset with an amount."""
    bits = [2 * RESERVES[a].reserve_id + 1 for a, v in collateral.items() if v]
    bits += [2 * RESERVES[a].reserve_id for a, v in debt.items() if v]
    return AavePosition(collateral, debt, sum(1 << b for b in bits))


def _lending_state() -> tuple[ChainState, dict[str, str]]:
    """Borrowers at ETH=3000: one at HF ~1.035 (WETH/USDC), one at ~1.5, one on WBTC already
    under water (HF ~0.98); WETH/USDC pools on two DEXes, the second dearer for WETH."""
    state = ChainState(
        routers={ROUTER_A: {"uniswap-v2": FACTORY_A}, ROUTER_B: {"uniswap-v2": FACTORY_B}},
        feed_assets={FEED_WETH: WETH, FEED_USDC: USDC, FEED_WBTC: WBTC},
        lending_pool=LENDING_POOL,
    )
    for reserve in RESERVES.values():
        state.set_reserve(reserve)
    state.flash_loan_premium = FLASH_PREMIUM_BPS
    for feed, answer in (
        (FEED_WETH, 3000 * 10**8),
        (FEED_USDC, 10**8),
        (FEED_WBTC, 60_000 * 10**8),
    ):
        state.set_feed(FeedAnswer(feed, (1 << 64) | 1, answer, 1))
        state.link_aggregator(AGGREGATOR_OF[feed], FeedLink(feed, 1))
    users = {"edge": _address(0xE1), "safe": _address(0xE2), "btc": _address(0xE3)}
    state.set_position(users["edge"], _position({WETH: 10 * WAD}, {USDC: 23_913_043_478}))
    state.set_position(users["safe"], _position({WETH: 10 * WAD}, {USDC: 16_500_000_000}))
    state.set_position(users["btc"], _position({WBTC: 10**8}, {USDC: 46_000_000_000}))
    state.add_pool(FACTORY_A, Pool(_address(0xA1), WETH, USDC, 1000 * WAD, 3_000_000 * 10**6))
    state.add_pool(FACTORY_B, Pool(_address(0xB1), WETH, USDC, 500 * WAD, 1_520_000 * 10**6))
    # A WBTC/USDC pool on a factory with no tracked router: a venue only when asked for.
    state.add_pool(FACTORY_C, Pool(_address(0xC1), WBTC, USDC, 100 * 10**8, 6_000_000 * 10**6))
    return state, users


def _feed_update(feed: str, answer: int, raw: bool = True) -> PendingTx:
    """An oracle's pending transmit of ``answer`` to ``feed``'s aggregator."""
    return _pending(AGGREGATOR_OF[feed], transmit_answer(answer, bytes(16), 2), raw=raw)


def _expected_liquidation(
    state: ChainState, user: str, new_prices: dict[str, int], full_close: bool
) -> tuple[int, int, str]:
    """(debt_to_cover, profit in USDC units, best pool) by the Aave and AMM primitives: the
    close factor's share of the debt, flash-borrowed at the pool's premium."""
    position = state.positions[user]
    cover = position.scaled_debt[USDC] * (2 if full_close else 1) // 2
    amounts = liquidation(position, RESERVES, new_prices, 0, WETH, USDC, cover)
    outs = {
        a: p.amount_out(WETH, amounts.collateral_to_liquidator)
        for a, p in state.pools.items()
        if {p.token0, p.token1} == {WETH, USDC}
    }
    pool = max(outs, key=outs.__getitem__)
    premium = (amounts.debt_repaid * FLASH_PREMIUM_BPS + 5_000) // 10_000
    return amounts.debt_repaid, outs[pool] - amounts.debt_repaid - premium, pool


def test_a_pending_feed_update_that_breaks_a_position_gives_a_close_factor_liquidation():
    state, users = _lending_state()
    strategy = LiquidationBackrun("liq", weth=WETH)
    new_answer = 2880 * 10**8  # -4%: the 1.035 position falls under 1, the 1.5 one does not
    tx = _feed_update(FEED_WETH, new_answer)
    context = _context(state, tx)

    (candidate,) = strategy.on_pending(context, state)

    new_prices = {**state.prices, WETH: new_answer}
    assert health_factor(state.positions[users["edge"]], RESERVES, new_prices, 0) > 95 * 10**16
    cover, profit, pool = _expected_liquidation(state, users["edge"], new_prices, full_close=False)
    assert candidate.action == LiquidationAction(
        LENDING_POOL, WETH, USDC, users["edge"], cover, (pool,)
    )
    assert pool == _address(0xB1), "the dearer pool pays more for the seized WETH"
    assert candidate.expected_profit == profit > 0
    assert candidate.expected_profit_wei == profit * 10**8 * WAD // (new_answer * 10**6)
    assert candidate.profit_token == USDC
    assert candidate.backrun == (tx,) and candidate.trigger_hash == tx.hash
    assert candidate.key == f"liq:{context.target_block}:{users['edge']}:{tx.hash}"
    # Only the user a 4% move can push under 1 was re-checked: not the HF 1.5 one (a 4% move
    # leaves it above 1.44), nor the WBTC borrower (no WETH at all).
    assert strategy.stats.positions_checked == 1


def test_a_deep_drop_covers_the_whole_debt_of_every_broken_position():
    state, users = _lending_state()
    strategy = LiquidationBackrun("liq", weth=WETH)
    new_answer = 1800 * 10**8  # both WETH borrowers fall under HF 0.95
    candidates = strategy.on_pending(_context(state, _feed_update(FEED_WETH, new_answer)), state)

    new_prices = {**state.prices, WETH: new_answer}
    by_user = {c.action.user: c for c in candidates}
    assert set(by_user) == {users["edge"], users["safe"]}
    for user, candidate in by_user.items():
        cover, profit, pool = _expected_liquidation(state, user, new_prices, full_close=True)
        assert (candidate.action.debt_to_cover, candidate.expected_profit) == (cover, profit)
        assert candidate.action.swap_pairs == (pool,)
    assert [c.expected_profit_wei for c in candidates] == sorted(
        (c.expected_profit_wei for c in candidates), reverse=True
    )


def test_feed_updates_that_break_nobody_new_give_nothing():
    state, users = _lending_state()
    strategy = LiquidationBackrun("liq", weth=WETH)
    assert strategy.on_pending(_context(state, _feed_update(FEED_WETH, 2950 * 10**8)), state) == []
    assert strategy.on_pending(_context(state, _feed_update(FEED_WETH, 3100 * 10**8)), state) == []
    # The WBTC borrower is already under water (the keeper's job); a further drop is no trigger.
    assert health_factor(state.positions[users["btc"]], RESERVES, state.prices, 0) < WAD
    assert (
        strategy.on_pending(_context(state, _feed_update(FEED_WBTC, 50_000 * 10**8)), state) == []
    )
    no_raw = _context(state, _feed_update(FEED_WETH, 2880 * 10**8, raw=False))
    assert strategy.on_pending(no_raw, state) == [] and strategy.stats.skipped_no_raw == 1


def test_a_borrower_from_a_later_block_is_watched():
    state, _ = _lending_state()
    strategy = LiquidationBackrun("liq", weth=WETH)
    trigger = _context(state, _feed_update(FEED_WETH, 2880 * 10**8))
    assert len(strategy.on_pending(trigger, state)) == 1
    # Block 1 opens a second position as close to the edge as the first one.
    newcomer = _address(0xE4)
    parent = state.block_hash
    state.set_position(newcomer, _position({WETH: 20 * WAD}, {USDC: 47_826_086_956}))
    state.apply_block(1, "0x" + "01" * 32, [])
    header = BlockHeader(1, "0x" + "01" * 32, parent, 0, 0, 0, 0, "0x" + "00" * 20, 9)
    changes = StateChanges(users=frozenset({newcomer}))
    assert strategy.on_block(BlockContext(header, changes, 2), state) == []

    trigger = _context(state, _feed_update(FEED_WETH, 2880 * 10**8))
    users = [c.action.user for c in strategy.on_pending(trigger, state)]
    assert users == [newcomer, _address(0xE1)], "the larger position pays more"
    assert strategy.index.rebuilds == 1, "the block was applied to the index, not rebuilt"


_ASSETS = (WETH, USDC, WBTC)
_PRICES = {WETH: 3000 * 10**8, USDC: 10**8, WBTC: 60_000 * 10**8}


@st.composite
def _positions_near_the_edge(draw) -> AavePosition:
    """A position over random assets whose health factor is drawn in [1, 1.6)."""
    collateral = {a: draw(st.integers(0, 10**4)) * RESERVES[a].unit // 100 for a in _ASSETS}
    if not any(collateral.values()):
        collateral[WETH] = RESERVES[WETH].unit
    weights = {a: draw(st.integers(0, 3)) for a in _ASSETS}
    if not any(weights.values()):
        weights[USDC] = 1
    health_bps = draw(st.integers(10_000, 16_000))
    capacity = sum(
        n * _PRICES[a] * RESERVES[a].liquidation_threshold // (RESERVES[a].unit * 10_000)
        for a, n in collateral.items()
    )
    debt_base = capacity * 10_000 // health_bps
    debt = {
        a: debt_base * w // sum(weights.values()) * RESERVES[a].unit // _PRICES[a]
        for a, w in weights.items()
    }
    return _position(collateral, debt)


@settings(max_examples=80, deadline=None)
@given(
    positions=st.lists(_positions_near_the_edge(), min_size=1, max_size=8),
    moved=st.sampled_from(_ASSETS),
    move_bps=st.integers(6_000, 16_000),
)
def test_the_health_index_never_misses_a_position_a_move_breaks(positions, moved, move_bps):
    """Every position healthy before and liquidatable after a price move is among ``at_risk``,
    and ``at_risk`` holds no position that is unhealthy now."""
    state, _ = _lending_state()
    state.positions.clear()
    for index, position in enumerate(positions):
        state.set_position(_address(0x100 + index), position)
    before = state.prices
    after = {**before, moved: before[moved] * move_bps // 10_000}
    index = PositionIndex()
    index.rebuild(state)
    at_risk = set(index.at_risk({moved: (before[moved], after[moved])}))
    for user, position in state.positions.items():
        if not position.has_debt:
            continue
        health_before = health_factor(position, RESERVES, before, 0)
        if health_before >= WAD > health_factor(position, RESERVES, after, 0):
            assert user in at_risk
        if health_before < WAD:
            assert user not in at_risk


def test_the_shared_search_sizes_already_unhealthy_positions_and_respects_inventory():
    state, users = _lending_state()
    (found,) = find_liquidations(state, weth=WETH, factories=[FACTORY_C])
    assert (found.user, found.collateral_asset, found.swap_pool) == (
        users["btc"],
        WBTC,
        _address(0xC1),
    )
    position = state.positions[users["btc"]]
    limit = max_liquidatable_debt(position, RESERVES, state.prices, 0, USDC)
    assert limit == position.scaled_debt[USDC] // 2
    amounts = liquidation(position, RESERVES, state.prices, 0, WBTC, USDC, limit)
    assert found.debt_to_cover == amounts.debt_repaid
    swap_out = state.pools[_address(0xC1)].amount_out(WBTC, amounts.collateral_to_liquidator)
    premium = (amounts.debt_repaid * FLASH_PREMIUM_BPS + 5_000) // 10_000
    assert found.profit == swap_out - amounts.debt_repaid - premium > 0
    assert find_liquidations(state, weth=WETH) == [], "the routers' DEXes have no WBTC/USDC pool"
    # The executor holds less USDC than the close factor allows: it covers what it holds.
    new_prices = {**state.prices, WETH: 2880 * 10**8}
    (capped,) = find_liquidations(
        state, weth=WETH, users=[users["edge"]], prices=new_prices, max_cover={USDC: 5_000 * 10**6}
    )
    assert capped.debt_to_cover == capped.debt_repaid == 5_000 * 10**6
    assert capped.profit == capped.swap_out - capped.debt_repaid - 4_500_000 > 0  # 9 bps
    assert find_liquidations(state, weth=WETH, prices=new_prices, max_cover={}) == []


# ---------------------------------------------------------------- the devnet, end to end


async def _loaded_state(rpc, world: World) -> ChainState:
    state = ChainState(
        routers={d["router"]: {"uniswap-v2": d["factory"]} for d in world.dexes.values()},
        factories={d["factory"]: UNISWAP_V2 for d in world.dexes.values()},
        lending_pool=world.aave["pool"],
    )
    await load_pools(rpc, state)
    await load_lending(rpc, state, from_block=0)
    await load_feeds(rpc, state, state.feed_assets)
    head = await rpc.call("eth_getBlockByNumber", ["latest", False])
    state.block_number, state.block_hash = int(head["number"], 16), head["hash"]
    return state


async def _balance(rpc, token: str, holder: str) -> int:
    data = "0x" + ERC20_BALANCE.encode(holder).hex()
    return int(await rpc.call("eth_call", [{"to": token, "data": data}, "latest"]), 16)


@dataclass(frozen=True, slots=True)
class _Sent:
    hash: str
    raw: bytes


async def _sign_and_send(rpc, world: World, role: str, to: str, data: bytes, tip: int) -> _Sent:
    account = Account.from_key(world.roles[role].private_key)
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    nonce = int(await rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": world.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "value": 0,
            "data": data,
            "gas": 1_000_000,
            "maxFeePerGas": 2 * int(block["baseFeePerGas"], 16) + tip,
            "maxPriorityFeePerGas": tip,
        }
    )
    tx_hash = await rpc.call("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    return _Sent(tx_hash, bytes(signed.raw_transaction))


async def _as_pending(rpc, sent: _Sent) -> PendingTx:
    return PendingTx.from_rpc(
        await rpc.call("eth_getTransactionByHash", [sent.hash]), raw=sent.raw, source="test"
    )


async def _send_ours_and_mine(rpc, world: World, trigger: str, candidate: Candidate) -> None:
    """Our executor call right after the trigger (zero tip sorts it behind), then one block."""
    data = candidate.action.calldata(0, 0)
    ours = await _sign_and_send(rpc, world, "executor", world.executor, data, tip=0)
    await rpc.call("evm_mine")
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    assert block["transactions"] == [trigger, ours.hash]
    for tx_hash in block["transactions"]:
        receipt = await rpc.call("eth_getTransactionReceipt", [tx_hash])
        assert receipt["status"] == "0x1"


async def test_devnet_backrun_of_a_pending_swap_earns_exactly_the_expected_profit(devnet_factory):
    world = devnet_factory(block_time=None).world
    weth, dai = world.tokens["WETH"]["address"], world.tokens["DAI"]["address"]
    uniswap = world.dexes["uniswap"]
    decoder = Decoder({d["router"]: RouterKind.UNISWAP_V2_ROUTER for d in world.dexes.values()})
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        inventory = await _balance(rpc, weth, world.executor)
        strategy = BackrunArbitrage.for_state(
            "backrun", state, start_token=weth, max_amount_in=inventory
        )
        traffic = Traffic(world, seed=3)
        await traffic.sync_nonces(rpc)
        head = await rpc.call("eth_getBlockByNumber", ["latest", False])
        trader = world.traders[0].address
        pool = state.pools[uniswap["pairs"]["WETH/DAI"]["address"]]
        amount_in = pool.reserves_for(weth)[0] * 2 // 100
        signed = traffic.sign(
            trader,
            uniswap["router"],
            SWAP.encode(amount_in, 0, [weth, dai], trader, 2**40),
            int(head["baseFeePerGas"], 16),
        )
        tx = await _as_pending(
            rpc, _Sent(await rpc.call("eth_sendRawTransaction", [signed.raw_hex]), signed.raw)
        )
        intent = decoder.decode_tx(tx)
        context = PendingContext(tx, state.after(intent), state.block_number + 1)

        (candidate,) = strategy.on_pending(context, state)
        assert pool.address in candidate.action.pools and candidate.backrun == (tx,)
        assert 0 < candidate.action.amount_in <= inventory

        await _send_ours_and_mine(rpc, world, tx.hash, candidate)
        gained = await _balance(rpc, weth, world.executor) - inventory
        assert gained == candidate.expected_profit > 0


async def test_devnet_liquidation_behind_a_pending_feed_update_earns_exactly_the_expected_profit(
    devnet_factory,
):
    world = devnet_factory(block_time=None).world
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        before = await _balance(rpc, usdc, world.executor)
        strategy = LiquidationBackrun("liq", weth=weth)
        new_answer = world.feeds["WETH"]["answer"] * 96 // 100  # -4%: only the HF 1.035 borrower
        aggregator, data = transmit(world, "WETH", new_answer)
        sent = await _sign_and_send(rpc, world, "oracle_updater", aggregator, data, tip=10**9)
        tx = await _as_pending(rpc, sent)
        intent = Decoder(feeds=state.aggregators.__contains__).decode(tx.to, tx.input)
        context = PendingContext(tx, state.after(intent), state.block_number + 1)

        (candidate,) = strategy.on_pending(context, state)
        borrower = world.aave["borrowers"][0]["address"]
        assert candidate.action.user == borrower and candidate.action.debt_asset == usdc
        assert candidate.action.pool == world.aave["pool"]
        position, reserve = state.positions[borrower], state.reserves[usdc]
        owed = ray_mul(position.scaled_debt[usdc], reserve.normalized_debt(state.timestamp))
        assert candidate.action.debt_to_cover == percent_mul(owed, 5_000)
        assert candidate.backrun == (tx,)

        await _send_ours_and_mine(rpc, world, tx.hash, candidate)
        gained = await _balance(rpc, usdc, world.executor) - before
        assert gained == candidate.expected_profit > 0
