"""The devnet's Uniswap V3 side and its routers, all from Uniswap's official npm builds.

:func:`deploy_v3` deploys the V3 factory, the NonfungiblePositionManager (with its token
descriptor, which links the NFTDescriptor library), QuoterV2, the V3 SwapRouter, SwapRouter02 and
the Universal Router, then creates one pool per :class:`V3PoolSpec` and mints liquidity into it
through the position manager: a ladder of :data:`RUNGS` nested ranges one tick spacing apart
around the start price (every edge an initialized tick that ordinary swaps cross) and one wide
range (half-width :data:`WIDE`) that keeps the pool liquid when the price leaves the ladder.

No npm package ships Permit2's bytecode (``@uniswap/permit2-sdk`` has none, and the
universal-router package leaves its permit2 submodule out), so the Universal Router is deployed
with ``permit2 = address(0)``: ``payerIsUser = true`` commands revert, and users pay the router
through WRAP_ETH or a prior token transfer (``payerIsUser = false``), which is what the devnet's
traffic does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from anvil.deployer import Call, encode

if TYPE_CHECKING:
    from anvil.world import _Builder

ZERO_ADDRESS = "0x" + "00" * 20
# v3-core TickMath.MIN_TICK / MAX_TICK.
MAX_TICK = 887272
# keccak256 of the UniswapV2Pair / UniswapV3Pool creation code, as the routers hard-code them
# (v2-periphery UniswapV2Library.pairFor, v3-periphery PoolAddress.POOL_INIT_CODE_HASH); the
# Universal Router takes them as constructor arguments. tests/test_contracts_uniswap.py checks
# both against the npm bytecode.
V2_PAIR_INIT_CODE_HASH = bytes.fromhex(
    "96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"
)
V3_POOL_INIT_CODE_HASH = bytes.fromhex(
    "e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
)
RUNGS = 8
WIDE = 0.5
DEADLINE = 2**40
MINT_GAS = 1_000_000


@dataclass(frozen=True, slots=True)
class V3PoolSpec:
    """A V3 pool of ``base``/``quote`` at ``fee`` (hundredths of a bip): ``rung_usd`` of each
    token in each ladder range, ``wide_usd`` in the wide one; its start price is ``skew`` times
    the feeds'."""

    base: str
    quote: str
    fee: int
    rung_usd: float
    wide_usd: float
    skew: float = 1.0

    @property
    def usd_per_side(self) -> float:
        return RUNGS * self.rung_usd + self.wide_usd


