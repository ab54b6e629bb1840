"""The in-process backend: revm (pyrevm) over a fork cache kept warm across heads.

pyrevm 0.3.7 runs a call (``message_call``) inside one open journal and leaves out the
transaction-level work, so this module does it: the node's validity checks (nonce, fee cap,
funds, gas limit), then gas charged to the sender at the effective price, the nonce bumped, the
tip credited to the coinbase (which matters for gas too: a later transfer to a coinbase that is
still empty pays for a new account).

Gas is exact for every tx of a bundle, not only the first. pyrevm never ends a transaction: what
one tx touched stays warm for the next, and SSTORE would price against the bundle's starting
values. So each tx runs in its own journal checkpoint; its changes are read from the journal,
the checkpoint is reverted (the journal forgets the accounts and slots it loaded: cold again)
and the changes are written into the fork cache as if they were chain state
(:mod:`simulation.revm_state`). When the bundle ends, the cache's replaced values are put back.
What each bundle prefix did is remembered for the head (outcome and changes), so a bundle that
extends one simulated before (a block's bundle grows by a victim and its backrun at a time)
writes the prefix's changes again instead of running it. Checked against anvil and the node in
``tests/test_sim_differential.py``.

The cache stays warm across heads: each new head's changes come from the upstream's prestate
diff traces and are written into the cache (:class:`simulation.fork_warm.Follower`, as the warm
anvil fork does), and a sample of reads is compared with the upstream at every head; a drift, a
reorg, a gap of more than ``max_gap`` blocks or an upstream without diff traces forks again at
the head (``warm.heads_reset``). The move runs in the background (``on_new_head`` waits for it
up to ``warm_timeout``): bundles keep running on the last head reached while a slow upstream
traces, and a trace slower than ``trace_timeout`` is asked for again. What the cache has not
fetched yet it fetches at the block it was forked at, which is right because every later
change was written; if the upstream no longer serves that block (a pruning node), the bundle
forks again at the head and runs once more.

pyrevm fetches fork state synchronously, holding the event loop, with no timeout of its own: it
forks from a :class:`simulation.fetch_guard.FetchGuard` child process, which answers an error
when the upstream takes longer than ``fetch_timeout`` seconds, so a stalled upstream costs a
failed simulation, not a frozen bot. The state bundles read is fetched once at start
(``warmup``).

Also: the EIP-7623 calldata floor (Prague) is applied here, because pyrevm's revm predates it;
``BASEFEE``/``GASLIMIT`` read 0 and 2**64-1 inside calls (pyrevm sets them so); contract creation
and access-list txs are refused (pyrevm keeps access-list accounts warm for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from typing import Any

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
from simulation.fetch_guard import GUARD_ERROR, FetchGuard
from simulation.fork_warm import Advance, Probe, WarmFork
from simulation.prepared import PreparedTx, prepare
from simulation.revm_state import (
    FETCH_FAILED,
    CallChanges,
    Undo,
    call_changes,
    cold_basic,
    fetch_failure,
    read_probes,
    restore,
    settle,
    write_state,
)
from simulation.simulator import (
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

_REVERT = re.compile(r"^Revert \{ gas_used: (\d+), output: 0x([0-9a-fA-F]*) \}")
_HALT = re.compile(r"^Halt \{ reason: (.*), gas_used: (\d+) \}")
MAX_WARMUP_CALLS = 2_000
MAX_SETTLED = 1_024  # bundle prefixes remembered per head


class _FetchFailed(Exception):
    """pyrevm could not fetch state from the upstream at the cache's fork block."""


def calldata_floor(data: bytes) -> int:
    """EIP-7623 (Prague): a tx pays at least 21,000 + 10 per calldata token (zero byte 1 token,
    other bytes 4). The revm inside pyrevm 0.3.7 predates Prague, so the floor is applied here."""
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


