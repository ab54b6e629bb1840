"""Local state kept from logs equals the chain: every block, across a reorg, for pending effects."""

from __future__ import annotations

import random

import pytest
from devnet_txs import transmit

from anvil import artifacts
from anvil.deployer import Deployer
from anvil.traffic import Traffic
from anvil.world import World
from chain.abi import load_artifact
from chain.ocr import transmit_answer
from chain.rpc import connect
from chain.topics import STATE_TOPICS
from chain.types import Log
from simulation.aave_v3 import AccountData, account_data
from simulation.amm import Pool
from simulation.loader import catch_up, load_feeds, load_lending, load_pools
from simulation.state import ChainState, FeedAnswer, FeedLink
from simulation.uniswap_v2 import UNISWAP_V2
from watcher.decode import Decoder, RouterKind

PAIR = artifacts.load("UniswapV2Pair").abi
POOL = artifacts.load("Pool").abi
SCALED = artifacts.load("AToken").abi.function("scaledBalanceOf")
PROXY = load_artifact("AggregatorProxy").abi


def _state_for(world: World) -> ChainState:
    return ChainState(
        routers={d["router"]: {"uniswap-v2": d["factory"]} for d in world.dexes.values()},
        factories={d["factory"]: UNISWAP_V2 for d in world.dexes.values()},
        lending_pool=world.aave["pool"],
    )


async def _loaded_state(rpc, world: World) -> ChainState:
    state = _state_for(world)
    assert await load_pools(rpc, state) == 10
    await load_lending(rpc, state, from_block=0)
    await load_feeds(rpc, state, state.feed_assets)
    head = await rpc.call("eth_getBlockByNumber", ["latest", False])
    state.block_number, state.block_hash = int(head["number"], 16), head["hash"]
    return state


async def _chain_reserves(rpc, pools: list[str]) -> dict[str, tuple[int, int]]:
    fn = PAIR.function("getReserves")
    answers = await rpc.batch(
        [("eth_call", [{"to": p, "data": "0x" + fn.encode().hex()}, "latest"]) for p in pools]
    )
    return {
        p: fn.decode_output(bytes.fromhex(a[2:]))[:2] for p, a in zip(pools, answers, strict=True)
    }


async def _mine_block(rpc, state: ChainState) -> None:
    """Mine one block and apply its logs, as the watcher's head source would."""
    await rpc.call("evm_mine")
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    raw_logs = await rpc.call(
        "eth_getLogs",
        [{"blockHash": block["hash"], "topics": [["0x" + t.hex() for t in STATE_TOPICS]]}],
    )
    changes = state.apply_block(
        int(block["number"], 16),
        block["hash"],
        [Log.from_rpc(r) for r in raw_logs],
        int(block["timestamp"], 16),
    )
    assert changes.malformed == 0


async def _send_swaps(rpc, traffic: Traffic, state: ChainState, count: int) -> None:
    reserves = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
    block = await rpc.call("eth_getBlockByNumber", ["latest", False])
    base_fee = int(block["baseFeePerGas"], 16)
    for _ in range(count):
        signed, _ = traffic.swap(reserves, base_fee)
        await rpc.call("eth_sendRawTransaction", [signed.raw_hex])


async def test_reserves_from_logs_equal_get_reserves_after_every_block(devnet_factory):
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        assert await _chain_reserves(rpc, list(state.pools)) == {
            a: (p.reserve0, p.reserve1) for a, p in state.pools.items()
        }
        traffic = Traffic(world, seed=7)
        await traffic.sync_nonces(rpc)
        for _ in range(12):
            await _send_swaps(rpc, traffic, state, count=6)
            await _mine_block(rpc, state)
            tracked = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
            assert await _chain_reserves(rpc, list(state.pools)) == tracked


