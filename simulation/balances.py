"""Exact balance diffs: a tiny reader contract called before and after the bundle in its block.

Why a reader and not Transfer logs: logs miss WETH's ``Deposit``/``Withdrawal``, rebasing and
fee-on-transfer quirks, and ETH moves (gas, internal calls, coinbase tips) have no logs at all.
The reader returns the true ``balanceOf``/``BALANCE`` values, so diffs are exact for any token.
Both backends place it at :data:`READER_ADDRESS` (a state override, never deployed) and call it
as the first and the last call of the simulated block, from :data:`READER_SENDER` with no tip,
so it changes nothing the bundle can see and pays the coinbase nothing.

The reader (Yul, compiled with the pinned solcjs 0.8.30, optimizer on)::

    {
        let out := 0x80
        let n := div(calldatasize(), 64)
        for { let i := 0 } lt(i, n) { i := add(i, 1) } {
            let token := calldataload(mul(i, 64))
            let holder := calldataload(add(mul(i, 64), 32))
            let value := 0
            switch token
            case 0 { value := balance(holder) }
            default {
                mstore(0, shl(224, 0x70a08231))
                mstore(4, holder)
                if iszero(staticcall(gas(), token, 0, 36, 0, 32)) { revert(0, 0) }
                if lt(returndatasize(), 32) { revert(0, 0) }
                value := mload(0)
            }
            mstore(add(out, mul(i, 32)), value)
        }
        return(out, mul(n, 32))
    }

Input: (token, holder) word pairs, token 0 meaning ETH; output: one balance word per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from simulation.simulator import ETH, BlockEnv, SimResult, SimulationError, TxOutcome

READER_ADDRESS = "0x00000000000000000000000000000000005ead00"
READER_SENDER = "0x00000000000000000000000000000000005ead01"
READER_CODE = bytes.fromhex(
    "3660061c5f5b818110601c573660011c6020600160ff1b03166080f35b8060061b60208135910135815f14"
    "60665760245f60209381936370a0823160e01b83526004525afa1560625760203d106062576001905f515b"
    "8160051b60800152016005565b5f80fd5b600192915031605556"
)
# Cold BALANCE/STATICCALL plus the loop: generous, the reader's sender pays only the base fee.
_GAS_BASE = 30_000
_GAS_PER_PAIR = 12_000


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


@dataclass(frozen=True, slots=True)
class BalanceQuery:
    """Which balances to read: ETH of every watched holder and of the coinbase, and every token
    of every watched holder."""

    watch: tuple[str, ...]
    tokens: tuple[str, ...]
    coinbase: str
    pairs: tuple[tuple[str, str], ...]
    calldata: bytes

    @property
    def gas(self) -> int:
        return _GAS_BASE + _GAS_PER_PAIR * len(self.pairs)

    def decode(self, data: bytes) -> tuple[int, ...]:
        if len(data) != 32 * len(self.pairs):
            raise SimulationError(
                f"balance reader returned {len(data)} bytes for {len(self.pairs)} balances"
            )
        return tuple(int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32))

    def diffs(
        self, before: Sequence[int], after: Sequence[int]
    ) -> tuple[dict[str, dict[str, int]], int]:
        """``(balance_diffs, coinbase_payment)`` from the reader's two answers."""
        changes: dict[str, dict[str, int]] = {holder: {} for holder in self.watch}
        coinbase_payment = 0
        for (token, holder), old, new in zip(self.pairs, before, after, strict=True):
            if holder in changes:
                changes[holder][token] = new - old
            if token == ETH and holder == self.coinbase:
                coinbase_payment = new - old
        return changes, coinbase_payment


@lru_cache(maxsize=256)
def _build(watch: tuple[str, ...], tokens: tuple[str, ...], coinbase: str) -> BalanceQuery:
    pairs = [(ETH, holder) for holder in dict.fromkeys((*watch, coinbase))]
    pairs += [(token, holder) for holder in watch for token in tokens]
    calldata = b"".join(
        (bytes(32) if token == ETH else _word(token)) + _word(holder) for token, holder in pairs
    )
    return BalanceQuery(watch, tokens, coinbase, tuple(pairs), calldata)


def balance_query(watch: Sequence[str], tokens: Sequence[str], coinbase: str) -> BalanceQuery:
    """The (cached) query for these holders and tokens; addresses are lowercased."""
    return _build(
        tuple(dict.fromkeys(a.lower() for a in watch)),
        tuple(dict.fromkeys(t.lower() for t in tokens)),
        coinbase.lower(),
    )


def assemble(
    outcomes: Sequence[TxOutcome],
    query: BalanceQuery,
    before: bytes,
    after: bytes,
    env: BlockEnv,
) -> SimResult:
    """The :class:`SimResult` of a run, from its outcomes and the reader's two answers."""
    diffs, coinbase_payment = query.diffs(query.decode(before), query.decode(after))
    return SimResult(
        txs=tuple(outcomes),
        balance_diffs=diffs,
        coinbase_payment=coinbase_payment,
        block_number=env.number,
        block_timestamp=env.timestamp,
        base_fee=env.base_fee,
    )
