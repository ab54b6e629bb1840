"""The simulator interface shared by every backend: inputs, results, errors, the simulated block.

A bundle is a sequence of transactions, each either a signed raw envelope (``bytes``: a pending
victim tx, simulated as it would land — its sender recovered from the signature, its own nonce,
gas limit and fees) or an unsigned :class:`SimCall` (our own executor call before signing).
``simulate`` runs them in order in one block on top of the fork head and returns a
:class:`SimResult`. Backends: :class:`simulation.revm_backend.RevmSimulator`,
:class:`simulation.fork.AnvilForkSimulator` and :class:`simulation.node_sim.NodeSimulator`;
:func:`simulation.backends.open_simulator` opens one, and ``auto`` (the default) is chosen by
:func:`simulation.backends.choose_backend`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import eth_abi
from eth_abi.exceptions import DecodingError

from chain.aave_errors import decode_revert
from chain.types import BlockHeader

ETH = "ETH"
Backend = Literal["anvil", "revm", "node"]  # the simulators
BackendChoice = Backend | Literal["auto"]  # what the config can name: auto picks one at start
# The block's fee recipient unless the caller names one: an address nobody else uses, so that its
# balance change is exactly what the bundle pays the block (priority fees + direct transfers).
DEFAULT_COINBASE = "0x00000000000000000000000000000000c0ffee00"
DEFAULT_CALL_GAS = 1_000_000

_ERROR_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_PANIC_CODES = {
    0x00: "generic panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialised function",
}


class SimulationError(Exception):
    """A bundle could not be simulated (invalid tx, node failure, timeout); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SimCall:
    """An unsigned call. Fees default to the simulated block's base fee with no tip; ``nonce``
    None means the sender's current nonce (as the node would assign it)."""

    sender: str
    to: str | None
    data: bytes = b""
    value: int = 0
    gas: int = DEFAULT_CALL_GAS
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    nonce: int | None = None


@dataclass(frozen=True, slots=True)
class SimBlock:
    """Overrides of the simulated block; anything left None follows the fork head."""

    number: int | None = None
    timestamp: int | None = None
    base_fee: int | None = None
    coinbase: str | None = None
    gas_limit: int | None = None


@dataclass(frozen=True, slots=True)
class BlockEnv:
    """The simulated block, fully resolved (what both backends execute against)."""

    number: int
    timestamp: int
    base_fee: int
    coinbase: str
    gas_limit: int


@dataclass(frozen=True, slots=True)
class SimLog:
    address: str
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """One transaction's fate. ``revert_reason`` is the decoded ``Error(string)``, ``Panic(...)``,
    the revert data as hex, or the node's halt message (out of gas...); empty on success."""

    success: bool
    revert_reason: str
    gas_used: int
    logs: tuple[SimLog, ...]
    return_data: bytes


@dataclass(frozen=True, slots=True)
class SimResult:
    """``balance_diffs[holder][token or "ETH"]`` is the exact change over the whole bundle (ETH
    includes gas paid); ``coinbase_payment`` is what the block's fee recipient gained."""

    txs: tuple[TxOutcome, ...]
    balance_diffs: Mapping[str, Mapping[str, int]]
    coinbase_payment: int
    block_number: int
    block_timestamp: int
    base_fee: int

    @property
    def success(self) -> bool:
        return all(tx.success for tx in self.txs)

    @property
    def gas_used(self) -> int:
        return sum(tx.gas_used for tx in self.txs)


class Simulator(Protocol):
    """What every backend offers."""

    @property
    def head(self) -> BlockHeader: ...

    async def start(self) -> None: ...

    async def on_new_head(self, block_number: int) -> None: ...

    async def simulate(
        self,
        txs: Sequence[bytes | SimCall],
        *,
        block: SimBlock | None = None,
        watch: Sequence[str] = (),
        tokens: Sequence[str] = (),
    ) -> SimResult: ...

    async def close(self) -> None: ...


class UpstreamSimulator:
    """What every backend shares: the upstream it reads, the simulated block's defaults, and
    the head it simulates on top of (``head`` before ``start()`` is an error)."""

    kind = "simulator"

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
        self._head: BlockHeader | None = None
        self._init_backend()

    def _init_backend(self) -> None:
        """A backend's own state, built from the shared fields above (none by default)."""

    @property
    def head(self) -> BlockHeader:
        if self._head is None:
            raise SimulationError(f"{self.kind} not started")
        return self._head


def next_base_fee(head: BlockHeader) -> int:
    """EIP-1559: the base fee of the block after ``head`` (elasticity 2, max change 1/8)."""
    target = head.gas_limit // 2
    if target == 0 or head.gas_used == target:
        return head.base_fee
    if head.gas_used > target:
        delta = head.base_fee * (head.gas_used - target) // target // 8
        return head.base_fee + max(delta, 1)
    return max(head.base_fee - head.base_fee * (target - head.gas_used) // target // 8, 0)


def resolve_block(
    head: BlockHeader, block: SimBlock | None, *, block_interval: int, coinbase: str
) -> BlockEnv:
    """The block to simulate: the next one on top of ``head`` unless ``block`` overrides parts."""
    block = block or SimBlock()
    number = head.number + 1 if block.number is None else block.number
    return BlockEnv(
        number=number,
        timestamp=(
            head.timestamp + block_interval * (number - head.number)
            if block.timestamp is None
            else block.timestamp
        ),
        base_fee=next_base_fee(head) if block.base_fee is None else block.base_fee,
        coinbase=(block.coinbase or coinbase).lower(),
        gas_limit=head.gas_limit if block.gas_limit is None else block.gas_limit,
    )


def decode_revert_reason(data: bytes) -> str:
    """An Aave error (string code or custom error) → its name and code, other ``Error(string)``
    → its text, ``Panic(uint256)`` → ``Panic(0x11): ...``, else hex."""
    aave = decode_revert(data)
    if aave is not None:
        return str(aave)
    try:
        if data[:4] == _ERROR_SELECTOR:
            return str(eth_abi.decode(["string"], data[4:])[0])
        if data[:4] == _PANIC_SELECTOR:
            code = int(eth_abi.decode(["uint256"], data[4:])[0])
            return f"Panic(0x{code:02x}): {_PANIC_CODES.get(code, 'unknown panic code')}"
    except (DecodingError, ValueError, OverflowError, UnicodeDecodeError):
        pass
    return "0x" + data.hex()


def failure_reason(return_data: bytes, halt_message: str) -> str:
    """The reason of a failed tx: its revert data when there is any, else the halt message."""
    return decode_revert_reason(return_data) if return_data else halt_message
