"""The devnet world: what is deployed, at which prices, and the JSON that describes it.

:data:`SPEC` fixes tokens, prices, pools and borrowers (the Aave V3 reserves are
:mod:`anvil.aave`'s); :func:`deploy_world` deploys it on an anvil reachable over HTTP and
returns a :class:`World` whose
:meth:`World.to_json` is what ``mevbot devnet --out FILE`` writes and the bot's config reads.
Keys are anvil's public development keys or derived from fixed public seeds: they only ever
hold devnet ether.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import keccak

from anvil.aave import deploy_aave
from anvil.deployer import Call, Deployer, encode
from anvil.svr import SVR_FEEDS, SVR_OPERATOR_KEY, create_address
from anvil.uniswap_v3 import V2_PAIR_INIT_CODE_HASH, V3_POOL_INIT_CODE_HASH, V3PoolSpec, deploy_v3
from chain.node import ANVIL_DEV_KEYS
from chain.ocr import transmit_answer

MAX_UINT = 2**256 - 1
ROUTER_KINDS = ("uniswap-v2", "uniswap-v3", "uniswap-v3-02", "universal-router")
FEED_DECIMALS = 8
# Each feed's oracle committee: 4 oracles tolerating f = 1 faulty one (OCR1 needs n > 3f); the
# devnet's oracle keeper holds the first transmitter key, the others only fill the config.
ORACLES = 4
FAULTS = 1


@dataclass(frozen=True, slots=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int
    usd_price: float


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A pair on one DEX: ``usd_per_side`` of liquidity, ``skew`` multiplies the amount of
    ``quote`` (so the price of ``base`` in ``quote`` on this DEX is ``skew`` times the feed's)."""

    dex: str
    base: str
    quote: str
    usd_per_side: float
    skew: float = 1.0


@dataclass(frozen=True, slots=True)
class BorrowerSpec:
    """A borrower supplying ``collateral_amount`` of one asset and borrowing ``debt`` up to a
    target health factor at the start prices."""

    collateral: str
    collateral_amount: float
    debt: str
    health_factor: float


@dataclass(frozen=True, slots=True)
class WorldSpec:
    tokens: tuple[TokenSpec, ...]
    dexes: tuple[str, ...]
    pools: tuple[PoolSpec, ...]
    borrowers: tuple[BorrowerSpec, ...]
    traders: int = 30
    v3_pools: tuple[V3PoolSpec, ...] = ()
    executor_funding: tuple[tuple[str, float], ...] = ()
    executor_eth: float = 10.0
    trader_funding_usd: float = 2_000_000.0


