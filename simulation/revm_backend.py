"""The in-process backend: revm (pyrevm) forked from the upstream RPC, same interface and results.

pyrevm 0.3.7 runs a call (``message_call``) inside one open journal and leaves out the
transaction-level work: no nonce or fee handling, and accounts and slots stay warm from one call
to the next. To give each tx of a bundle the block semantics anvil gives it, every tx runs
inside a journal checkpoint; its state changes are read back (the touched accounts with
``basic()``, the changed slots from the journal), the checkpoint is reverted — which makes every
account and slot cold again — and the changes are written into the fork cache as the state the
next tx starts from. Gas is charged, the nonce bumped and the tip paid in Python, after the
node's own validity checks (nonce, fee cap, funds). When the bundle is done every write to the
cache is undone, so the warm cache serves the next bundle without refetching.

Limits: the ``BASEFEE`` and ``GASLIMIT`` opcodes read 0 and 2**64-1 inside calls (pyrevm sets
them so); contract creation and access-list txs are refused (pyrevm keeps access-list accounts
warm across calls, which would make gas inexact). pyrevm fetches fork state synchronously and
cannot be interrupted, so the upstream is probed with a timeout before each fork is created.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_utils import keccak
from pyrevm import EVM, AccountInfo, BlockEnv as RevmBlockEnv, CfgEnv, Env, TxEnv

from chain.errors import ChainError
from chain.rpc import connect, eth_chain_id, eth_get_block
from chain.types import BlockHeader
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
    DEFAULT_COINBASE,
    BlockEnv,
    SimBlock,
    SimCall,
    SimLog,
    SimResult,
    SimulationError,
    TxOutcome,
    failure_reason,
    resolve_block,
)

_ACCOUNT = re.compile(
    r"(0x[0-9a-f]{40}): Account \{ info: .*? \}, storage: \{(.*?)\}, status: AccountStatus\(([^)]*)\)"
)
_SLOT = re.compile(
    r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}"
)
_REVERT = re.compile(r"^Revert \{ gas_used: (\d+), output: 0x([0-9a-fA-F]*) \}")
_HALT = re.compile(r"^Halt \{ reason: (.*), gas_used: (\d+) \}")


@dataclass(slots=True)
class _Undo:
    """First-seen values of everything a bundle wrote into the fork cache."""

    accounts: dict[str, AccountInfo] = field(default_factory=dict)
    slots: dict[tuple[str, int], int] = field(default_factory=dict)


class RevmSimulator:
    """``await sim.start()``, ``await sim.simulate(...)``, ``await sim.on_new_head(n)``: the same
    contract as :class:`simulation.fork.AnvilForkSimulator`, executed in this process."""

    def __init__(
        self,
        upstream_url: str,
        *,
        block_interval: int = 12,
        coinbase: str = DEFAULT_COINBASE,
        call_timeout: float = 5.0,
    ) -> None:
        self.upstream_url = upstream_url
        self.block_interval = block_interval
        self.coinbase = coinbase.lower()
        self.call_timeout = call_timeout
        self._evm: EVM | None = None
        self._head: BlockHeader | None = None
        self._chain_id = 0

    @property
    def head(self) -> BlockHeader:
        if self._head is None:
            raise SimulationError("revm simulator not started")
        return self._head

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
        undo = _Undo()
        try:
            before = self._read(evm, query)
            outcomes = [
                self._execute(evm, index, tx, env, undo) for index, tx in enumerate(prepared)
            ]
            after = self._read(evm, query)
        except RuntimeError as error:  # pyrevm reports fork fetch failures this way
            raise SimulationError(f"revm failed: {error}") from None
        finally:
            self._undo(evm, undo)
        return assemble(outcomes, query, before, after, env)

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

    @staticmethod
    def _info(evm: EVM, address: str) -> AccountInfo:
        checkpoint = evm.snapshot()
        try:
            return evm.basic(address)
        finally:
            evm.revert(checkpoint)

    def _execute(
        self, evm: EVM, index: int, tx: PreparedTx, env: BlockEnv, undo: _Undo
    ) -> TxOutcome:
        if tx.to is None or tx.access_list:
            raise SimulationError(
                f"tx {index}: contract creation and access lists need the anvil backend"
            )
        sender = self._info(evm, tx.sender)
        self._validate(index, tx, env, sender)
        price = tx.effective_gas_price(env.base_fee)
        evm.reset_transient_storage()
        evm.set_tx_env(TxEnv())
        checkpoint = evm.snapshot()
        try:
            return_data, success, halt = self._call(evm, index, tx, price)
            result = evm.result
            gas_used = result.gas_used
            logs = tuple(
                SimLog(
                    log.address.lower(),
                    tuple(bytes.fromhex(t[2:]) for t in log.topics),
                    log.data[1],
                )
                for log in (result.logs if success else ())
            )
            accounts, slots = self._changes(evm)
        finally:
            evm.revert(checkpoint)
        for address, info in accounts.items():
            self._write(evm, address, info.balance, info.nonce, info, undo)
        for (address, key), (original, present) in slots.items():
            undo.slots.setdefault((address, key), original)
            evm.insert_account_storage(address, key, present)
        sender = self._info(evm, tx.sender)
        self._write(
            evm, tx.sender, sender.balance - gas_used * price, sender.nonce + 1, sender, undo
        )
        tip = gas_used * (price - env.base_fee)
        if tip:
            coinbase = self._info(evm, env.coinbase)
            self._write(evm, env.coinbase, coinbase.balance + tip, coinbase.nonce, coinbase, undo)
        return TxOutcome(
            success=success,
            revert_reason="" if success else failure_reason(return_data, halt),
            gas_used=gas_used,
            logs=logs,
            return_data=return_data,
        )

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

    @staticmethod
    def _changes(
        evm: EVM,
    ) -> tuple[dict[str, AccountInfo], dict[tuple[str, int], tuple[int, int]]]:
        """Accounts the open checkpoint touched (their present info) and the slots it changed
        (``(original, present)``), read from pyrevm's journal."""
        accounts: dict[str, AccountInfo] = {}
        slots: dict[tuple[str, int], tuple[int, int]] = {}
        for match in _ACCOUNT.finditer(evm.journal_str):
            address, storage, status = match.groups()
            if "Touched" not in status:
                continue
            accounts[address] = evm.basic(address)
            for key, original, present in _SLOT.findall(storage):
                if original != present:
                    slots[(address, int(key))] = (int(original), int(present))
        return accounts, slots

    def _write(
        self, evm: EVM, address: str, balance: int, nonce: int, base: AccountInfo, undo: _Undo
    ) -> None:
        if address not in undo.accounts:
            undo.accounts[address] = self._info(evm, address)
        evm.insert_account_info(
            address,
            AccountInfo(balance=balance, nonce=nonce, code_hash=base.code_hash, code=base.code),
        )

    @staticmethod
    def _undo(evm: EVM, undo: _Undo) -> None:
        for (address, key), value in undo.slots.items():
            evm.insert_account_storage(address, key, value)
        for address, info in undo.accounts.items():
            evm.insert_account_info(address, info)