class RevmSimulator(WarmFork):
    """``await sim.start()``, ``await sim.simulate(...)``, ``await sim.on_new_head(n)``: the same
    contract as :class:`simulation.fork.AnvilForkSimulator`, executed in this process. Following
    heads: see :class:`simulation.fork_warm.WarmFork` (its options pass through)."""

    kind = "revm simulator"

    def __init__(
        self,
        upstream_url: str,
        *,
        fetch_timeout: float = 2.0,
        trace_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(upstream_url, **options)
        # Forking again costs every fetch anew, each holding the event loop, so a slow trace is
        # waited for (up to trace_timeout, in the background: on_new_head waits warm_timeout)
        # and then tried again from the same head.
        self.head_wait = self.warm.warm_timeout
        self.warm.warm_timeout = trace_timeout
        self.warm.retry_on_timeout = True
        self.fetch_timeout = fetch_timeout
        self._target = 0  # the newest head announced
        self._mover: asyncio.Task[None] | None = None
        self._guard: FetchGuard | None = None
        self.restarts = 0  # fetch guards started again after one died
        self._evm: EVM | None = None
        self._chain_id = 0
        self._anchor = 0  # the block the cache fetches at
        self._lock = asyncio.Lock()
        # What each bundle prefix did on the current head: a block's bundle grows by a victim
        # and its backrun at a time, and each simulation would run the whole prefix again.
        self._settled: dict[tuple[object, ...], tuple[TxOutcome, CallChanges]] = {}
        self._settled_at = ""  # the head hash they belong to
        self.reused_txs = 0  # txs of bundle prefixes written from memory instead of run

    async def start(self) -> None:
        await self._fork("latest")
        evm = self._evm
        assert evm is not None
        read_probes(evm, self._hot_probes()[:MAX_WARMUP_CALLS])

    async def on_new_head(self, block_number: int) -> None:
        """Move the cache to upstream block ``block_number`` (older or equal numbers ignored).

        The move runs in the background; this waits for it up to ``warm_timeout`` (a trace
        usually takes milliseconds) and bundles meanwhile run on the last head reached. A move
        that failed (the upstream unreachable for a new fork) raises here, once."""
        if self._head is None or block_number <= self._head.number:
            return
        self._target = max(self._target, block_number)
        mover = self._mover
        if mover is not None and mover.done():
            self._mover = None
            if (error := mover.exception()) is not None:
                raise error
        if self._mover is None:
            self._mover = asyncio.create_task(self._follow(), name="revm-follow-heads")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._mover), self.head_wait)

    async def _follow(self) -> None:
        """Move the cache until it reaches the newest head announced."""
        while self._target > self.head.number:
            target = self._target
            async with self._lock:
                if self._can_stay_warm(target):
                    try:
                        head = await self.warm.move(
                            self.head, target, self._write, self._read, self._hot_probes()
                        )
                    except RuntimeError:  # pyrevm could not fetch what a write needed
                        head = None  # the cache may be half written: fork again
                    if head is not None:  # moved, or still at its head after a slow trace
                        continue
                await self._fork(target)

    def _can_stay_warm(self, block_number: int) -> bool:
        return (
            self.keep_warm
            and not self.warm.warm_unavailable
            and block_number - self.head.number <= self.max_gap
        )

    async def _write(self, moved: Advance) -> None:
        assert self._evm is not None
        write_state(self._evm, moved.values)
        self._head = moved.head  # in the same step: a bundle never sees one without the other

    async def _read(self, probes: Sequence[Probe]) -> list[Any]:
        assert self._evm is not None
        return read_probes(self._evm, probes)

    async def close(self) -> None:
        if self._mover is not None:
            self._mover.cancel()
            with contextlib.suppress(asyncio.CancelledError, SimulationError):
                await self._mover
            self._mover = None
        self._evm = None
        self._head = None
        await self._upstream.close()
        if self._guard is not None:
            await self._guard.stop()
            self._guard = None

    async def simulate(
        self,
        txs: Sequence[bytes | SimCall],
        *,
        block: SimBlock | None = None,
        watch: Sequence[str] = (),
        tokens: Sequence[str] = (),
    ) -> SimResult:
        try:
            return self._simulate(txs, block, watch, tokens)
        except _FetchFailed as error:
            guarded = self._guard is not None and self._guard.alive()
            if guarded and (GUARD_ERROR in str(error) or self.head.number == self._anchor):
                raise SimulationError(f"revm failed: {error}") from None
            failure = str(error)
        # The guard died, or the upstream no longer serves the block the cache was forked at
        # (a pruning node): fork at the head and run the bundle once more. The cache's mover
        # may hold the lock while it waits for a slow trace: a bundle waits no longer for it
        # than on_new_head does.
        try:
            async with asyncio.timeout(self.head_wait):
                await self._lock.acquire()
        except TimeoutError:
            raise SimulationError(
                f"revm failed: {failure}; not run again: the cache is still moving to block"
                f" {self._target}"
            ) from None
        try:
            await self._fork(self.head.number)
        finally:
            self._lock.release()
        try:
            return self._simulate(txs, block, watch, tokens)
        except _FetchFailed as error:
            raise SimulationError(f"revm failed: {error}") from None

    def _simulate(
        self,
        txs: Sequence[bytes | SimCall],
        block: SimBlock | None,
        watch: Sequence[str],
        tokens: Sequence[str],
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
        if self._settled_at != self.head.hash or len(self._settled) > MAX_SETTLED:
            self._settled, self._settled_at = {}, self.head.hash
        undo = Undo()
        outcomes = []
        prefix: tuple[object, ...] = (env,)
        try:
            undo.infos[env.coinbase] = cold_basic(evm, env.coinbase)
            before = self._read_balances(evm, query)
            for index, tx in enumerate(prepared):
                prefix = (*prefix, txs[index])
                last = index == len(prepared) - 1
                if not last and (known := self._settled.get(prefix)) is not None:
                    outcome, changes = known  # this very prefix ran on this head already
                    self.reused_txs += 1
                else:
                    checkpoint = evm.snapshot()
                    try:
                        outcome = self._execute(evm, index, tx, env)
                        changes = call_changes(evm)
                        if last:
                            after = self._read_balances(evm, query)
                    finally:
                        evm.revert(checkpoint)
                    self._settled[prefix] = outcome, changes
                if not last:
                    settle(evm, changes, undo)
                outcomes.append(outcome)
            if not prepared:
                after = before
        except RuntimeError as error:  # pyrevm reports fork fetch failures this way
            if str(error).startswith(FETCH_FAILED):
                raise _FetchFailed(fetch_failure(str(error))) from None
            raise SimulationError(f"revm failed: {error}") from None
        finally:
            restore(evm, undo)
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
        if self._guard is None or not self._guard.alive():
            self.restarts += self._guard is not None
            try:
                self._guard = await FetchGuard.start(self.upstream_url, self.fetch_timeout)
            except RuntimeError as error:
                raise SimulationError(str(error)) from None
        evm = EVM(
            env=Env(cfg=CfgEnv(chain_id=chain_id)),
            fork_url=self._guard.url,
            fork_block=head.hash,
        )
        evm.insert_account_info(
            READER_ADDRESS, AccountInfo(code=READER_CODE, code_hash=keccak(READER_CODE))
        )
        self._evm, self._head, self._chain_id, self._anchor = evm, head, chain_id, head.number
        self.warm.heads_reset += 1

    # -- one bundle -----------------------------------------------------------------------
    @staticmethod
    def _read_balances(evm: EVM, query: BalanceQuery) -> bytes:
        checkpoint = evm.snapshot()
        try:
            evm.set_tx_env(TxEnv())
            return bytes(
                evm.message_call(READER_SENDER, READER_ADDRESS, query.calldata, is_static=True)
            )
        finally:
            evm.revert(checkpoint)

    def _execute(self, evm: EVM, index: int, tx: PreparedTx, env: BlockEnv) -> TxOutcome:
        """Run one tx inside its own checkpoint: the call, then the gas and the tip it pays."""
        if tx.to is None or tx.access_list:
            raise SimulationError(
                f"tx {index}: contract creation and access lists need the anvil backend"
            )
        self._validate(index, tx, env, evm.basic(tx.sender))
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
        _add(evm, tx.sender, -gas_used * price, nonce=1)
        # The coinbase lives in the journal for good (revm loads it outside any checkpoint), so
        # this credit outlasts the checkpoint: the bundle's undo puts the balance back.
        _add(evm, env.coinbase, gas_used * (price - env.base_fee))
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
        if message.startswith(FETCH_FAILED):
            raise _FetchFailed(fetch_failure(message))
        raise SimulationError(f"tx {index}: invalid: {message}")


def _add(evm: EVM, address: str, wei: int, *, nonce: int = 0) -> None:
    """Add ``wei`` to an account's balance (and ``nonce`` to its nonce) as the journal holds it."""
    account = evm.basic(address)
    evm.insert_account_info(
        address,
        AccountInfo(
            balance=account.balance + wei,
            nonce=account.nonce + nonce,
            code_hash=account.code_hash,
            code=account.code,
        ),
    )
