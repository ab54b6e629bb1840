"""The public keeper-tx sender on a devnet: a tx that the block does not take is replaced with
bumps of at least 12.5% on both fees and lands once."""

from __future__ import annotations

import itertools

from devnet_txs import transmit

from chain.node import ANVIL_DEV_KEYS
from chain.rpc import connect, eth_get_block
from execution.ledger import Ledger, PublicTxStatus
from execution.nonces import NonceManager
from execution.sender import FeePolicy, TxEventKind, TxRequest, TxSender, bump
from execution.signer import LocalSigner

GWEI = 10**9


def test_bump_is_at_least_an_eighth_and_one_wei():
    assert bump(8, 1_250) == 9
    assert bump(1, 1_250) == 2
    assert bump(10**9, 1_250) == 1_125_000_000
    assert all(bump(fee, 1_250) * 8 >= fee * 9 for fee in range(1, 2_000))


async def test_an_underpriced_keeper_tx_is_replaced_with_bumps_and_mined(devnet_factory, tmp_path):
    world = devnet_factory(block_time=None).world
    aggregator, update = transmit(world, "WETH", 2_900 * 10**8)
    updater = LocalSigner(world.roles["oracle_updater"].private_key)
    competitors = [LocalSigner(ANVIL_DEV_KEYS[i]) for i in (7, 8)]
    async with connect(world.rpc["http"]) as rpc:
        ledger = Ledger.open(tmp_path / "ledger.db")
        sender = TxSender(
            rpc,
            updater,
            NonceManager(updater.address),
            ledger,
            chain_id=world.chain_id,
            policy=FeePolicy(
                priority_fee_wei=GWEI // 10, max_fee_cap_wei=100 * GWEI, bump_after_blocks=2
            ),
        )
        await sender.recover()
        head = await eth_get_block(rpc, "latest")
        request = TxRequest("oracle:test:1", aggregator, update)
        first = await sender.send(request, block=head.number, base_fee=head.base_fee)
        assert first.max_priority_fee_per_gas == GWEI // 10
        # Blocks hold two 21000-gas transfers and not our tx beside them: competitors tipping
        # 0.125 gwei fill every block until our tip outbids them.
        await rpc.call("evm_setBlockGasLimit", [hex(42_000 + first.payload.gas - 1)])
        competitor_nonces = {c.address: 0 for c in competitors}
        for c in competitors:
            competitor_nonces[c.address] = int(
                await rpc.call("eth_getTransactionCount", [c.address, "latest"]), 16
            )
        mined_in = None
        events = []
        for _ in range(12):
            for c in competitors:
                signed = c.sign_eip1559(
                    chain_id=world.chain_id,
                    nonce=competitor_nonces[c.address],
                    to=c.address,
                    data=b"",
                    value=0,
                    gas=21_000,
                    max_fee_per_gas=GWEI // 8 + 1_000,
                    max_priority_fee_per_gas=GWEI // 8,
                )
                competitor_nonces[c.address] += 1
                await rpc.call("eth_sendRawTransaction", [signed.raw_hex])
            await rpc.call("evm_mine")
            head = await eth_get_block(rpc, "latest")
            new = await sender.on_block(head)
            events += new
            if any(e.kind == TxEventKind.MINED for e in new):
                mined_in = head.number
                break
        assert mined_in is not None, [(e.kind, e.detail) for e in events]
        kinds = [e.kind for e in events]
        assert kinds.count(TxEventKind.REPLACED) == 2 and kinds[-1] == TxEventKind.MINED
        rows = ledger._read(  # every signed tx, in sending order
            "SELECT hash, max_fee_per_gas, max_priority_fee_per_gas, status, nonce"
            " FROM public_txs ORDER BY created_at"
        )
        assert [r[3] for r in rows] == ["replaced", "replaced", "mined"]
        assert len({r[4] for r in rows}) == 1
        for older, newer in itertools.pairwise(rows):
            assert int(newer[1]) * 8 >= int(older[1]) * 9
            assert int(newer[2]) * 8 >= int(older[2]) * 9
        block = await rpc.call("eth_getBlockByNumber", [hex(mined_in), False])
        assert rows[-1][0] in block["transactions"]
        assert [await rpc.call("eth_getTransactionReceipt", [r[0]]) for r in rows[:-1]] == [
            None,
            None,
        ]
        assert sender.tracked == ()
        assert ledger.pending_public_txs() == []
        assert PublicTxStatus.MINED.value == rows[-1][3]
        ledger.close()
