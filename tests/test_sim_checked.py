"""``[simulation] final_check``: a second backend confirms every bundle the first one passes,
its result is the verdict, and a difference is counted."""

from __future__ import annotations

import pytest
from test_fork_simulator import wait_receipt
from test_sim_differential import _backrun, _holders, _tokens, _victim

from anvil.world import World
from chain.rpc import Rpc, eth_send_raw_transaction
from mevbot.config import ConfigError, load_config
from simulation.backends import open_simulator
from simulation.checked import CheckedSimulator


async def test_the_final_check_decides_and_counts_what_the_first_saw_differently(
    world: World, upstream: Rpc
) -> None:
    checked = CheckedSimulator(
        open_simulator("revm", world.rpc["http"]), open_simulator("anvil", world.rpc["http"])
    )
    await checked.start()
    try:
        bundle = [await _victim(world, upstream, 1, "WETH/USDC"), _backrun(world, "WETH/USDC")]
        agreed = await checked.simulate(bundle, watch=_holders(world), tokens=_tokens(world))
        assert agreed.success and (checked.confirmed, checked.mismatches) == (1, 0)
        # A swap lands on the pool and only the final check moves to its block: the first
        # simulator's state is one block behind, as a drifted cache would be.
        swap = await _victim(world, upstream, 2, "WETH/USDC", 5 * 10**18)
        await wait_receipt(upstream, await eth_send_raw_transaction(upstream, swap))
        head = int(await upstream.call("eth_blockNumber"), 16)
        await checked.final.on_new_head(head)
        bundle = [await _victim(world, upstream, 1, "WETH/USDC"), _backrun(world, "WETH/USDC")]
        result = await checked.simulate(bundle, watch=_holders(world), tokens=_tokens(world))
        assert (checked.confirmed, checked.mismatches) == (2, 1)
        final = await checked.final.simulate(bundle, watch=_holders(world), tokens=_tokens(world))
        assert result == final and result.block_number == head + 1
    finally:
        await checked.close()


def test_a_final_check_on_the_backend_itself_is_refused() -> None:
    environ = {"MEVBOT_SIMULATION__BACKEND": "revm", "MEVBOT_SIMULATION__FINAL_CHECK": "revm"}
    with pytest.raises(ConfigError) as refused:
        load_config(network="devnet", environ=environ)
    assert "final_check 'revm' is the backend itself" in str(refused.value)
    environ["MEVBOT_SIMULATION__FINAL_CHECK"] = "anvil"
    assert load_config(network="devnet", environ=environ).simulation.final_check == "anvil"