async def test_a_state_loaded_blocks_ago_catches_up_with_the_logs_since(devnet_factory):
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        traffic = Traffic(world, seed=13)
        await traffic.sync_nonces(rpc)
        for _ in range(3):  # blocks the state does not see (the bot is still starting)
            await _send_swaps(rpc, traffic, state, count=4)
            await rpc.call("evm_mine")
        await rpc.call("evm_mine")  # and one without a swap
        head = await rpc.call("eth_getBlockByNumber", ["latest", False])
        assert await catch_up(rpc, state, int(head["number"], 16), head["hash"]) == 3
        assert (state.block_number, state.block_hash) == (int(head["number"], 16), head["hash"])
        tracked = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
        assert await _chain_reserves(rpc, list(state.pools)) == tracked


async def test_reorg_rolls_back_and_the_new_branch_applies(devnet_factory):
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        before = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
        fork_point = state.block_number
        snapshot = await rpc.call("evm_snapshot")
        traffic = Traffic(world, seed=11)
        await traffic.sync_nonces(rpc)
        for _ in range(3):
            await _send_swaps(rpc, traffic, state, count=5)
            await _mine_block(rpc, state)
        assert {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()} != before

        assert await rpc.call("evm_revert", [snapshot])
        changes = state.rollback_to(fork_point)
        assert state.block_number == fork_point
        assert {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()} == before
        assert changes.pools, "the rollback reports which pools it restored"

        other = Traffic(world, seed=99)
        await other.sync_nonces(rpc)
        for _ in range(2):
            await _send_swaps(rpc, other, state, count=4)
            await _mine_block(rpc, state)
        tracked = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
        assert await _chain_reserves(rpc, list(state.pools)) == tracked


async def _chain_account_data(rpc, pool: str, user: str) -> tuple[int, ...]:
    fn = POOL.function("getUserAccountData")
    raw = await rpc.call("eth_call", [{"to": pool, "data": "0x" + fn.encode(user).hex()}, "latest"])
    return fn.decode_output(bytes.fromhex(raw[2:]))


async def _scaled(rpc, token: str, user: str) -> int:
    raw = await rpc.call(
        "eth_call", [{"to": token, "data": "0x" + SCALED.encode(user).hex()}, "latest"]
    )
    return SCALED.decode_output(bytes.fromhex(raw[2:]))[0]


