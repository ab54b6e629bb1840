"""Missing V3 bitmap words are fetched and merged: a large pending swap that crosses past a pool's
deliberately narrow window leaves no effect at first, then, once the fetcher has read the words
it asked for, is quoted exactly as the official QuoterV2 quotes it on the devnet."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from anvil.deployer import Deployer
from anvil.devnet import Devnet
from anvil.world import World
from chain.intents import SwapIntent
from chain.rpc import connect
from simulation.loader import load_pools
from simulation.state import ChainState
from simulation.uniswap_v3 import UNISWAP_V3
from simulation.uniswap_v3_pool import MissingTickWordError, V3Pool
from simulation.v3_words import SPREAD, WordFetcher


@pytest.fixture(scope="module")
def chain_world(devnet_cache: Path) -> Iterator[World]:
    with Devnet(block_time=0, state_dir=devnet_cache) as world:
        yield world


def _word(pool: V3Pool, tick: int) -> int:
    return tick // pool.tick_spacing >> 8


def _narrowed(pool: V3Pool) -> V3Pool:
    """The pool knowing only the bitmap word of its current tick."""
    centre = _word(pool, pool.tick)
    ticks = {t: info for t, info in pool.ticks.items() if _word(pool, t) == centre}
    return replace(pool, words={centre: pool.words[centre]}, ticks=ticks)


async def _load_weth_usdc_500(rpc, state: ChainState, weth: str, usdc: str) -> V3Pool:
    """Load the state's pools at the head; the 0.05% WETH/USDC pool as loaded."""
    await load_pools(rpc, state)
    state.block_number = int(await rpc.call("eth_blockNumber"), 16)
    (pool,) = [
        p
        for p in state.pools.values()
        if isinstance(p, V3Pool) and {p.token0, p.token1} == {weth, usdc} and p.fee == 500
    ]
    return pool


async def test_a_swap_past_the_loaded_words_is_quoted_exactly_once_they_are_fetched(chain_world):
    world = chain_world
    factory, router = world.v3["factory"], world.v3["swap_router02"]
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    state = ChainState(routers={router: {"uniswap-v3": factory}}, factories={factory: UNISWAP_V3})
    deployer = Deployer(world.rpc["http"])
    async with connect(world.rpc["http"]) as rpc:
        full = await _load_weth_usdc_500(rpc, state, weth, usdc)
        # As much WETH as the pool holds: the price leaves the current tick's word.
        amount = deployer.call("ERC20Token", weth, "balanceOf", full.address)[0]
        result = full.simulate(full.token0 == weth, amount)
        assert 1 <= abs(_word(full, result.tick) - _word(full, full.tick)) < SPREAD
        state.refresh_pool(_narrowed(full))
        intent = SwapIntent(
            "uniswap-v3", router, "exactInputSingle", "exact_in", (weth, usdc), (500,),
            amount, 0, None, None, world.traders[0].address, None, 0, False, False, False,
        )  # fmt: skip
        fetcher = WordFetcher(rpc, state)
        fetcher.attach()
        ready: list[str] = []
        fetcher.on_ready = ready.append
        first = state.after(intent)
        assert first.empty and first.missing is not None, "the narrow window cannot price it"
        fetcher.wait(first.missing, "the victim")
        assert state.after(intent).empty
        assert (fetcher.counts.misses, fetcher.counts.asked) == (2, SPREAD), "asked once"
        task = asyncio.create_task(fetcher.run())
        try:
            for _ in range(500):
                effect = state.after(intent)
                if not effect.empty:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
    assert not effect.empty, "the words arrived"
    assert ready == ["the victim"], "what waited for the word is handed back once"
    quoted, price_after, _, _ = deployer.call(
        "QuoterV2", world.v3["quoter"], "quoteExactInputSingle", (weth, usdc, amount, 500, 0)
    )
    pool = state.pools[full.address]
    assert pool.amount_out(weth, amount) == quoted
    assert effect.pools[full.address].sqrt_price_x96 == price_after
    assert {w: pool.words[w] for w in full.words if w in pool.words} == {
        w: full.words[w] for w in full.words if w in pool.words
    }
    counts = fetcher.counts
    assert counts.fetched >= 1 and counts.dropped == counts.failed_rounds == 0


