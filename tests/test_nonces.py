"""Nonce manager: bundles that land, miss, get reorged out, several in flight; and a real chain."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anvil.devnet import Devnet
from chain.rpc import connect
from execution.nonces import (
    InMemoryNonceStore,
    NonceManager,
    NonceState,
    NonceUnknown,
    Renumbered,
    Reservation,
)
from execution.signer import LocalSigner

ADDRESS = "0x" + "ab" * 20


async def manager_at(chain_nonce: int, block: int = 100) -> NonceManager:
    manager = NonceManager(ADDRESS)
    await manager.on_block(block, chain_nonce)
    return manager


async def test_reserve_needs_a_chain_nonce() -> None:
    with pytest.raises(NonceUnknown):
        await NonceManager(ADDRESS).reserve(101, 101)


async def test_landed_bundle_is_confirmed() -> None:
    manager = await manager_at(7)
    assert await manager.reserve(101, 103, "arb-1") == 7
    sync = await manager.on_block(101, 8)
    assert [(r.nonce, r.key, r.confirmed_at) for r in sync.confirmed] == [(7, "arb-1", 101)]
    assert sync.released == () and sync.renumbered == ()
    assert await manager.reserve(102, 102, "arb-2") == 8


async def test_missed_bundle_is_released_only_after_its_last_target() -> None:
    manager = await manager_at(7)
    assert await manager.reserve(101, 102, "arb-1") == 7
    assert (await manager.on_block(101, 7)).released == ()  # target 102 still ahead
    sync = await manager.on_block(102, 7)
    assert [r.key for r in sync.released] == ["arb-1"]
    assert await manager.reserve(103, 103, "arb-2") == 7  # the nonce is reused


async def test_two_in_flight_and_the_first_misses() -> None:
    manager = await manager_at(7)
    assert await manager.reserve(101, 101, "first") == 7
    assert await manager.reserve(101, 103, "second") == 8
    assert await manager.reserve(102, 104, "third") == 9
    sync = await manager.on_block(101, 7)
    assert [r.key for r in sync.released] == ["first"]
    # Nonce 8 can never land while 7 is unused: re-sign the others one lower.
    assert sync.renumbered == (Renumbered("second", 8, 7), Renumbered("third", 9, 8))
    assert await manager.reserve(103, 103, "fourth") == 9
    sync = await manager.on_block(102, 9)  # second and third landed
    assert [r.key for r in sync.confirmed] == ["second", "third"]
    assert [r.nonce for r in (await manager.state()).reserved] == [9]


async def test_two_in_flight_both_land_in_one_block() -> None:
    manager = await manager_at(0)
    assert [await manager.reserve(1, 1, k) for k in ("a", "b")] == [0, 1]
    sync = await manager.on_block(1, 2)
    assert [r.nonce for r in sync.confirmed] == [0, 1]
    assert (await manager.state()).reserved == ()


async def test_reorg_back_reinstates_then_releases_if_it_does_not_land_again() -> None:
    manager = NonceManager(ADDRESS, reorg_grace=2)
    await manager.on_block(100, 7)
    await manager.reserve(101, 101, "arb-1")
    assert [r.nonce for r in (await manager.on_block(101, 8)).confirmed] == [7]
    assert await manager.reserve(102, 102, "arb-2") == 8
    # Block 101 is replaced: the chain nonce is 7 again at the new 101.
    sync = await manager.on_block(101, 7)
    assert [(r.key, r.nonce, r.last_block) for r in sync.reinstated] == [("arb-1", 7, 103)]
    assert [r.nonce for r in (await manager.state()).reserved] == [7, 8]
    assert (await manager.on_block(102, 7)).released[0].key == "arb-2"
    sync = await manager.on_block(103, 7)
    assert [r.key for r in sync.released] == ["arb-1"]
    assert await manager.reserve(104, 104, "arb-3") == 7


async def test_reorg_back_and_the_tx_lands_again() -> None:
    manager = await manager_at(3)
    await manager.reserve(101, 101, "arb")
    await manager.on_block(101, 4)
    await manager.on_block(101, 3)
    sync = await manager.on_block(102, 4)
    assert [r.key for r in sync.confirmed] == ["arb"]
    assert (await manager.state()).reserved == ()


async def test_public_tx_stays_reserved_until_mined() -> None:
    manager = await manager_at(5)
    assert await manager.reserve(101, None, "keeper:oracle") == 5
    assert await manager.reserve(101, 101, "bundle") == 6
    sync = await manager.on_block(101, 5)
    # The bundle missed; the public tx waits (it is in the mempool).
    assert [r.key for r in sync.released] == ["bundle"]
    for block in range(102, 120):
        assert (await manager.on_block(block, 5)).released == ()
    assert (await manager.on_block(120, 6)).confirmed[0].key == "keeper:oracle"


async def test_release_renumbers_the_ones_above() -> None:
    manager = await manager_at(0)
    for key in "abc":
        await manager.reserve(1, 5, key)
    assert await manager.release(1) == (Renumbered("c", 2, 1),)
    assert await manager.release(42) == ()


async def test_chain_nonce_moved_by_someone_else() -> None:
    manager = await manager_at(10)
    await manager.reserve(101, 105, "a")
    sync = await manager.on_block(101, 12)  # another sender used the key twice
    assert [r.nonce for r in sync.confirmed] == [10]
    assert await manager.reserve(102, 102, "b") == 12


class SlowStore(InMemoryNonceStore):
    """Lets another writer in between every load and write, once per write attempt."""

    def __init__(self, interloper: Callable[[], None]) -> None:
        super().__init__()
        self.interloper = interloper
        self.armed = False

    async def compare_and_set(self, expected_version: int, state: NonceState) -> bool:
        if self.armed:
            self.armed = False
            self.interloper()
        return await super().compare_and_set(expected_version, state)


async def test_compare_and_set_retries_after_a_concurrent_write() -> None:
    def other_process_reserves() -> None:
        held = store.state
        store.state = NonceState(
            version=held.version + 1,
            chain_nonce=held.chain_nonce,
            synced_block=held.synced_block,
            reserved=(*held.reserved, Reservation(4, "other", 101, 101)),
        )

    store = SlowStore(other_process_reserves)
    manager = NonceManager(ADDRESS, store)
    await manager.on_block(100, 4)
    store.armed = True
    assert await manager.reserve(101, 101, "mine") == 5
    assert [r.key for r in (await manager.state()).reserved] == ["other", "mine"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=2)),
        min_size=1,
        max_size=30,
    )
)
async def test_reservations_stay_contiguous_from_the_chain_nonce(
    steps: list[tuple[int, int]],
) -> None:
    manager = await manager_at(0, block=0)
    chain_nonce = 0
    for block, (new_reservations, landed) in enumerate(steps, start=1):
        for index in range(new_reservations):
            await manager.reserve(block, block + index, f"{block}-{index}")
        reserved = len((await manager.state()).reserved)
        chain_nonce += min(landed, reserved)
        await manager.on_block(block, chain_nonce)
        state = await manager.state()
        assert [r.nonce for r in state.reserved] == list(
            range(chain_nonce, chain_nonce + len(state.reserved))
        )
        assert all(r.last_block is None or r.last_block > block for r in state.reserved)


async def test_sync_reads_the_chain(devnet_factory: Callable[..., Devnet]) -> None:
    devnet = devnet_factory(block_time=None)
    executor = devnet.world.roles["executor"]
    signer = LocalSigner(executor.private_key)
    manager = NonceManager(signer.address)
    async with connect(devnet.node.http_url) as rpc:
        first = await manager.sync(rpc)
        chain_nonce = int(await rpc.call("eth_getTransactionCount", (signer.address, "latest")), 16)
        assert first.chain_nonce == chain_nonce > 0
        nonce = await manager.reserve(first.block + 1, first.block + 1, "transfer")
        base_fee = int(
            (await rpc.call("eth_getBlockByNumber", ("latest", False)))["baseFeePerGas"], 16
        )
        tx = signer.sign_eip1559(
            chain_id=devnet.world.chain_id,
            nonce=nonce,
            to=devnet.world.roles["keeper"].address,
            data=b"",
            value=1,
            gas=21_000,
            max_fee_per_gas=2 * base_fee + 1,
            max_priority_fee_per_gas=0,
        )
        await rpc.call("eth_sendRawTransaction", (tx.raw_hex,))
        await rpc.call("evm_mine")
        sync = await manager.sync(rpc)
        assert sync.block == first.block + 1
        assert [r.nonce for r in sync.confirmed] == [chain_nonce]
        # A bundle tx never sent for the next block is released once that block is mined.
        await manager.reserve(sync.block + 1, sync.block + 1, "never-sent")
        await rpc.call("evm_mine")
        assert [r.key for r in (await manager.sync(rpc, sync.block + 1)).released] == ["never-sent"]
