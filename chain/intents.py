"""Typed intents: what a pending router or pair call asks the chain to do, decoded from calldata.

The taxonomy is deliberately small:

- :class:`SwapIntent`: one swap through a router (Uniswap V2 Router02 and its forks, V3 SwapRouter,
  SwapRouter02), exact-input or exact-output, with the token path in input -> output order.
- :class:`PairSwapIntent`: a direct ``swap`` call on a V2 pair.
- :class:`LiquidityIntent`: V2 router add/remove liquidity (recognised so it is not "unknown").
- :class:`AuxiliaryIntent`: router housekeeping that moves no pool: unwrapWETH9, refundETH,
  sweepToken, selfPermit*, approvals, oracle-slippage checks; inside a multicall it tells where the
  swap's output goes (``unwrapWETH9`` makes it ETH).
- :class:`MulticallIntent`: a router ``multicall`` with its decoded inner calls in order.

Addresses are lowercase ``0x`` strings and amounts are plain ints, as everywhere in the bot.
Recipients are the raw calldata value: the V3 routers read sentinels there (SwapRouter: the zero
address means "the router"; SwapRouter02: ``0x..01`` is msg.sender, ``0x..02`` the router).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Protocol = Literal["uniswap-v2", "uniswap-v3"]
SwapKind = Literal["exact_in", "exact_out"]


@dataclass(frozen=True, slots=True)
class SwapIntent:
    """A router swap.

    ``path`` is always input -> output, also for V3 ``exactOutput`` whose packed path is encoded
    output-first; ``fees`` are the V3 fee tiers between consecutive path tokens (empty for V2).
    Exact-input swaps set ``amount_in`` and ``amount_out_min``; exact-output swaps set
    ``amount_out`` and ``amount_in_max``; the other pair is None. For V2 ETH-in variants the ETH
    amount is ``value``: ``amount_in`` (exact-in) or ``amount_in_max`` (exact-out) equals it.
    ``deadline`` is None where the method has none (SwapRouter02; see the enclosing multicall).
    ``eth_in``: the payer pays with ETH (V2 ETH variants, or a V3/SwapRouter02 call with value).
    ``eth_out``: the output is paid as ETH (V2 ...ForETH variants, or a multicall swap into the
    router followed by ``unwrapWETH9``).
    """

    protocol: Protocol
    router: str
    method: str
    kind: SwapKind
    path: tuple[str, ...]
    fees: tuple[int, ...]
    amount_in: int | None
    amount_out_min: int | None
    amount_out: int | None
    amount_in_max: int | None
    recipient: str
    deadline: int | None
    value: int
    eth_in: bool
    eth_out: bool
    fee_on_transfer: bool

    @property
    def token_in(self) -> str:
        return self.path[0]

    @property
    def token_out(self) -> str:
        return self.path[-1]


@dataclass(frozen=True, slots=True)
class PairSwapIntent:
    """A direct ``UniswapV2Pair.swap``; ``data_len`` > 0 means a flash-swap callback to ``to``."""

    pair: str
    amount0_out: int
    amount1_out: int
    to: str
    data_len: int


@dataclass(frozen=True, slots=True)
class LiquidityIntent:
    """A V2 router add/remove liquidity call.

    ``tokens`` are the ERC-20s named in the call; for ETH variants (``with_eth``) the pool's other
    side is WETH and the amount tuples carry the ETH amount last. ``amounts_desired`` is empty for
    removals (``liquidity`` is the LP amount burned) and ``liquidity`` is None for additions.
    """

    router: str
    method: str
    action: Literal["add", "remove"]
    tokens: tuple[str, ...]
    with_eth: bool
    liquidity: int | None
    amounts_desired: tuple[int, ...]
    amounts_min: tuple[int, ...]
    recipient: str
    deadline: int
    value: int


@dataclass(frozen=True, slots=True)
class AuxiliaryIntent:
    """Router housekeeping that trades nothing.

    ``token``, ``amount`` (the minimum for unwrap/sweep, the value for permits and wraps) and
    ``recipient`` are set where the method has them. Inside a multicall an inner call the decoder
    does not know is kept with its selector as ``method`` (``"0x…"``), so that the multicall's
    swaps still show.
    """

    router: str
    method: str
    token: str | None = None
    amount: int | None = None
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class MulticallIntent:
    """A router ``multicall``; inner calls share the transaction's ``value``.

    ``deadline`` is set by ``multicall(uint256,bytes[])``; ``previous_blockhash`` by
    ``multicall(bytes32,bytes[])`` (SwapRouter02 checks the parent block hash instead).
    """

    router: str
    method: str
    deadline: int | None
    previous_blockhash: str | None
    value: int
    calls: tuple[Intent, ...]

    @property
    def swaps(self) -> tuple[SwapIntent, ...]:
        """The swaps in call order, nested multicalls flattened."""
        found: list[SwapIntent] = []
        for call in self.calls:
            if isinstance(call, SwapIntent):
                found.append(call)
            elif isinstance(call, MulticallIntent):
                found.extend(call.swaps)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class OracleUpdateIntent:
    """A price feed's next answer, as a pending update sets it.

    ``feed`` is the contract called: for an OCR ``transmit`` the aggregator, not the proxy that
    consumers read; ``answer`` is the report's median.
    """

    feed: str
    method: str
    answer: int


Intent = (
    SwapIntent
    | PairSwapIntent
    | LiquidityIntent
    | AuxiliaryIntent
    | MulticallIntent
    | OracleUpdateIntent
)