def test_asking_is_deduplicated_and_bounded():
    """A word known, waiting or asked twice is asked once; past a pool's bound, words are
    dropped and counted (no node needed: asking never waits on one)."""
    from simulation.uniswap_v3_math import get_sqrt_ratio_at_tick
    from simulation.v3_words import MAX_WORDS_PER_POOL

    address = "0x" + "33" * 20
    # Tick 0 with spacing 1 is in word 0; it knows words 0..MAX-3, so two more fit.
    words = dict.fromkeys(range(MAX_WORDS_PER_POOL - 2), 0)
    pool = V3Pool(address, "0x" + "0a" * 20, "0x" + "1b" * 20, 100, 1,
                  get_sqrt_ratio_at_tick(0), 0, 10**18, words, {})  # fmt: skip
    state = ChainState()
    state.add_pool("0x" + "fa" * 20, pool)
    fetcher = WordFetcher(None, state)
    fetcher.want(MissingTickWordError(address, 1))  # above: words 1..4, all known
    assert fetcher.counts.asked == 0
    fetcher.want(MissingTickWordError(address, -1))  # below: -1..-4, the nearest two fit
    fetcher.want(MissingTickWordError(address, -1))
    counts = fetcher.counts
    assert (counts.misses, counts.asked, counts.dropped) == (3, 2, SPREAD - 2 + SPREAD - 2)


async def test_a_moved_price_brings_its_neighbouring_words(chain_world):
    world = chain_world
    factory = world.v3["factory"]
    state = ChainState(factories={factory: UNISWAP_V3})
    async with connect(world.rpc["http"]) as rpc:
        await load_pools(rpc, state)
        state.block_number = int(await rpc.call("eth_blockNumber"), 16)
        full = next(p for p in state.pools.values() if isinstance(p, V3Pool))
        state.refresh_pool(_narrowed(full))
        fetcher = WordFetcher(rpc, state)
        fetcher.follow([full.address])
        assert fetcher.counts.asked == 2
        await fetcher.fetch_round()
    centre = _word(full, full.tick)
    pool = state.pools[full.address]
    assert sorted(pool.words) == [centre - 1, centre, centre + 1]
    assert {w: pool.words[w] for w in pool.words} == {w: full.words[w] for w in pool.words}
    assert {t for t in full.ticks if abs(_word(full, t) - centre) <= 1} == set(pool.ticks)


def test_what_waits_for_a_word_expires_when_the_block_moves_on():
    """A pending tx left waiting for a word at one block is forgotten (counted) once the state
    is at another: it may be mined, and its quote was against the old state. Past the bound,
    what would wait is dropped and counted."""
    from simulation.uniswap_v3_math import get_sqrt_ratio_at_tick
    from simulation.v3_words import MAX_WAITING

    address = "0x" + "44" * 20
    pool = V3Pool(address, "0x" + "0a" * 20, "0x" + "1b" * 20, 100, 1,
                  get_sqrt_ratio_at_tick(0), 0, 10**18, {0: 0}, {})  # fmt: skip
    state = ChainState()
    state.add_pool("0x" + "fa" * 20, pool)
    state.apply_block(7, "0x07", [])
    fetcher = WordFetcher(None, state)
    ready: list[str] = []
    fetcher.on_ready = ready.append
    for n in range(MAX_WAITING + 3):
        fetcher.wait(MissingTickWordError(address, 1), f"tx{n}")
    state.apply_block(8, "0x08", [])
    fetcher.wait(MissingTickWordError(address, 1), "late")
    counts = fetcher.counts
    assert (counts.expired, counts.waiting_dropped, counts.ready) == (MAX_WAITING, 3, 0)
    assert ready == []