async def test_aave_positions_and_health_follow_feed_updates_borrows_and_reorgs(devnet_factory):
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    pool = world.aave["pool"]
    borrowers = world.aave["borrowers"]
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        for borrower in borrowers:
            user = borrower["address"]
            position = state.positions[user]
            for symbol, reserve in world.aave["reserves"].items():
                asset = world.tokens[symbol]["address"]
                assert position.scaled_collateral.get(asset, 0) == await _scaled(
                    rpc, reserve["a_token"], user
                )
                assert position.scaled_debt.get(asset, 0) == await _scaled(
                    rpc, reserve["variable_debt_token"], user
                )
            local = account_data(position, state.reserves, state.prices, state.timestamp)
            assert (
                local.total_collateral_base,
                local.total_debt_base,
                local.available_borrows_base,
                local.current_liquidation_threshold,
                local.ltv,
                local.health_factor,
            ) == await _chain_account_data(rpc, pool, user)

        # An oracle transmits ETH 5% down to the aggregator: the proxy's answer, and positions'
        # health, follow from the aggregator's AnswerUpdated log.
        feed = world.feeds["WETH"]["address"]
        new_answer = world.feeds["WETH"]["answer"] * 95 // 100
        await _transmit(rpc, world, new_answer)
        await _mine_block(rpc, state)
        assert state.feeds[feed].answer == new_answer
        assert state.feeds[feed].round_id == (1 << 64) | 2 == await _proxy_round(rpc, feed)
        under_water = 0
        for borrower in borrowers:
            user = borrower["address"]
            local = account_data(
                state.positions[user], state.reserves, state.prices, state.timestamp
            )
            chain = await _chain_account_data(rpc, pool, user)
            assert local.health_factor == chain[5]
            under_water += local.health_factor < 10**18
        assert under_water >= 1

        # A healthy borrower borrows more a day later; a reorg takes the block away again.
        healthy = borrowers[-1]
        user, debt = healthy["address"], world.tokens[healthy["debt"]]["address"]
        before = (state.positions[user], state.reserves[debt], state.timestamp)
        await rpc.call("evm_increaseTime", [86_400])
        data = POOL.function("borrow").encode(debt, healthy["debt_amount"] // 10, 2, 0, user)
        await rpc.call("anvil_impersonateAccount", [user])
        await rpc.call(
            "eth_sendTransaction",
            [{"from": user, "to": pool, "data": "0x" + data.hex(), "gas": hex(10**6)}],
        )
        await _mine_block(rpc, state)
        local = account_data(state.positions[user], state.reserves, state.prices, state.timestamp)
        assert local == AccountData(*await _chain_account_data(rpc, pool, user))
        assert state.positions[user] != before[0]
        changes = state.rollback_to(state.block_number - 1)
        assert user in changes.users
        assert (state.positions[user], state.reserves[debt], state.timestamp) == before


async def _transmit(rpc, world: World, answer: int, epoch: int = 2) -> None:
    aggregator, data = transmit(world, "WETH", answer, epoch)
    await rpc.call(
        "eth_sendTransaction",
        [
            {
                "from": world.roles["oracle_updater"].address,
                "to": aggregator,
                "data": "0x" + data.hex(),
            }
        ],
    )


async def _proxy_round(rpc, proxy: str) -> int:
    fn = PROXY.function("latestRoundData")
    raw = await rpc.call("eth_call", [{"to": proxy, "data": "0x" + fn.encode().hex()}, "latest"])
    return fn.decode_output(bytes.fromhex(raw[2:]))[0]


async def test_a_proxy_phase_change_moves_the_feed_to_the_new_aggregator(devnet_factory):
    """confirmAggregator on the proxy: the state follows the new aggregator's answers (phase 2
    round ids), ignores the old one's, and a reorg restores the old link."""
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    feed = world.feeds["WETH"]
    owner, updater = world.roles["deployer"].address, world.roles["oracle_updater"].address
    deployer = Deployer(world.rpc["http"])
    replacement = deployer.deploy("OffchainAggregator", 1, 2**191 - 1, 8, "ETH / USD", sender=owner)
    signers = [f"0x{i:040x}" for i in range(1, 5)]
    transmitters = [updater] + [f"0x{i:040x}" for i in range(11, 14)]
    deployer.transact(
        "OffchainAggregator",
        replacement,
        "setConfig",
        signers,
        transmitters,
        1,
        1,
        b"",
        sender=owner,
    )
    (_, _, digest) = deployer.call("OffchainAggregator", replacement, "latestConfigDetails")
    deployer.transact(
        "AggregatorProxy", feed["address"], "proposeAggregator", replacement, sender=owner
    )
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        assert state.aggregators == {
            f["aggregator"]: FeedLink(f["address"], 1) for f in world.feeds.values()
        }
        before = state.block_number
        data = PROXY.function("confirmAggregator").encode(replacement)
        await rpc.call(
            "eth_sendTransaction",
            [{"from": owner, "to": feed["address"], "data": "0x" + data.hex()}],
        )
        await _mine_block(rpc, state)
        assert state.aggregators[replacement] == FeedLink(feed["address"], 2)
        assert feed["aggregator"] not in state.aggregators
        await _transmit(rpc, world, 2_500 * 10**8)  # to the old aggregator: the proxy ignores it
        answer = transmit_answer(2_400 * 10**8, bytes(digest), 1)
        await rpc.call(
            "eth_sendTransaction",
            [{"from": updater, "to": replacement, "data": "0x" + answer.hex()}],
        )
        await _mine_block(rpc, state)
        assert state.feeds[feed["address"]].answer == 2_400 * 10**8
        assert state.feeds[feed["address"]].round_id == (2 << 64) | 1
        assert await _proxy_round(rpc, feed["address"]) == (2 << 64) | 1
        state.rollback_to(before)
        assert state.aggregators[feed["aggregator"]] == FeedLink(feed["address"], 1)
        assert state.feeds[feed["address"]].answer == feed["answer"]


async def test_pending_swap_effect_equals_what_the_chain_then_does(devnet_factory):
    devnet = devnet_factory(block_time=None)
    world = devnet.world
    decoder = Decoder({d["router"]: RouterKind.UNISWAP_V2_ROUTER for d in world.dexes.values()})
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        traffic = Traffic(world, seed=5)
        await traffic.sync_nonces(rpc)
        reserves = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
        block = await rpc.call("eth_getBlockByNumber", ["latest", False])
        for _ in range(5):
            signed, plan = traffic.swap(reserves, int(block["baseFeePerGas"], 16))
            tx = await _pending(rpc, signed.raw_hex)
            intent = decoder.decode(tx["to"], bytes.fromhex(tx["input"][2:]), int(tx["value"], 16))
            effect = state.after(intent)
            assert list(effect.pools) == [plan.pair]
            predicted: Pool = state.pools_after(effect)[plan.pair]
            assert state.pools[plan.pair] != predicted, "the overlay leaves the state untouched"
            await _mine_block(rpc, state)
            assert state.pools[plan.pair] == predicted
            reserves = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}


