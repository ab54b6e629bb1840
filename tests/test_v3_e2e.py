"""End to end on the devnet with Uniswap V3 victims (issue 16 item 6): a user's V3 swap sent
through SwapRouter02 and one sent through the Universal Router are each backrun by a cycle
through V3 pools, financed by a flash swap (the executor holds no WETH), landed right behind the
victim, for exactly the simulated balance changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from e2e_support import balances, block_tx_hashes, level, mine, sent_for, stack_with_bot, until
from fault_support import landed_in

from anvil.stack import DevnetStack
from anvil.swaps import UserSwap
from anvil.traffic import Traffic
from mevbot.runtime import Bot
from simulation.simulator import ETH

VICTIM_USD = 150_000  # moves a 0.3% pool well past the other tiers' and the V2 pairs' prices


@pytest.fixture
async def stack_and_bot(devnet_cache, tmp_path) -> AsyncIterator[tuple[DevnetStack, Bot]]:
    async with stack_with_bot(devnet_cache, tmp_path) as running:
        yield running


def _weth_usdc_pool(stack: DevnetStack, fee: int) -> dict:
    world = stack.world
    tokens = {world.tokens["WETH"]["address"], world.tokens["USDC"]["address"]}
    (pool,) = [
        p for p in world.v3["pools"] if {p["token0"], p["token1"]} == tokens and p["fee"] == fee
    ]
    return pool


async def _backrun_lands(
    stack: DevnetStack,
    bot: Bot,
    swap: UserSwap,
    trader: str,
    before_victim: Callable[[], object] = lambda: None,
) -> None:
    """Send ``swap``'s txs from ``trader`` (``before_victim`` called just before); the bot's
    backrun must land right behind the router call with the executor's and its owner's balances
    changing exactly as simulated."""
    world = stack.world
    rpc = stack.rpc
    weth = world.tokens["WETH"]["address"]
    tokens = [t["address"] for t in world.tokens.values()]
    owner = world.roles["executor"].address
    await level(stack, bot)  # block-state arbitrage lands: the victim's gap is traded next
    await stack.empty_executor("WETH")  # its start funds and what those arbitrages earned
    head = int(await rpc.call("eth_blockNumber"), 16)
    await until(lambda: bot.engine.processed_block >= head, what="the bot at the withdrawal")
    assert (await balances(rpc, world.executor, [weth]))[weth] == 0, "no WETH to trade with"
    traffic = Traffic(world, seed=5)
    await traffic.sync_nonces(rpc)
    base_fee = bot.engine.head.base_fee
    txs = traffic.sign_swap(trader, swap, base_fee)
    before_victim()
    for tx in txs:
        await rpc.call("eth_sendRawTransaction", [tx.raw_hex])
    victim = txs[-1].hash
    await until(lambda: sent_for(bot, victim), what="a backrun bundle for the victim")
    candidate, verdict = next(
        (c, v) for c, v in bot.engine.submitter.verdicts if v in sent_for(bot, victim)
    )
    assert candidate.action.flash, "financed by a flash swap"
    assert "uniswap-v3" in {hop.pool_kind for hop in candidate.action.hops}
    simulated = verdict.simulation
    assert simulated is not None and simulated.success
    before = {h: await balances(rpc, h, tokens) for h in (world.executor, owner)}

    report = await mine(stack, bot)
    assert landed_in(report, verdict.plan), "our backrun landed with its victim"
    hashes = await block_tx_hashes(rpc, report.number)
    assert hashes.index(verdict.plan.our_tx.hash) == hashes.index(victim) + 1, "right after it"
    ours = simulated.txs[-1]  # the simulation of the block's bundle ends with our tx
    receipt = await rpc.call("eth_getTransactionReceipt", [verdict.plan.our_tx.hash])
    assert int(receipt["gasUsed"], 16) == ours.gas_used, "the gas the simulation measured"
    gas_paid = ours.gas_used * int(receipt["effectiveGasPrice"], 16)
    expected = {
        world.executor: simulated.balance_diffs[world.executor],
        owner: {ETH: -gas_paid},  # the signer pays the gas, the executor the rest
    }
    for holder, was in before.items():
        now = await balances(rpc, holder, tokens)
        gained = {k: now[k] - was[k] for k in was if now[k] != was[k]}
        assert gained == {k: v for k, v in expected[holder].items() if v}, holder
    profit = simulated.balance_diffs[world.executor][candidate.action.token_in]
    assert profit > 0
    if candidate.action.token_in == weth:
        executor_gain = profit + simulated.balance_diffs[world.executor].get(ETH, 0)
        bid = verdict.plan.bid
        assert executor_gain == bid.net_profit_wei + bid.gas_cost_wei
    venue = candidate.action.venue
    await until(
        lambda: (
            dict((c.labels[0], c.value) for c in bot.engine.counts.tally().landed_by_venue).get(
                venue, 0
            )
            >= 1
        ),
        what=f"the ledger to settle a {venue} backrun",
    )


async def test_a_swaprouter02_v3_swap_is_backrun_with_no_inventory(stack_and_bot):
    stack, bot = stack_and_bot
    world = stack.world
    trader = world.traders[0].address
    pool = _weth_usdc_pool(stack, 3000)
    maker = Traffic(world, seed=5).maker
    swap = maker.v3(
        "uniswap-v3-02",
        "exactInputSingle",
        [pool],
        world.tokens["WETH"]["address"],
        VICTIM_USD,
        trader,
    )
    await _backrun_lands(stack, bot, swap, trader)


async def test_a_universal_router_v3_swap_is_backrun_with_no_inventory(stack_and_bot):
    stack, bot = stack_and_bot
    world = stack.world
    pool = _weth_usdc_pool(stack, 3000)
    maker = Traffic(world, seed=5).maker
    swap = maker.universal("wrap-v3-exact-in", pool, world.tokens["USDC"]["address"], VICTIM_USD)
    await _backrun_lands(stack, bot, swap, world.traders[1].address)