def price_x96(price: Fraction) -> int:
    """sqrtPriceX96 of a raw price (token1 units per token0 unit), rounded down."""
    return math.isqrt(price.numerator * 2**192 // price.denominator)


def tick_at(price: Fraction, spacing: int, round_up: bool) -> int:
    """The initializable tick nearest ``price`` on the given side, within TickMath's bounds."""
    tick = math.log(price) / math.log(1.0001)
    tick = math.ceil(tick / spacing) if round_up else math.floor(tick / spacing)
    bound = MAX_TICK // spacing
    return max(-bound, min(bound, tick)) * spacing


def encode_path(tokens: list[str], fees: list[int]) -> bytes:
    """A V3 swap path: token, fee (3 bytes), token, ... (v3-periphery Path.sol)."""
    out = bytes.fromhex(tokens[0][2:])
    for fee, token in zip(fees, tokens[1:], strict=True):
        out += fee.to_bytes(3, "big") + bytes.fromhex(token[2:])
    return out


class _V3:
    """Deploys the V3 side with a world :class:`anvil.world._Builder`."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.d = builder.d
        self.owner = builder.owner

    def deploy_contracts(self, v2_factory: str) -> dict[str, Any]:
        weth = self.b.addresses["WETH"]
        factory = self.d.deploy("UniswapV3Factory", sender=self.owner)
        library = self.d.deploy("NFTDescriptor", sender=self.owner)
        descriptor = self.d.deploy(
            "NonfungibleTokenPositionDescriptor",
            weth,
            b"ETH".ljust(32, b"\0"),
            sender=self.owner,
            libraries={"NFTDescriptor": library},
        )
        manager = self.d.deploy(
            "NonfungiblePositionManager", factory, weth, descriptor, sender=self.owner
        )
        universal = self.d.deploy(
            "UniversalRouter",
            (
                ZERO_ADDRESS,  # permit2: no npm package ships its bytecode (module docstring)
                weth,
                v2_factory,
                factory,
                V2_PAIR_INIT_CODE_HASH,
                V3_POOL_INIT_CODE_HASH,
                ZERO_ADDRESS,  # no V4 pool manager on the devnet
                manager,
                ZERO_ADDRESS,  # no V4 position manager
                ZERO_ADDRESS,  # no Across spoke pool
            ),
            sender=self.owner,
        )
        return {
            "factory": factory,
            "nft_descriptor_library": library,
            "position_descriptor": descriptor,
            "position_manager": manager,
            "quoter": self.d.deploy("QuoterV2", factory, weth, sender=self.owner),
            "swap_router": self.d.deploy("SwapRouter", factory, weth, sender=self.owner),
            "swap_router02": self.d.deploy(
                "SwapRouter02", v2_factory, factory, manager, weth, sender=self.owner
            ),
            "universal_router": universal,
            "v2_factory": v2_factory,  # the V2 side of SwapRouter02 and the Universal Router
            "permit2": None,
        }

    def raw_price(self, pool: V3PoolSpec, token0: str) -> Fraction:
        """Start price of ``pool`` in token1 units per token0 unit."""
        tokens = self.b.tokens
        base, quote = tokens[pool.base], tokens[pool.quote]
        per_base = Fraction(base.usd_price) / Fraction(quote.usd_price) * Fraction(pool.skew)
        per_base *= Fraction(10**quote.decimals, 10**base.decimals)
        return per_base if token0 == self.b.addresses[pool.base] else 1 / per_base

    def create_pool(
        self, contracts: dict[str, Any], pool: V3PoolSpec
    ) -> tuple[dict[str, Any], list[Call]]:
        """Create and initialize ``pool``; return its description and the mints to send."""
        manager, factory = contracts["position_manager"], contracts["factory"]
        token0, token1 = sorted((self.b.addresses[pool.base], self.b.addresses[pool.quote]))
        price = self.raw_price(pool, token0)
        self.d.transact(
            "NonfungiblePositionManager",
            manager,
            "createAndInitializePoolIfNecessary",
            token0,
            token1,
            pool.fee,
            price_x96(price),
            sender=self.owner,
        )
        (address,) = self.d.call("UniswapV3Factory", factory, "getPool", token0, token1, pool.fee)
        (spacing,) = self.d.call("UniswapV3Factory", factory, "feeAmountTickSpacing", pool.fee)
        symbol0, symbol1 = (
            (pool.base, pool.quote)
            if token0 == self.b.addresses[pool.base]
            else (pool.quote, pool.base)
        )
        center = round(math.log(price) / math.log(1.0001) / spacing) * spacing
        ranges = [
            (center - k * spacing, center + k * spacing, pool.rung_usd) for k in range(1, RUNGS + 1)
        ]
        wide = (
            tick_at(price * Fraction(1 - WIDE), spacing, round_up=False),
            tick_at(price * Fraction(1 + WIDE), spacing, round_up=True),
            pool.wide_usd,
        )
        mints = [
            Call(
                self.owner,
                manager,
                encode(
                    "NonfungiblePositionManager",
                    "mint",
                    (
                        token0,
                        token1,
                        pool.fee,
                        low,
                        high,
                        self.b.usd_amount(symbol0, usd),
                        self.b.usd_amount(symbol1, usd),
                        0,
                        0,
                        self.owner,
                        DEADLINE,
                    ),
                ),
                what="NonfungiblePositionManager.mint",
                gas=MINT_GAS,  # anvil's estimate falls short of what the mint needs
            )
            for low, high, usd in (*ranges, wide)
        ]
        description = {
            "name": f"{pool.base}/{pool.quote}",
            "address": address.lower(),
            "token0": token0,
            "token1": token1,
            "fee": pool.fee,
            "tick_spacing": spacing,
        }
        return description, mints


def deploy_v3(builder: _Builder, v2_factory: str) -> dict[str, Any]:
    """Deploy the V3 factory, periphery and routers and the spec's V3 pools; describe them."""
    v3 = _V3(builder)
    contracts = v3.deploy_contracts(v2_factory)
    pools = builder.spec.v3_pools
    for symbol in builder.tokens:
        needed = sum(p.usd_per_side for p in pools if symbol in (p.base, p.quote))
        if needed:
            builder.give(symbol, builder.owner, builder.usd_amount(symbol, needed * 1.01))
    builder.approve_all(builder.owner, contracts["position_manager"])
    created = [v3.create_pool(contracts, pool) for pool in pools]
    builder.d.send_all([mint for _, mints in created for mint in mints])
    contracts["pools"] = [description for description, _ in created]
    return contracts