async def _pending(rpc, raw_hex: str) -> dict:
    tx_hash = await rpc.call("eth_sendRawTransaction", [raw_hex])
    return await rpc.call("eth_getTransactionByHash", [tx_hash])


def test_pending_transmit_moves_prices_only_in_the_overlay():
    feed, aggregator, asset = "0x" + "fe" * 20, "0x" + "a0" * 20, "0x" + "aa" * 20
    state = ChainState(feed_assets={feed: asset})
    state.set_feed(FeedAnswer(feed, (1 << 64) | 3, 3000_0000_0000, 1))
    state.link_aggregator(aggregator, FeedLink(feed, 1))
    calldata = transmit_answer(2850_0000_0000, bytes(16), 4)
    decoder = Decoder(feeds=state.aggregators.__contains__)
    effect = state.after(decoder.decode(aggregator, calldata))
    assert state.prices_after(effect) == {asset: 2850_0000_0000}
    assert effect.feeds[feed].round_id == (1 << 64) | 4
    assert state.prices == {asset: 3000_0000_0000}
    truncated = decoder.decode(aggregator, calldata[:-1])
    assert truncated is None and state.after(truncated).empty, "truncated calldata: no effect"
    elsewhere = decoder.decode("0x" + "01" * 20, calldata)
    assert elsewhere is None and state.after(elsewhere).empty, "an untracked aggregator has none"
    to_proxy = decoder.decode(feed, calldata)
    assert to_proxy is None, "transmits go to the aggregator; the proxy has no transmit"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollback_restores_exactly_what_blocks_changed(seed):
    """Random Sync sequences over a few pools, rolled back to a random block, equal a replay."""
    rng = random.Random(seed)
    addresses = ["0x" + f"{i:040x}" for i in range(1, 6)]
    sync = artifacts.load("UniswapV2Pair").abi.event("Sync").topic0

    def fresh() -> ChainState:
        state = ChainState()
        for a in addresses:
            state.add_pool("0xfac", Pool(a, "0x" + "01" * 20, "0x" + "02" * 20, 1000, 1000))
        return state

    blocks = []
    for number in range(1, 11):
        logs = [
            Log(
                rng.choice(addresses),
                (sync,),
                rng.randrange(1, 10**20).to_bytes(32, "big")
                + rng.randrange(1, 10**20).to_bytes(32, "big"),
                number,
                "0x" + f"{number:064x}",
                "0x" + "00" * 32,
                0,
                i,
            )
            for i in range(rng.randrange(0, 4))
        ]
        blocks.append((number, "0x" + f"{number:064x}", logs))
    state = fresh()
    for block in blocks:
        state.apply_block(*block)
    ancestor = rng.randrange(0, 10)
    state.rollback_to(ancestor)
    replay = fresh()
    for block in blocks[:ancestor]:
        replay.apply_block(*block)
    assert state.pools == replay.pools and state.block_number == ancestor
