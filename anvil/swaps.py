"""User swaps through every router kind of the devnet, as the transactions a wallet would send.

:class:`SwapMaker` turns (variant, pool, direction, size, trader) into a :class:`UserSwap`: the
transactions in order and what they trade. Variants by router kind (:data:`VARIANTS`):

- ``uniswap-v2`` (Router02): every swap function, single pair, ETH ones on WETH pairs;
- ``uniswap-v3`` (the V3 SwapRouter) and ``uniswap-v3-02`` (SwapRouter02): exactInputSingle,
  exactInput over two pools through WETH, exactOutputSingle, exactOutput; SwapRouter02 also
  ``multicall(deadline, [exactInputSingle])``;
- ``universal-router``: ``execute(commands, inputs, deadline)`` paid by WRAP_ETH or by a prior
  token transfer to the router (``payerIsUser = false``: the devnet has no Permit2, see
  :mod:`anvil.uniswap_v3`), with V2/V3 exact-in/out swaps, UNWRAP_WETH, PAY_PORTION and SWEEP.

Sizes are given in USD and converted at the world's token prices; exact-output swaps offer
:data:`MAX_INPUT_FACTOR` times the input they should need, and routers refund or keep the rest
with the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import eth_abi

from anvil import artifacts
from anvil.uniswap_v3 import encode_path
from anvil.world import World, token_units
from simulation.amm import get_amount_in, get_amount_out

DEADLINE = 2**40
MAX_INPUT_FACTOR = 1.5
# Universal Router recipients and amounts with special meaning (Uniswap v4-periphery
# src/libraries/ActionConstants.sol, used by universal-router 2.x's Dispatcher and Payments).
MSG_SENDER = "0x" + "00" * 19 + "01"
ADDRESS_THIS = "0x" + "00" * 19 + "02"
CONTRACT_BALANCE = 2**255
# Universal Router command bytes (universal-router contracts/libraries/Commands.sol).
V3_SWAP_EXACT_IN, V3_SWAP_EXACT_OUT, SWEEP, PAY_PORTION = 0x00, 0x01, 0x04, 0x06
V2_SWAP_EXACT_IN, V2_SWAP_EXACT_OUT, WRAP_ETH, UNWRAP_WETH = 0x08, 0x09, 0x0B, 0x0C
# Where PAY_PORTION sends its cut (a front end's fee), and how much of it.
FEE_RECIPIENT = "0x" + "fe" * 20
FEE_BIPS = 25

V2_VARIANTS = (
    "swapExactTokensForTokens",
    "swapTokensForExactTokens",
    "swapExactETHForTokens",
    "swapTokensForExactETH",
    "swapExactTokensForETH",
    "swapETHForExactTokens",
    "swapExactTokensForTokensSupportingFeeOnTransferTokens",
    "swapExactETHForTokensSupportingFeeOnTransferTokens",
    "swapExactTokensForETHSupportingFeeOnTransferTokens",
)
V3_VARIANTS = ("exactInputSingle", "exactInput", "exactOutputSingle", "exactOutput")
UNIVERSAL_VARIANTS = (
    "wrap-v3-exact-in",
    "wrap-v2-exact-in-pay-portion-sweep",
    "wrap-v3-exact-out-unwrap",
    "wrap-v2-exact-out-unwrap",
    "transfer-v3-exact-in-unwrap",
    "transfer-v2-exact-in-unwrap",
)
VARIANTS: dict[str, tuple[str, ...]] = {
    "uniswap-v2": V2_VARIANTS,
    "uniswap-v3": V3_VARIANTS,
    "uniswap-v3-02": (*V3_VARIANTS, "multicall"),
    "universal-router": UNIVERSAL_VARIANTS,
}
# Variants whose input or output is ether rather than a token (they trade on WETH pools).
_ETH_IN = {"swapExactETHForTokens", "swapETHForExactTokens"}
_ETH_IN |= {"swapExactETHForTokensSupportingFeeOnTransferTokens"}
_ETH_IN |= {v for v in UNIVERSAL_VARIANTS if v.startswith("wrap")}
_ETH_OUT = {"swapTokensForExactETH", "swapExactTokensForETH"}
_ETH_OUT |= {"swapExactTokensForETHSupportingFeeOnTransferTokens"}
_ETH_OUT |= {v for v in UNIVERSAL_VARIANTS if v.startswith("transfer")}


# A Universal Router command: its byte, its input's ABI types and values.
_Command = tuple[int, list[str], tuple[Any, ...]]
_SWAP_V3 = ["address", "uint256", "uint256", "bytes", "bool"]  # recipient, amount, limit, path
_SWAP_V2 = ["address", "uint256", "uint256", "address[]", "bool"]  # ..., payerIsUser


@dataclass(frozen=True, slots=True)
class Step:
    """One transaction of a swap: ``to``, calldata and ether sent."""

    to: str
    data: bytes
    value: int = 0


@dataclass(frozen=True, slots=True)
class UserSwap:
    """A user's swap: its transactions in order (a prior transfer, then the router call), the
    router and variant, the pools it goes through and the input it offers (the maximum, for
    exact-output variants)."""

    kind: str
    variant: str
    router: str
    steps: tuple[Step, ...]
    pools: tuple[str, ...]
    token_in: str
    token_out: str
    amount_in: int


def needs_eth(variant: str) -> tuple[bool, bool]:
    """(ether in, ether out) for a variant: those trade WETH against the other token."""
    return variant in _ETH_IN, variant in _ETH_OUT


def _fn(contract: str, name: str) -> Any:
    return artifacts.load(contract).abi.function(name)


class SwapMaker:
    """Builds :class:`UserSwap` values for a deployed :class:`anvil.world.World`."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.weth = world.tokens["WETH"]["address"]
        self.by_address = {t["address"]: t for t in world.tokens.values()}
        self.routers = {r["kind"]: r["address"] for r in world.routers}
        self.v2_router_of = {d["router"]: d for d in world.dexes.values()}

    def units(self, token: str, usd: float) -> int:
        info = self.by_address[token]
        return max(1, token_units(usd / info["usd_price"], info["decimals"]))

    # -- Router02 -------------------------------------------------------------------------------

    def v2(
        self,
        variant: str,
        router: str,
        pair: dict[str, str],
        zero_for_one: bool,
        reserves: tuple[int, int],
        fraction: float,
        trader: str,
    ) -> UserSwap:
        """A Router02 swap of ``fraction`` of the input reserve (exact-in) or the output reserve
        (exact-out) through one pair."""
        token_in, token_out = (
            (pair["token0"], pair["token1"]) if zero_for_one else (pair["token1"], pair["token0"])
        )
        reserve_in, reserve_out = reserves if zero_for_one else reserves[::-1]
        path = [token_in, token_out]
        fn = _fn("UniswapV2Router02", variant)
        eth_in, _ = needs_eth(variant)
        if "Exact" in variant.split("For")[0]:  # exact input: swapExact...For...
            amount_in = max(1, int(reserve_in * fraction))
            minimum = get_amount_out(amount_in, reserve_in, reserve_out) * 9 // 10
            if eth_in:
                data, value = fn.encode(minimum, path, trader, DEADLINE), amount_in
            else:
                data, value = fn.encode(amount_in, minimum, path, trader, DEADLINE), 0
        else:
            amount_out = max(1, int(reserve_out * fraction))
            amount_in = int(get_amount_in(amount_out, reserve_in, reserve_out) * MAX_INPUT_FACTOR)
            if eth_in:  # the router refunds what it did not need
                data, value = fn.encode(amount_out, path, trader, DEADLINE), amount_in
            else:
                data, value = fn.encode(amount_out, amount_in, path, trader, DEADLINE), 0
        return UserSwap(
            "uniswap-v2",
            variant,
            router,
            (Step(router, data, value),),
            (pair["address"],),
            token_in,
            token_out,
            amount_in,
        )

    # -- V3 SwapRouter and SwapRouter02 ---------------------------------------------------------

    def v3(
        self,
        kind: str,
        variant: str,
        pools: list[dict[str, Any]],
        token_in: str,
        usd: float,
        trader: str,
    ) -> UserSwap:
        """A swap of about ``usd`` through ``pools`` (one, or two sharing a token) starting with
        ``token_in``, through the V3 SwapRouter (``uniswap-v3``) or SwapRouter02."""
        router = self.routers[kind]
        tokens = _walk(pools, token_in)
        fees = [p["fee"] for p in pools]
        exact_out = variant.startswith("exactOutput")
        amount_in = self.units(tokens[0], usd * (MAX_INPUT_FACTOR if exact_out else 1))
        amount_out = self.units(tokens[-1], usd)
        data = self._v3_call(kind, variant, tokens, fees, amount_in, amount_out, trader)
        return UserSwap(
            kind,
            variant,
            router,
            (Step(router, data),),
            tuple(p["address"] for p in pools),
            tokens[0],
            tokens[-1],
            amount_in,
        )

    def _v3_call(
        self,
        kind: str,
        variant: str,
        tokens: list[str],
        fees: list[int],
        amount_in: int,
        amount_out: int,
        recipient: str,
    ) -> bytes:
        contract = "SwapRouter" if kind == "uniswap-v3" else "SwapRouter02"
        # SwapRouter's structs carry a deadline after the recipient; SwapRouter02's do not
        # (its deadline goes through multicall).
        deadline = (DEADLINE,) if kind == "uniswap-v3" else ()
        to = recipient
        if variant == "multicall":
            inner = self._v3_call(kind, "exactInputSingle", tokens, fees, amount_in, 0, recipient)
            return _fn(contract, "multicall(uint256,bytes[])").encode(DEADLINE, [inner])
        if variant == "exactInputSingle":
            params = (tokens[0], tokens[1], fees[0], to, *deadline, amount_in, 0, 0)
        elif variant == "exactOutputSingle":
            params = (tokens[0], tokens[1], fees[0], to, *deadline, amount_out, amount_in, 0)
        elif variant == "exactInput":
            params = (encode_path(tokens, fees), to, *deadline, amount_in, 0)
        else:  # exactOutput: the path runs from the output back to the input
            path = encode_path(tokens[::-1], fees[::-1])
            params = (path, to, *deadline, amount_out, amount_in)
        return _fn(contract, variant).encode(params)

    # -- Universal Router -----------------------------------------------------------------------

    def universal(self, variant: str, pool: dict[str, Any], other: str, usd: float) -> UserSwap:
        """An ``execute`` of about ``usd`` between ether and ``other`` through ``pool`` (a V3
        pool for the ``-v3-`` variants, else a V2 pair of the router's V2 factory)."""
        router = self.routers["universal-router"]
        eth_in, _ = needs_eth(variant)
        token_in, token_out = (self.weth, other) if eth_in else (other, self.weth)
        exact = self.units(token_in, usd)
        most = self.units(token_in, usd * MAX_INPUT_FACTOR)

        def swap(exact_out: bool, recipient: str, amount: int, limit: int) -> _Command:
            if "-v3-" in variant:  # an exact-output path runs from the output back
                tokens = [token_out, token_in] if exact_out else [token_in, token_out]
                path: Any = encode_path(tokens, [pool["fee"]])
                command = V3_SWAP_EXACT_OUT if exact_out else V3_SWAP_EXACT_IN
                return command, _SWAP_V3, (recipient, amount, limit, path, False)
            command = V2_SWAP_EXACT_OUT if exact_out else V2_SWAP_EXACT_IN
            return command, _SWAP_V2, (recipient, amount, limit, [token_in, token_out], False)

        wrap = (WRAP_ETH, ["address", "uint256"], (ADDRESS_THIS, CONTRACT_BALANCE))
        unwrap = (UNWRAP_WETH, ["address", "uint256"], (MSG_SENDER, 0))
        value, offered = (most, most) if "exact-out" in variant else (exact, exact)
        commands: list[_Command]
        if variant == "wrap-v2-exact-in-pay-portion-sweep":
            commands = [
                wrap,
                swap(False, ADDRESS_THIS, CONTRACT_BALANCE, 0),
                (PAY_PORTION, ["address", "address", "uint256"], (other, FEE_RECIPIENT, FEE_BIPS)),
                (SWEEP, ["address", "address", "uint256"], (other, MSG_SENDER, 0)),
            ]
        elif variant.startswith("wrap") and "exact-out" in variant:
            commands = [wrap, swap(True, MSG_SENDER, self.units(token_out, usd), most), unwrap]
        elif variant.startswith("wrap"):
            commands = [wrap, swap(False, MSG_SENDER, CONTRACT_BALANCE, 0)]
        else:  # transfer-...: the trader paid the router in the step before
            value = 0
            commands = [swap(False, ADDRESS_THIS, CONTRACT_BALANCE, 0), unwrap]
        execute = _fn("UniversalRouter", "execute(bytes,bytes[],uint256)")
        data = execute.encode(
            bytes(c for c, _, _ in commands),
            [eth_abi.encode(types, args) for _, types, args in commands],
            DEADLINE,
        )
        steps = (Step(router, data, value),)
        if value == 0:
            transfer = _fn("ERC20Token", "transfer").encode(router, offered)
            steps = (Step(token_in, transfer), *steps)
        return UserSwap(
            "universal-router",
            variant,
            router,
            steps,
            (pool["address"],),
            token_in,
            token_out,
            offered,
        )


def _walk(pools: list[dict[str, Any]], token_in: str) -> list[str]:
    """The tokens along ``pools`` starting from ``token_in``."""
    tokens = [token_in]
    for pool in pools:
        here = tokens[-1]
        if here not in (pool["token0"], pool["token1"]):
            raise ValueError(f"pool {pool['address']} does not trade {here}")
        tokens.append(pool["token1"] if here == pool["token0"] else pool["token0"])
    return tokens