SPEC = WorldSpec(
    tokens=(
        TokenSpec("WETH", "Wrapped Ether", 18, 3000.0),
        TokenSpec("USDC", "USD Coin", 6, 1.0),
        TokenSpec("DAI", "Dai Stablecoin", 18, 1.0),
        TokenSpec("WBTC", "Wrapped BTC", 8, 60000.0),
    ),
    dexes=("uniswap", "sushiswap"),
    pools=(
        PoolSpec("uniswap", "WETH", "USDC", 3_000_000),
        PoolSpec("uniswap", "WETH", "DAI", 3_000_000),
        PoolSpec("uniswap", "WBTC", "WETH", 3_000_000),
        PoolSpec("uniswap", "USDC", "DAI", 2_000_000),
        PoolSpec("uniswap", "WBTC", "USDC", 2_000_000),
        # The second DEX is shallower and a little off: WETH/USDC far enough apart for an
        # arbitrage at start, the others within the two-hop fee (no opportunity until traffic).
        PoolSpec("sushiswap", "WETH", "USDC", 1_500_000, skew=1.012),
        PoolSpec("sushiswap", "WETH", "DAI", 1_500_000, skew=0.997),
        PoolSpec("sushiswap", "WBTC", "WETH", 1_500_000, skew=1.002),
        PoolSpec("sushiswap", "USDC", "DAI", 1_000_000, skew=1.001),
        PoolSpec("sushiswap", "WBTC", "USDC", 1_000_000, skew=0.998),
    ),
    borrowers=(
        BorrowerSpec("WETH", 10, "USDC", 1.035),  # liquidatable after a 3.5% ETH drop
        BorrowerSpec("WETH", 20, "DAI", 1.05),  # ... after a 5% drop
        BorrowerSpec("WETH", 5, "USDC", 1.08),
        BorrowerSpec("WBTC", 1, "USDC", 1.08),
        BorrowerSpec("WETH", 8, "DAI", 1.5),
        BorrowerSpec("WBTC", 2, "DAI", 2.0),
    ),
    # The same pairs on Uniswap V3 at every fee tier, each tier a little off the feeds in its
    # own direction, so that V2-V3 and V3-V3 gaps open as traffic moves the pools. Ladder rungs
    # are sized so that the traffic's $2k-50k swaps cross a few range edges (tick spacings
    # 0.1%, 0.6%, 2%) without leaving the ladder.
    v3_pools=tuple(
        V3PoolSpec(base, quote, fee, rung_usd, 500_000, skew)
        for base, quote in (
            ("WETH", "USDC"),
            ("WETH", "DAI"),
            ("WBTC", "WETH"),
            ("USDC", "DAI"),
            ("WBTC", "USDC"),
        )
        for fee, rung_usd, skew in (
            (500, 10_000, 1.0015),
            (3000, 20_000, 0.997),
            (10000, 30_000, 1.006),
        )
    ),
    executor_funding=(("WETH", 100), ("USDC", 300_000), ("DAI", 300_000)),
)


def dev_roles() -> dict[str, Role]:
    """The bot's roles on a devnet or a fork: anvil's public development keys, which anvil holds
    unlocked and funds (never for real funds)."""
    return {
        "deployer": role(ANVIL_DEV_KEYS[0]),
        "searcher": role(ANVIL_DEV_KEYS[1]),
        "executor": role(ANVIL_DEV_KEYS[2]),
        "oracle_updater": role(ANVIL_DEV_KEYS[3]),
        "keeper": role(ANVIL_DEV_KEYS[4]),
    }


def deploy_executor(
    deployer: Deployer, owner: str, weth: str, v2_factories: list[str], v3_factory: str | None
) -> str:
    """The Executor (the committed artifact) owned by ``owner``, trusting callbacks from the
    pools of these factories (kinds: Executor.Kind V2 = 0, V3 = 1)."""
    factories = [(f, V2_PAIR_INIT_CODE_HASH, 0) for f in v2_factories]
    if v3_factory is not None:
        factories.append((v3_factory, V3_POOL_INIT_CODE_HASH, 1))
    return deployer.deploy("Executor", owner, weth, factories, sender=owner)


def derived_key(label: str) -> str:
    """A deterministic devnet key from a public seed (never for real funds)."""
    return "0x" + keccak(text=f"mevbot-devnet:{label}").hex()


@dataclass(frozen=True, slots=True)
class Role:
    address: str
    private_key: str


def role(key: str) -> Role:
    return Role(Account.from_key(key).address.lower(), key)


@dataclass
class World:
    """Addresses, keys and endpoints of a deployed devnet (JSON-serialisable)."""

    chain_id: int
    rpc: dict[str, str]
    roles: dict[str, Role]
    traders: list[Role]
    tokens: dict[str, dict[str, Any]]
    dexes: dict[str, dict[str, Any]]
    feeds: dict[str, dict[str, Any]]
    executor: str
    deployed_block: int
    extra: dict[str, Any] = field(default_factory=dict)
    # Added with the V3 side; defaults keep older world JSON readable. ``routers``: every router
    # users trade through, {"address", "kind", "name"}, kind one of ROUTER_KINDS. ``v3``: the V3
    # factory, position manager, quoter, routers and pools (see anvil.uniswap_v3.deploy_v3).
    routers: list[dict[str, str]] = field(default_factory=list)
    v3: dict[str, Any] = field(default_factory=dict)
    # Aave V3 from @aave/core-v3 (see anvil.aave.deploy_aave): the pool, its reserves, oracle
    # and borrowers.
    aave: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> World:
        data = dict(data)
        data["roles"] = {k: Role(**v) for k, v in data["roles"].items()}
        data["traders"] = [Role(**t) for t in data["traders"]]
        return cls(**data)

    def pool_addresses(self) -> list[str]:
        return [p["address"] for d in self.dexes.values() for p in d["pairs"].values()]


