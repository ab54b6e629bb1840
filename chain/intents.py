"""Typed intents: what a pending router or pair call asks the chain to do, decoded from calldata.

The taxonomy is deliberately small:

- :class:`SwapIntent`: one swap through a router (Uniswap V2 Router02 and its forks, V3 SwapRouter,
  SwapRouter02), exact-input or exact-output, with the token path in input -> output order.
- :class:`PairSwapIntent`: a direct ``swap`` call on a V2 pair.
- :class:`LiquidityIntent`: V2 router add/remove liquidity (recognised so it is not "unknown").
- :class:`AuxiliaryIntent`: router housekeeping that moves no pool: unwrapWETH9, refundETH,
  sweepToken, selfPermit*, approvals, oracle-slippage checks; inside a multicall it tells where the
  swap's output goes (``unwrapWETH9`` makes it ETH).
- :class:`MulticallIntent`: a router ``multicall`` with its decoded inner calls in order, or a
  Universal Router ``execute`` (and its sub-plans and V4_SWAP action lists), whose calls are
  :class:`CommandIntent` values.
- :class:`CommandIntent`: one Universal Router command: its byte, name, allow-revert flag and the
  intent it carries.
- :class:`V4SwapIntent`: a swap action inside the Universal Router's V4_SWAP (recognised; V4 pool
  state is not tracked, so it is not among a multicall's ``swaps``).

Addresses are lowercase ``0x`` strings and amounts are plain ints, as everywhere in the bot.
Recipients of the V3 routers are the raw calldata value: they read sentinels there (SwapRouter:
the zero address means "the router"; SwapRouter02: ``0x..01`` is msg.sender, ``0x..02`` the
router). The Universal Router's sentinels are decoded into :data:`MSG_SENDER` and
:data:`ROUTER`, and its CONTRACT_BALANCE amount (the router's whole balance of the token) into
``whole_balance=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Protocol = Literal["uniswap-v2", "uniswap-v3"]
SwapKind = Literal["exact_in", "exact_out"]

# A Universal Router recipient that is the transaction's sender (calldata address(1)) and one that
# is the router itself (address(2)): universal-router contracts/libraries/Constants.sol (v1),
# v4-periphery src/libraries/ActionConstants.sol (v2).
MSG_SENDER = "msg.sender"
ROUTER = "router"


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
    router followed by ``unwrapWETH9``), or the Universal Router equivalents (WRAP_ETH before,
    UNWRAP_WETH after).
    ``whole_balance``: the input is whatever the router holds of ``token_in`` then (the
    Universal Router's CONTRACT_BALANCE); ``amount_in`` is that amount when the call itself put
    it there (ether it wrapped), else None (the output of an earlier swap, or a prior transfer).
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
    whole_balance: bool = False

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
    swaps still show. Universal Router commands use the command's name (``"WRAP_ETH"``,
    ``"PAY_PORTION"``: there ``amount`` is the portion, in bips, or in 1e18ths for
    PAY_PORTION_FULL_PRECISION); ``whole_balance`` as for :class:`SwapIntent` (``amount`` is
    None unless the decoder knows the balance).
    """

    router: str
    method: str
    token: str | None = None
    amount: int | None = None
    recipient: str | None = None
    whole_balance: bool = False


@dataclass(frozen=True, slots=True)
class MulticallIntent:
    """A router ``multicall``; inner calls share the transaction's ``value``.

    ``deadline`` is set by ``multicall(uint256,bytes[])``; ``previous_blockhash`` by
    ``multicall(bytes32,bytes[])`` (SwapRouter02 checks the parent block hash instead).
    A Universal Router ``execute`` (``method`` "execute", its deadline if it has one) and its
    EXECUTE_SUB_PLAN commands hold :class:`CommandIntent` calls; its V4_SWAP commands hold the
    V4Router actions (:class:`V4SwapIntent` and :class:`AuxiliaryIntent`) directly.
    """

    router: str
    method: str
    deadline: int | None
    previous_blockhash: str | None
    value: int
    calls: tuple[Intent, ...]

    @property
    def swaps(self) -> tuple[SwapIntent, ...]:
        """The V2/V3 swaps in call order, nested multicalls and sub-plans flattened."""
        found: list[SwapIntent] = []
        for call in self.calls:
            inner = call.intent if isinstance(call, CommandIntent) else call
            if isinstance(inner, SwapIntent):
                found.append(inner)
            elif isinstance(inner, MulticallIntent):
                found.extend(inner.swaps)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class CommandIntent:
    """One Universal Router command: ``command`` is the byte as sent, ``name`` its meaning on the
    router's version, ``allow_revert`` the byte's high bit (a failing command does not revert the
    transaction), ``intent`` what it does: a :class:`SwapIntent`, an :class:`AuxiliaryIntent`
    (payments, Permit2, checks, and the commands only recognised by name) or a
    :class:`MulticallIntent` (EXECUTE_SUB_PLAN, V4_SWAP). ``payer_is_user`` is set for V2/V3 swaps
    (False: the router pays from its own balance)."""

    command: int
    name: str
    allow_revert: bool
    intent: Intent
    payer_is_user: bool | None = None


@dataclass(frozen=True, slots=True)
class V4SwapIntent:
    """A V4 swap action (v4-periphery V4Router) inside the Universal Router's V4_SWAP.

    ``path`` is input -> output as currencies (the zero address is native ETH); ``fees``,
    ``tick_spacings`` and ``hooks`` are those of each hop's pool. Amounts as in
    :class:`SwapIntent`; an exact-in amount of 0 means the router's open delta (OPEN_DELTA).
    """

    action: str
    kind: SwapKind
    path: tuple[str, ...]
    fees: tuple[int, ...]
    tick_spacings: tuple[int, ...]
    hooks: tuple[str, ...]
    amount_in: int | None
    amount_out_min: int | None
    amount_out: int | None
    amount_in_max: int | None


@dataclass(frozen=True, slots=True)
class OracleUpdateIntent:
    """A price feed's next answer, as a pending update sets it."""

    feed: str
    method: str
    answer: int


Intent = (
    SwapIntent
    | PairSwapIntent
    | LiquidityIntent
    | AuxiliaryIntent
    | MulticallIntent
    | CommandIntent
    | V4SwapIntent
    | OracleUpdateIntent
)
