"""The state verifier on the devnet: with the bot running, a V2 pair's and a V3 pool's local
state are corrupted; at the next block the verifier finds exactly those two drifted, logs each,
counts them (metric, dashboard) and reloads what the node has."""

from __future__ import annotations

import logging
from dataclasses import replace

from e2e_support import mine, stack_with_bot, until
from rich.console import Console

from mevbot.tui import render
from simulation.uniswap_v2 import UNISWAP_V2
from simulation.uniswap_v3 import UNISWAP_V3
from simulation.uniswap_v3_pool import V3Pool

CHECK_EVERY_BLOCK = {
    "MEVBOT_STATE__VERIFY_EVERY_BLOCKS": "1",
    "MEVBOT_STATE__VERIFY_SAMPLE": "1000",
}


async def test_corrupted_pools_are_counted_as_drifted_and_reloaded(devnet_cache, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="mevbot.verifier")
    async with stack_with_bot(devnet_cache, tmp_path, CHECK_EVERY_BLOCK) as (stack, bot):
        world = stack.world
        for _ in range(3):  # block-state arbitrage goes out, lands, and the prices are level
            report = await mine(stack, bot)
        await until(
            lambda: bot.snapshot().pools.pools_checked >= len(bot.state.pools),
            what="a verification of every pool",
        )
        assert bot.snapshot().pools.pools_drifted == 0, "the state kept from logs is exact"
        pair = bot.state.pools[world.dexes["uniswap"]["pairs"]["WETH/USDC"]["address"]]
        weth, usdc = world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]
        (pool,) = [
            p
            for p in bot.state.pools.values()
            if isinstance(p, V3Pool) and {p.token0, p.token1} == {weth, usdc} and p.fee == 3000
        ]
        tick, (gross, net) = next(iter(sorted(pool.ticks.items())))
        bot.state.refresh_pool(replace(pair, reserve0=pair.reserve0 + 1))
        bot.state.refresh_pool(
            replace(
                pool,
                liquidity=pool.liquidity - 1,
                ticks={**pool.ticks, tick: (gross, net + 1)},
            )
        )
        report = await mine(stack, bot)
        await until(
            lambda: bot.snapshot().pools.pools_drifted >= 2, what="the verifier to find both"
        )
        upkeep = bot.snapshot().pools
        assert upkeep.pools_drifted == 2
        block = hex(report.number)
        (node_pair,) = await UNISWAP_V2.reread(stack.rpc, [bot.state.pools[pair.address]], block)
        (node_pool,) = await UNISWAP_V3.reread(stack.rpc, [bot.state.pools[pool.address]], block)
        assert bot.state.pools[pair.address] == node_pair == pair, "reloaded"
        assert bot.state.pools[pool.address] == node_pool == pool, "reloaded"
        drifts = sorted(r.getMessage() for r in caplog.records if "drifted" in r.getMessage())
        assert drifts == sorted(
            [
                f"pool {pair.address} (uniswap-v2) drifted from the node at block "
                f"{report.number}: reserve0 differ; reloaded",
                f"pool {pool.address} (uniswap-v3) drifted from the node at block "
                f"{report.number}: liquidity, ticks differ; reloaded",
            ]
        )
        bot.metrics.update_from(bot.snapshot())
        assert "mevbot_pool_drift_total 2.0" in bot.metrics.exposition().decode()
        console = Console(record=True, width=140, force_terminal=False)
        console.print(render(bot.snapshot()))
        assert "drifted 2" in console.export_text()