def token_units(amount: float, decimals: int) -> int:
    # Through str() so 0.1-style floats become their decimal digits, not binary noise.
    whole, _, frac = f"{amount:.{decimals}f}".partition(".")
    return int(whole + frac[:decimals].ljust(decimals, "0"))


class _Builder:
    """Deploys :data:`SPEC` step by step; one instance per deployment."""

    def __init__(self, deployer: Deployer, spec: WorldSpec) -> None:
        self.d = deployer
        self.spec = spec
        self.tokens = {t.symbol: t for t in spec.tokens}
        self.roles = dev_roles()
        self.traders = [role(derived_key(f"trader-{i}")) for i in range(spec.traders)]
        self.addresses: dict[str, str] = {}

    def account(self, label: str) -> Role:
        """A devnet account derived from ``label`` (a public seed)."""
        return role(derived_key(label))

    @property
    def owner(self) -> str:
        return self.roles["deployer"].address

    def amount(self, symbol: str, value: float) -> int:
        return token_units(value, self.tokens[symbol].decimals)

    def usd_amount(self, symbol: str, usd: float) -> int:
        return self.amount(symbol, usd / self.tokens[symbol].usd_price)

    def give_call(self, symbol: str, to: str, amount: int) -> Call:
        """``amount`` of ``symbol`` for ``to``: minted, or for WETH wrapped from ``to``'s ether
        (which :meth:`give` and :meth:`fund_traders` set high first)."""
        token = self.addresses[symbol]
        if symbol == "WETH":
            return Call(to, token, encode("WETH9", "deposit"), amount, "WETH9.deposit")
        return Call(self.owner, token, encode("ERC20Token", "mint", to, amount), 0, "mint")

    def give(self, symbol: str, to: str, amount: int) -> None:
        if symbol == "WETH":
            self.d.rpc("anvil_setBalance", to, hex(10**30))
        call = self.give_call(symbol, to, amount)
        self.d.send(call.sender, call.to, call.data, call.value, call.what)

    def approve_calls(self, holder: str, spender: str) -> list[Call]:
        return [
            Call(holder, address, encode("WETH9", "approve", spender, MAX_UINT), 0, "approve")
            for address in (self.addresses[symbol] for symbol in self.tokens)
        ]

    def approve_all(self, holder: str, spender: str) -> None:
        self.d.send_all(self.approve_calls(holder, spender))

    def deploy_tokens(self) -> dict[str, dict[str, Any]]:
        out = {}
        for token in self.spec.tokens:
            if token.symbol == "WETH":
                address = self.d.deploy("WETH9", sender=self.owner)
            else:
                address = self.d.deploy(
                    "ERC20Token", token.name, token.symbol, token.decimals, sender=self.owner
                )
            self.addresses[token.symbol] = address
            out[token.symbol] = {
                "address": address,
                "symbol": token.symbol,
                "decimals": token.decimals,
                "usd_price": token.usd_price,
            }
        return out

    def deploy_dexes(self) -> dict[str, dict[str, Any]]:
        dexes: dict[str, dict[str, Any]] = {}
        for name in self.spec.dexes:
            factory = self.d.deploy("UniswapV2Factory", self.owner, sender=self.owner)
            router = self.d.deploy(
                "UniswapV2Router02", factory, self.addresses["WETH"], sender=self.owner
            )
            self.approve_all(self.owner, router)
            dexes[name] = {"factory": factory, "router": router, "pairs": {}}
        for pool in self.spec.pools:
            dex = dexes[pool.dex]
            base_amount = self.usd_amount(pool.base, pool.usd_per_side)
            quote_amount = self.usd_amount(pool.quote, pool.usd_per_side * pool.skew)
            self.give(pool.base, self.owner, base_amount)
            self.give(pool.quote, self.owner, quote_amount)
            self.d.transact(
                "UniswapV2Router02",
                dex["router"],
                "addLiquidity",
                self.addresses[pool.base],
                self.addresses[pool.quote],
                base_amount,
                quote_amount,
                0,
                0,
                self.owner,
                2**40,
                sender=self.owner,
            )
            (pair,) = self.d.call(
                "UniswapV2Factory",
                dex["factory"],
                "getPair",
                self.addresses[pool.base],
                self.addresses[pool.quote],
            )
            (token0,) = self.d.call("UniswapV2Pair", pair, "token0")
            token0 = token0.lower()
            dex["pairs"][f"{pool.base}/{pool.quote}"] = {
                "address": pair.lower(),
                "token0": token0,
                "token1": (
                    self.addresses[pool.quote]
                    if token0 == self.addresses[pool.base]
                    else self.addresses[pool.base]
                ),
            }
        return dexes

    def deploy_feeds(self) -> dict[str, dict[str, Any]]:
        """Per token an OCR aggregator behind an EACAggregatorProxy-style proxy (the address the
        Aave oracle reads), configured with its oracles and answering the start price after
        one ``transmit`` from the oracle keeper's key."""
        updater = self.roles["oracle_updater"].address
        signers = [role(derived_key(f"oracle-signer-{i}")).address for i in range(ORACLES)]
        transmitters = [updater] + [
            role(derived_key(f"oracle-transmitter-{i}")).address for i in range(1, ORACLES)
        ]
        feeds = {}
        for token in self.spec.tokens:
            answer = token_units(token.usd_price, FEED_DECIMALS)
            description = f"{token.symbol} / USD"
            svr: dict[str, str] = {}
            oracles = transmitters
            if token.symbol in SVR_FEEDS:
                svr = self._svr_aggregator(description)
                # The SVR operators' forwarder transmits as one of the oracles.
                oracles = [updater, svr["forwarder"], *transmitters[2:]]
                aggregator = svr["svr_aggregator"]
            else:
                aggregator = self.d.deploy(
                    "OffchainAggregator",
                    1,
                    2**191 - 1,
                    FEED_DECIMALS,
                    description,
                    sender=self.owner,
                )
            self.d.transact(
                "OffchainAggregator",
                aggregator,
                "setConfig",
                signers,
                oracles,
                FAULTS,
                1,
                b"",
                sender=self.owner,
            )
            (_, _, digest) = self.d.call("OffchainAggregator", aggregator, "latestConfigDetails")
            self.d.send(updater, aggregator, transmit_answer(answer, digest, 1, FAULTS))
            proxy = self.d.deploy(
                "AggregatorProxy", aggregator, "0x" + "00" * 20, sender=self.owner
            )
            if svr and proxy != svr["svr_proxy"]:
                raise RuntimeError(f"the SVR proxy landed at {proxy}, not {svr['svr_proxy']}")
            feeds[token.symbol] = {
                "address": proxy,
                "aggregator": aggregator,
                "decimals": FEED_DECIMALS,
                "description": description,
                "answer": answer,
                "transmitters": oracles,
                "config_digest": "0x" + bytes(digest).hex(),
                **{k: v for k, v in svr.items() if k != "svr_proxy"},
            }
        return feeds

    def _svr_aggregator(self, description: str) -> dict[str, str]:
        """A forwarder for the SVR operator and a dual aggregator whose secondary proxy is the
        feed's proxy, deployed two owner txs later (after the aggregator and its setConfig)."""
        operator = role(SVR_OPERATOR_KEY).address
        self.d.rpc("anvil_setBalance", operator, hex(10**21))  # pays for its transmissions
        forwarder = self.d.deploy("Forwarder", [operator], sender=self.owner)
        nonce = int(self.d.rpc("eth_getTransactionCount", self.owner, "pending"), 16)
        proxy = create_address(self.owner, nonce + 2)
        aggregator = self.d.deploy(
            "DualAggregator", 1, 2**191 - 1, FEED_DECIMALS, description, proxy, sender=self.owner
        )
        return {"svr_aggregator": aggregator, "forwarder": forwarder, "svr_proxy": proxy}

    def fund_traders(self, routers: list[str]) -> None:
        calls: list[Call] = []
        for trader in self.traders:
            self.d.rpc("anvil_setBalance", trader.address, hex(10**30))
            self.d.rpc("anvil_impersonateAccount", trader.address)
            for symbol in self.tokens:
                amount = self.usd_amount(symbol, self.spec.trader_funding_usd)
                calls.append(self.give_call(symbol, trader.address, amount))
            for router in routers:
                calls += self.approve_calls(trader.address, router)
        self.d.send_all(calls)

    def deploy_executor(self, v2_factories: list[str], v3_factory: str) -> str:
        """The Executor trusting the pools of these factories, funded with the spec's inventory."""
        owner = self.roles["executor"].address
        executor = deploy_executor(self.d, owner, self.addresses["WETH"], v2_factories, v3_factory)
        for symbol, value in self.spec.executor_funding:
            self.give(symbol, self.owner, self.amount(symbol, value))
            contract = "WETH9" if symbol == "WETH" else "ERC20Token"
            self.d.transact(
                contract,
                self.addresses[symbol],
                "transfer",
                executor,
                self.amount(symbol, value),
                sender=self.owner,
            )
        self.d.rpc("anvil_setBalance", executor, hex(token_units(self.spec.executor_eth, 18)))
        return executor


