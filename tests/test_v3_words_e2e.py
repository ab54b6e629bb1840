"""The bot on the devnet with a V3 pool it knows only one bitmap word of: a user's swap large
enough to leave that word leaves no effect at first; once the fetcher has read the words it
asked for, the pending swap is considered again and backrun, flash-financed, right behind the
victim, for exactly the simulated balance changes."""

from __future__ import annotations

import pytest
from e2e_support import stack_with_bot
from test_v3_e2e import _backrun_lands, _weth_usdc_pool
from test_v3_words import _narrowed

from anvil.traffic import Traffic
from simulation.uniswap_v3_pool import MissingTickWordError, V3Pool


async def test_a_victim_past_the_loaded_words_is_backrun_once_they_arrive(devnet_cache, tmp_path):
    async with stack_with_bot(devnet_cache, tmp_path) as (stack, bot):
        world = stack.world
        weth = world.tokens["WETH"]["address"]
        pool_spec = _weth_usdc_pool(stack, 500)
        usd_price = world.tokens["WETH"]["usd_price"]
        trader = world.traders[2].address

        def narrow() -> None:
            """Just before the victim is sent: the pool as the state now has it, cut down to
            its current word, and a victim size that leaves that word."""
            full = bot.state.pools[pool_spec["address"]]
            assert isinstance(full, V3Pool)
            narrowed = _narrowed(full)
            with pytest.raises(MissingTickWordError):  # the victim leaves the word
                narrowed.simulate(full.token0 == weth, victim_weth)
            bot.state.refresh_pool(narrowed)

        victim_weth = 100 * 10**18  # into the next word down (of four the bot would load)
        swap = Traffic(world, seed=7).maker.v3(
            "uniswap-v3-02",
            "exactInputSingle",
            [pool_spec],
            weth,
            victim_weth / 10**18 * usd_price,
            trader,
        )
        await _backrun_lands(stack, bot, swap, trader, before_victim=narrow)
        upkeep = bot.pool_upkeep()
        assert upkeep.words_fetched >= 1 and upkeep.pending_retried == 1
        bot.metrics.update_from(bot.snapshot())
        exposed = bot.metrics.exposition().decode()
        assert 'mevbot_v3_word_waits_total{outcome="retried"} 1.0' in exposed
