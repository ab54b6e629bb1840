"""The pool seam: a new pool kind is one module plus its registration.

``tests/toy_constant_sum.py`` is a kind nothing else in the code knows of. Registered, it
is followed by the state from its factory's and its pools' logs, traded by the arbitrage search
(which has no closed form for it), and proposed by the engine behind a pending swap, with no
other edit. The exact integer search that such mixes take is checked against brute force.
"""

from __future__ import annotations

from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st
from toy_constant_sum import BALANCES, CREATED, TOY_KIND

from chain.abi import Abi
from chain.types import Log, PendingTx
from mevbot.counters import Counts
from mevbot.engine import Engine
from mevbot.latency import LatencyBook
from simulation.amm import Pool
from simulation.arbitrage import CycleIndex, best_opportunity, best_path_input, search_path_input
from simulation.pool_kinds import pool_kind, register_pool_kind
from simulation.state import ChainState
from simulation.uniswap_v2 import UNISWAP_V2
from strategies.backrun import BackrunArbitrage
from watcher.decode import Decoder, RouterKind

WETH, TKN = "0x" + "ee" * 20, "0x" + "11" * 20
V2_FACTORY, TOY_FACTORY, ROUTER = "0x" + "fa" * 20, "0x" + "fc" * 20, "0x" + "0a" * 20
V2_PAIR, TOY_POOL = "0x" + "a1" * 20, "0x" + "c1" * 20
SWAP = Abi.from_signatures(
    "function swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
).function("swapExactTokensForTokens")


def _word(value: int | str) -> bytes:
    return (int(value, 16) if isinstance(value, str) else value).to_bytes(32, "big")


def _log(address: str, topics: tuple[bytes, ...], data: bytes) -> Log:
    return Log(address, topics, data, 5, "0x" + "05" * 32, "0x" + "00" * 32, 0, 0)


def _state_with_toy(unit: int = 10**18) -> ChainState:
    register_pool_kind(TOY_KIND)
    state = ChainState(
        routers={ROUTER: {"uniswap-v2": V2_FACTORY}},
        factories={V2_FACTORY: UNISWAP_V2, TOY_FACTORY: pool_kind("toy-constant-sum")},
    )
    # WETH/TKN at 1:2 on the V2 pair, at 1:2 on the toy pool (constant sum: 1 WETH = 2 TKN
    # would need a 1:1 pool; the toy quotes 1:1, so TKN is dear there).
    state.add_pool(V2_FACTORY, Pool(V2_PAIR, WETH, TKN, 1000 * unit, 2000 * unit))
    token0, token1 = sorted((WETH, TKN))
    created = _log(TOY_FACTORY, (CREATED, _word(token0), _word(token1)), _word(TOY_POOL))
    balances = _log(TOY_POOL, (BALANCES,), _word(1000 * unit) + _word(1000 * unit))
    changes = state.apply_block(5, "0x" + "05" * 32, [created, balances])
    assert changes.new_pairs == ((TOY_FACTORY, token0, token1, TOY_POOL),)
    return state


def test_a_new_pool_kind_is_followed_by_the_state_from_its_logs():
    state = _state_with_toy()
    toy = state.pools[TOY_POOL]
    assert toy.kind == "toy-constant-sum" and (toy.balance0, toy.balance1) == (10**21,) * 2
    assert state.pools_trading(WETH, TKN) == (V2_PAIR, TOY_POOL)
    assert TOY_KIND.pool_topics <= set(state.log_topics) and CREATED in state.log_topics
    state.rollback_to(4)
    assert TOY_POOL not in state.pools, "a reorg removes the pool its block created"


def test_the_arbitrage_search_trades_a_kind_with_no_closed_form_exactly():
    state = _state_with_toy(unit=10)
    cycles = CycleIndex.build(state.pools.values(), [WETH]).cycles
    found = best_opportunity(cycles, state.pools)
    assert found is not None and found.cycle.pools == (V2_PAIR, TOY_POOL)
    # Brute force over the profit curve: the toy pays 1:1 minus 10 bps; V2 pays ~2 TKN a WETH.
    pair, toy = state.pools[V2_PAIR], state.pools[TOY_POOL]

    def profit(amount: int) -> int:
        return toy.amount_out(TKN, pair.amount_out(WETH, amount)) - amount

    brute = max(range(1, 30_000), key=profit)
    assert found.profit == profit(brute) and found.profit == profit(found.amount_in)
    assert found.amounts == (
        found.amount_in,
        pair.amount_out(WETH, found.amount_in),
        found.amount_out,
    )


def test_the_engine_proposes_a_backrun_through_the_new_kind():
    state = _state_with_toy()
    strategy = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    engine = Engine(
        state=state,
        decoder=Decoder({ROUTER: RouterKind.UNISWAP_V2_ROUTER}),
        strategies=[strategy],
        simulator=None,  # type: ignore[arg-type]  (candidates_for does no I/O)
        submitter=None,  # type: ignore[arg-type]
        counts=Counts(),
        latency=LatencyBook(),
    )
    # A user sells TKN into the V2 pair: WETH gets dearer there, the toy's gap widens.
    calldata = SWAP.encode(10**20, 0, [TKN, WETH], "0x" + "77" * 20, 2**32)
    victim = PendingTx(
        "0x" + "ab" * 32, "0x" + "77" * 20, ROUTER, 0, calldata, 0, 250_000, raw=b"\x02"
    )
    (candidate,) = engine.candidates_for(victim)
    assert candidate.action.pools == (V2_PAIR, TOY_POOL)
    assert candidate.backrun == (victim,) and candidate.expected_profit > 0


@settings(max_examples=150, deadline=None)
@given(
    reserves=st.lists(st.integers(2_000, 60_000), min_size=4, max_size=4),
    fees=st.lists(st.sampled_from([0, 5, 30, 100]), min_size=2, max_size=2),
)
def test_the_exact_search_finds_the_brute_force_maximum(reserves, fees):
    """Two constant-product hops with small reserves: every input can be tried."""
    a_in, a_out, b_in, b_out = reserves
    hops = [(a_in, a_out, fees[0]), (b_in, b_out, fees[1])]
    pools = [
        Pool("0x" + "a1" * 20, WETH, TKN, a_in, a_out, fees[0]),
        Pool("0x" + "b1" * 20, WETH, TKN, b_out, b_in, fees[1]),
    ]

    def output(amount: int) -> int:
        return pools[1].amount_out(TKN, pools[0].amount_out(WETH, amount))

    brute = max((output(x) - x for x in range(1, 3 * max(reserves))), default=0)
    steps = [partial(pools[0].amount_out, WETH), partial(pools[1].amount_out, TKN)]
    gain = pools[0].rate(WETH) * pools[1].rate(TKN)
    amount_in, profit = search_path_input(steps, gain, scan_limit=4096)
    assert profit == max(brute, 0) and (profit == 0 or output(amount_in) - amount_in == profit)
    assert best_path_input(hops)[1] == profit, "the closed form agrees"