def deploy_world(http_url: str, ws_url: str, spec: WorldSpec = SPEC) -> World:
    """Deploy ``spec`` on the anvil at ``http_url`` (which must be automining) and describe it."""
    deployer = Deployer(http_url)
    builder = _Builder(deployer, spec)
    deployer.rpc("anvil_setBalance", builder.owner, hex(10**30))
    tokens = builder.deploy_tokens()
    dexes = builder.deploy_dexes()
    feeds = builder.deploy_feeds()
    v3 = deploy_v3(builder, dexes["uniswap"]["factory"])
    routers = [{"address": d["router"], "kind": "uniswap-v2", "name": n} for n, d in dexes.items()]
    routers += [
        {"address": v3["swap_router"], "kind": "uniswap-v3", "name": "swap-router"},
        {"address": v3["swap_router02"], "kind": "uniswap-v3-02", "name": "swap-router-02"},
        {"address": v3["universal_router"], "kind": "universal-router", "name": "universal-router"},
    ]
    # The Universal Router is paid by a prior transfer or WRAP_ETH, never pulls: no approval.
    builder.fund_traders([r["address"] for r in routers if r["kind"] != "universal-router"])
    executor = builder.deploy_executor([d["factory"] for d in dexes.values()], v3["factory"])
    aave = deploy_aave(builder, feeds)
    return World(
        chain_id=int(deployer.rpc("eth_chainId"), 16),
        rpc={"http": http_url, "ws": ws_url},
        roles=builder.roles,
        traders=builder.traders,
        tokens=tokens,
        dexes=dexes,
        feeds=feeds,
        executor=executor,
        deployed_block=int(deployer.rpc("eth_blockNumber"), 16),
        routers=routers,
        v3=v3,
        aave=aave,
    )


# The devnet's reference prices (USD) for the oracle keeper, by blocks after a run starts: ETH
# dips 4% (the HF 1.035 borrower becomes liquidatable), then 8% (the HF 1.05 one too), then
# recovers part of the way. Real feeds publish on deviation or heartbeat; so does the keeper.
REFERENCE_PATHS: dict[str, tuple[tuple[int, float], ...]] = {
    "WETH": ((0, 3000.0), (6, 2880.0), (16, 2760.0), (26, 2850.0)),
}


def reference_points(symbol: str, start_block: int) -> list[tuple[int, int]]:
    """The reference path of ``symbol`` as (absolute block, answer in feed units)."""
    return [
        (start_block + offset, token_units(price, FEED_DECIMALS))
        for offset, price in REFERENCE_PATHS[symbol]
    ]