async def test_a_search_capped_by_the_loaded_words_asks_for_more(chain_world):
    """A 200 WETH sale into the V2 pair opens a gap whose best cycle (sell WETH into the 0.05%
    pool, buy it back from the pair) pushes the pool past its only known word: the search caps
    its input there, and the strategy asks for the words beyond. Once fetched, the next search
    trades more, for more profit, and its V3 hop is what QuoterV2 quotes."""
    from simulation.arbitrage import CycleIndex
    from simulation.uniswap_v2 import UNISWAP_V2
    from strategies.backrun import BackrunArbitrage

    world = chain_world
    factory = world.v3["factory"]
    v2 = world.dexes["uniswap"]
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    state = ChainState(
        routers={v2["router"]: {"uniswap-v2": v2["factory"]}},
        factories={factory: UNISWAP_V3, v2["factory"]: UNISWAP_V2},
    )
    deployer = Deployer(world.rpc["http"])
    async with connect(world.rpc["http"]) as rpc:
        full = await _load_weth_usdc_500(rpc, state, weth, usdc)
        state.refresh_pool(_narrowed(full))
        pair = state.pools[v2["pairs"]["WETH/USDC"]["address"]]
        strategy = BackrunArbitrage(
            "backrun", CycleIndex.build([pair, full], [weth], 2), start_token=weth
        )
        victim = SwapIntent(
            "uniswap-v2", v2["router"], "swapExactTokensForTokens", "exact_in", (weth, usdc), (),
            200 * 10**18, 0, None, None, world.traders[0].address, None, 0, False, False, False,
        )  # fmt: skip
        effect = state.after(victim)
        fetcher = WordFetcher(rpc, state)
        fetcher.attach()
        capped = strategy.best_after(state, effect.pools, state.pools_after(effect))
        assert capped is not None and strategy.stats.search_misses == 1
        assert fetcher.counts.asked == SPREAD, "the missing word and the three beyond it"
        with pytest.raises(MissingTickWordError):  # the edge: a little more is not priceable
            state.pools[full.address].amount_out(weth, capped[0].amount_in * 17 // 16)
        await fetcher.fetch_round()
        found = strategy.best_after(state, effect.pools, state.pools_after(effect))
    assert found is not None and strategy.stats.search_misses == 1, "not capped again"
    (action, profit), (capped_action, capped_profit) = found, capped
    assert action.amount_in > capped_action.amount_in and profit > capped_profit
    assert [hop.pool for hop in action.hops] == [full.address, pair.address]
    quoted, *_ = deployer.call(
        "QuoterV2",
        world.v3["quoter"],
        "quoteExactInputSingle",
        (weth, usdc, action.amount_in, 500, 0),
    )
    assert state.pools[full.address].amount_out(weth, action.amount_in) == quoted


async def test_words_merged_and_pools_reloaded_at_a_block_are_undone_with_it(chain_world):
    """What is read from the node at block N is N's state: a reorg that drops N takes it out
    with the block. Words merged at N go (the pool is what it was before N, and the next quote
    that needs them asks again); a pool the verifier reloaded at N is back to the state the bot
    had before N, which the next verification finds and reloads again."""
    from simulation.uniswap_v2 import UNISWAP_V2
    from simulation.verifier import StateVerifier

    world = chain_world
    v2 = world.dexes["uniswap"]
    weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
    state = ChainState(factories={world.v3["factory"]: UNISWAP_V3, v2["factory"]: UNISWAP_V2})
    async with connect(world.rpc["http"]) as rpc:
        full = await _load_weth_usdc_500(rpc, state, weth, usdc)
        pair = state.pools[v2["pairs"]["WETH/USDC"]["address"]]
        # At the loaded head, before any block: a narrow window, and a pair that drifted.
        narrowed, drifted = _narrowed(full), replace(pair, reserve0=pair.reserve0 + 1)
        state.refresh_pool(narrowed)
        state.refresh_pool(drifted)
        await rpc.call("evm_mine")
        block = await rpc.call("eth_getBlockByNumber", ["latest", False])
        number = int(block["number"], 16)
        state.apply_block(number, block["hash"], [])  # an empty block
        fetcher = WordFetcher(rpc, state)
        fetcher.follow([full.address])
        await fetcher.fetch_round()
        verifier = StateVerifier(rpc, state, sample=len(state.pools))
        assert await verifier.verify() == [pair.address]
        assert len(state.pools[full.address].words) == 3 and state.pools[pair.address] == pair
        changes = state.rollback_to(number - 1)
        assert state.pools[full.address] == narrowed and state.pools[pair.address] == drifted
        assert {full.address, pair.address} <= changes.pools
        state.apply_block(number, block["hash"], [])  # the new branch
        assert await verifier.verify() == [pair.address]
        assert state.pools[pair.address] == pair
        fetcher.follow([full.address])
        assert fetcher.counts.asked == 4, "the words asked again"
