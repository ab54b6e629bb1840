"""Hostile tokens in tracked pools: the bot's math sees profit, the fork says no; nothing lost.

Pairs of WETH with a fee-on-transfer token, a token whose transfers revert, and a token whose
symbol() returns terminal garbage sit on both devnet DEXes at prices 4% apart, so every cycle
through them looks profitable to the exact V2 math. Simulation on the fork must catch the first
two (the executor's swap hits the pair's K check, or a transfer reverts): no bundle is ever sent
through them. The third trades normally (only its name is hostile), so arbitraging it is fine.
The executor's holdings never drop, no task crashes, no error is logged.
"""

from __future__ import annotations

import pytest
from fault_support import bot_on, eth_balance, mine, token_balance

from anvil.deployer import Deployer
from anvil.stack import DevnetStack

pytestmark = pytest.mark.faults
MAX = 2**256 - 1


def _deploy_hostile_pools(stack: DevnetStack) -> dict[str, str]:
    world = stack.world
    d = Deployer(stack.rpc_url)
    owner = world.roles["deployer"].address
    weth = world.tokens["WETH"]["address"]
    tokens = {
        "FEE": d.deploy("FeeOnTransferToken", "Fee Token", "FEE", 18, 100, sender=owner),
        "REV": d.deploy("RevertingToken", "Reverting", "REV", 18, sender=owner),
        "BAD": d.deploy("BadSymbolToken", "Bad Symbol", "BAD", 18, sender=owner),
    }
    d.transact("WETH9", weth, "deposit", sender=owner, value=100 * 10**18)
    for token in tokens.values():
        d.transact("ERC20Token", token, "mint", owner, 10**24, sender=owner)
        for skew, dex in ((1000, "uniswap"), (1040, "sushiswap")):
            router = world.dexes[dex]["router"]
            d.transact("ERC20Token", token, "approve", router, MAX, sender=owner)
            d.transact("WETH9", weth, "approve", router, MAX, sender=owner)
            d.transact(
                "UniswapV2Router02", router, "addLiquidity", token, weth,
                1000 * 10**18 * skew // 1000, 10 * 10**18, 0, 0, owner, 2**40, sender=owner,
            )  # fmt: skip
    d.transact("RevertingToken", tokens["REV"], "setTransfersRevert", True, sender=owner)
    d.transact("BadSymbolToken", tokens["BAD"], "setSymbolMode", 2, sender=owner)  # "[red]x\x1b[2J"
    return tokens


async def _holdings(stack: DevnetStack, tokens: list[str]) -> dict[str, int]:
    executor = stack.world.executor
    out = {"ETH": await eth_balance(stack.rpc, executor)}
    for token in tokens:
        out[token] = await token_balance(stack.rpc, token, executor)
    return out


async def test_hostile_tokens_never_cost_the_bot_money_and_never_crash_it(devnet_cache, tmp_path):
    async with DevnetStack(block_time=None, state_dir=devnet_cache) as stack:
        hostile = _deploy_hostile_pools(stack)
        world = stack.world
        watched = [world.tokens[s]["address"] for s in world.tokens] + list(hostile.values())
        async with bot_on(stack, tmp_path) as bot:
            tracked = set(bot.state.pools)

            def pairs_of(*symbols: str) -> set[str]:
                wanted = {hostile[s] for s in symbols}
                return {
                    p.address for p in bot.state.pools.values() if {p.token0, p.token1} & wanted
                }

            # Fee-on-transfer and reverting tokens break the trade; the garbage symbol does not.
            hostile_pairs = pairs_of("FEE", "REV")
            assert len(hostile_pairs) == 4 and pairs_of("BAD") | hostile_pairs <= tracked
            before = await _holdings(stack, watched)
            received_before = stack.stats().bundles_received
            for _ in range(4):
                await mine(stack, bot)
            after = await _holdings(stack, watched)
            weth = world.tokens["WETH"]["address"]
            # Tips are paid in ETH out of WETH profits: together they never go down.
            assert after["ETH"] + after[weth] >= before["ETH"] + before[weth]
            for token in watched:
                if token != weth:
                    assert after[token] >= before[token], f"the executor lost {token}"
            through_hostile = [
                (c, v)
                for c, v in bot.engine.submitter.verdicts
                if set(c.action.pools) & hostile_pairs
            ]
            assert through_hostile, "the math saw opportunities through the hostile pools"
            assert all(v.outcome == "dropped" for _, v in through_hostile), [
                (c.action, v.outcome, v.reason) for c, v in through_hostile
            ]
            assert all(
                v.reason.startswith(("reverts", "simulation_failed")) for _, v in through_hostile
            )
            sent_hostile = sum(v.outcome == "sent" for _, v in through_hostile)
            assert sent_hostile == 0 and stack.stats().bundles_received >= received_before
            assert all(t.restarts == 0 and t.state == "running" for t in bot.supervisor.status())
            assert bot.log_tail.errors == 0
