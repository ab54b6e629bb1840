"""The in-process backend: revm (pyrevm) forked from the upstream RPC, same interface and results.

pyrevm 0.3.7 runs a call (``message_call``) inside one open journal and leaves out the
transaction-level work, so this module does it: the node's validity checks (nonce, fee cap,
funds, gas limit), then gas charged to the sender at the effective price, the nonce bumped, the
tip owed to the coinbase. A bundle runs inside one journal checkpoint, reverted at the end;
the fork cache stays warm for the next bundle.

Known difference from a node: pyrevm never ends a transaction inside the journal, so accounts
and slots that an earlier tx of the same bundle touched are warm (and SSTORE sees the bundle's
original values) for the later txs: a later tx that re-touches the same state uses a different
gas than on chain. Measured on the devnet (tests/test_sim_differential.py): a V2 backrun 2,900
low, the second backrun of a two-victim bundle 32,700 low, a liquidation behind its oracle
update 16,500 high (SSTORE gas and refunds priced against the values at the bundle's start).
The first tx of a bundle, and txs touching disjoint state, are exact; token amounts and success
always are.
pyrevm offers no cold write into its cache (``insert_account_storage`` goes through the
journal), and ``EVM.commit()`` between txs does not make the next tx's gas exact either (the
same 2,900 on the V2 backrun, and it would write the bundle into the cache for good), so this
cannot be fixed from Python; 0.3.7 is the newest pyrevm on PyPI. The EIP-7623 calldata floor
(Prague) is applied here: pyrevm's revm predates it. Also: ``BASEFEE``/``GASLIMIT`` read 0
and 2**64-1 inside calls (pyrevm sets them so), contract creation and access-list txs are
refused (pyrevm keeps access-list accounts warm for good), and pyrevm fetches fork state
synchronously and uninterruptibly, so the upstream is probed with a timeout before each fork.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from eth_utils import keccak
from pyrevm import EVM, AccountInfo, CfgEnv, Env, TxEnv
from pyrevm import BlockEnv as RevmBlockEnv

from chain.errors import ChainError
from chain.rpc import connect, eth_chain_id, eth_get_block
from simulation.balances import (
    READER_ADDRESS,
    READER_CODE,
    READER_SENDER,
    BalanceQuery,
    assemble,
    balance_query,
)
from simulation.prepared import PreparedTx, prepare
from simulation.simulator import (
    BlockEnv,
    SimBlock,
    SimCall,
    SimLog,
    SimResult,
    SimulationError,
    TxOutcome,
    UpstreamSimulator,
    failure_reason,
    resolve_block,
)

_REVERT = re.compile(r"^Revert \{ gas_used: (\d+), output: 0x([0-9a-fA-F]*) \}")
_HALT = re.compile(r"^Halt \{ reason: (.*), gas_used: (\d+) \}")


def calldata_floor(data: bytes) -> int:
    """EIP-7623 (Prague): a tx pays at least 21,000 + 10 per calldata token (zero byte 1 token,
    other bytes 4). The revm inside pyrevm 0.3.7 predates Prague, so the floor is applied here."""
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


class RevmSimulator(UpstreamSimulator):
    """``await sim.start()``, ``await sim.simulate(...)``, ``await sim.on_new_head(n)``: the same
    contract as :class:`simulation.fork.AnvilForkSimulator`, executed in this process."""

    kind = "revm simulator"

    def _init_backend(self) -> None:
        self._evm: EVM | None = None
        self._chain_id = 0

    async def start(self) -> None:
        await self._fork("latest")

    async def on_new_head(self, block_number: int) -> None:
        if self._head is None or block_number > self._head.number:
            await self._fork(block_number)

    async def close(self) -> None:
        self._evm = None
        self._head = None

    async def simulate(
        self,
        txs: Sequence[bytes | SimCall],
        *,
        block: SimBlock | None = None,
        watch: Sequence[str] = (),
        tokens: Sequence[str] = (),
    ) -> SimResult:
        env = resolve_block(
            self.head, block, block_interval=self.block_interval, coinbase=self.coinbase
        )
        prepared = prepare(txs, env)
        query = balance_query(watch, tokens, env.coinbase)
        evm = self._evm
        assert evm is not None
        evm.set_block_env(
            RevmBlockEnv(
                number=env.number,
                coinbase=env.coinbase,
                timestamp=env.timestamp,
                basefee=env.base_fee,
                gas_limit=env.gas_limit,
                prevrandao=bytes(32),
            )
        )
        checkpoint = evm.snapshot()
        try:
            before = self._read(evm, query)
            outcomes, tips = [], 0
            for index, tx in enumerate(prepared):
                outcome, tip = self._execute(evm, index, tx, env)
                outcomes.append(outcome)
                tips += tip
            after = self._read(evm, query)
        except RuntimeError as error:  # pyrevm reports fork fetch failures this way
            raise SimulationError(f"revm failed: {error}") from None
        finally:
            evm.revert(checkpoint)
        return assemble(outcomes, query, before, after, env, coinbase_tips=tips)

    # -- fork -----------------------------------------------------------------------------
    async def _fork(self, block: int | str) -> None:
        try:
            async with connect(self.upstream_url, timeout=self.call_timeout) as upstream:
                head = await eth_get_block(upstream, block)
                chain_id = self._chain_id or await eth_chain_id(upstream)
        except ChainError as error:
            raise SimulationError(f"upstream {self.upstream_url} unreachable: {error}") from None
        if head is None:
            raise SimulationError(f"upstream has no block {block}")
        evm = EVM(
            env=Env(cfg=CfgEnv(chain_id=chain_id)),
            fork_url=self.upstream_url,
            fork_block=head.hash,
        )
        evm.insert_account_info(
            READER_ADDRESS, AccountInfo(code=READER_CODE, code_hash=keccak(READER_CODE))
        )
        self._evm, self._head, self._chain_id = evm, head, chain_id

    # -- one bundle -----------------------------------------------------------------------
    @staticmethod
    def _read(evm: EVM, query: BalanceQuery) -> bytes:
        checkpoint = evm.snapshot()
        try:
            evm.set_tx_env(TxEnv())
            return bytes(
                evm.message_call(READER_SENDER, READER_ADDRESS, query.calldata, is_static=True)
            )
        finally:
            evm.revert(checkpoint)

    def _execute(
        self, evm: EVM, index: int, tx: PreparedTx, env: BlockEnv
    ) -> tuple[TxOutcome, int]:
        """Run one tx inside the bundle's checkpoint; ``(outcome, tip owed to the coinbase)``.

        The tip is returned, not credited: the coinbase account lives outside the checkpoint in
        pyrevm's journal, so crediting it there would survive the revert.
        """
        if tx.to is None or tx.access_list:
            raise SimulationError(
                f"tx {index}: contract creation and access lists need the anvil backend"
            )
        sender = evm.basic(tx.sender)
        self._validate(index, tx, env, sender)
        price = tx.effective_gas_price(env.base_fee)
        evm.reset_transient_storage()
        evm.set_tx_env(TxEnv())
        return_data, success, halt = self._call(evm, index, tx, price)
        result = evm.result
        gas_used = max(result.gas_used, calldata_floor(tx.data))
        logs = tuple(
            SimLog(
                log.address.lower(), tuple(bytes.fromhex(t[2:]) for t in log.topics), log.data[1]
            )
            for log in (result.logs if success else ())
        )
        sender = evm.basic(tx.sender)
        evm.insert_account_info(
            tx.sender,
            AccountInfo(
                balance=sender.balance - gas_used * price,
                nonce=sender.nonce + 1,
                code_hash=sender.code_hash,
                code=sender.code,
            ),
        )
        outcome = TxOutcome(
            success=success,
            revert_reason="" if success else failure_reason(return_data, halt),
            gas_used=gas_used,
            logs=logs,
            return_data=return_data,
        )
        return outcome, gas_used * (price - env.base_fee)

    @staticmethod
    def _validate(index: int, tx: PreparedTx, env: BlockEnv, sender: AccountInfo) -> None:
        """The checks a node makes before a tx may enter a block."""
        if tx.nonce is not None and tx.nonce != sender.nonce:
            raise SimulationError(f"tx {index}: nonce {tx.nonce}, account nonce {sender.nonce}")
        if tx.max_fee < env.base_fee:
            raise SimulationError(
                f"tx {index}: max fee per gas {tx.max_fee} below base fee {env.base_fee}"
            )
        if tx.priority_fee > tx.max_fee:
            raise SimulationError(f"tx {index}: priority fee above max fee")
        if tx.gas > env.gas_limit:
            raise SimulationError(f"tx {index}: gas {tx.gas} above block gas limit")
        if sender.balance < tx.gas * tx.max_fee + tx.value:
            raise SimulationError(f"tx {index}: insufficient funds for gas * price + value")

    @staticmethod
    def _call(evm: EVM, index: int, tx: PreparedTx, price: int) -> tuple[bytes, bool, str]:
        """``(return data, success, halt reason)`` of the call."""
        assert tx.to is not None
        try:
            output = evm.message_call(tx.sender, tx.to, tx.data, tx.value, tx.gas, price)
            return bytes(output), True, ""
        except RuntimeError as error:
            message = str(error)
        if revert := _REVERT.match(message):
            return bytes.fromhex(revert.group(2)), False, "execution reverted"
        if halt := _HALT.match(message):
            return b"", False, halt.group(1)
        raise SimulationError(f"tx {index}: invalid: {message}")
