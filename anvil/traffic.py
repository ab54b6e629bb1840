"""Devnet traffic: signed user swaps that move pool prices (and so create backrun opportunities).

The world's traders swap through every router kind in the proportions of a :class:`Mix`:
Router02 swaps of a random 0.2–3% of a V2 pair's reserve, V3 SwapRouter / SwapRouter02 and
Universal Router swaps of $2k–50k (the variants of :mod:`anvil.swaps`), so prices on the DEXes
and fee tiers drift apart. Transactions are signed locally (EIP-1559) with
the trader's devnet key and tracked nonces; sending them is the caller's business, so the same
generator serves tests, the demo and benchmarks.

:func:`run_traffic` sends at fixed rates and behaves like a wallet: a sender whose next tx has not
been mined after ``resend_after`` seconds gets its unmined txs sent again (a node may drop a
pool tx: the devnet builder can lose one sent while it moves the pool, and real nodes evict),
and it goes on doing so after the last send until everything is mined (``drain``). With
``private_share`` > 0 and a MEV-Share node, that share of the trades goes privately to the node
instead (:mod:`anvil.private_flow`), never to the public pool (the wallet does not re-send them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from eth_utils import to_checksum_address

from anvil import artifacts
from anvil.mix import DEFAULT_MIX, FAMILIES, Mix, mix_argument
from anvil.private_flow import PrivateFlow
from anvil.swaps import VARIANTS, SwapMaker, UserSwap, needs_eth
from anvil.world import World, derived_key
from chain.errors import RpcError, RpcTimeout
from chain.rpc import connect
from chain.types import SignedTx

# Gas limits by router kind: V3 swaps that cross ticks and Universal Router plans cost more.
GAS = {"uniswap-v2": 250_000, "uniswap-v3": 600_000, "uniswap-v3-02": 600_000}
GAS["universal-router"] = 600_000
TRANSFER_GAS = 80_000
_PAIR = artifacts.load("UniswapV2Pair").abi
TIP = 10**9
# Size of V3 and Universal Router swaps, USD: enough to cross a range edge of the devnet's
# V3 pools now and then (anvil.uniswap_v3.RANGES).
USD_RANGE = (2_000.0, 50_000.0)


@dataclass(frozen=True, slots=True)
class Trade:
    """A generated swap: who trades, what (:class:`anvil.swaps.UserSwap`), the signed txs."""

    trader: str
    swap: UserSwap
    txs: tuple[SignedTx, ...]

    @property
    def pair(self) -> str:
        """The first pool the swap goes through."""
        return self.swap.pools[0]


@dataclass
class Traffic:
    """Random swaps by the world's traders through every router kind, in the proportions of
    ``mix``; ``nonces`` must be synced before use."""

    world: World
    seed: int = 1
    chain_id: int = 31337
    nonces: dict[str, int] = field(default_factory=dict)
    mix: Mix = field(default_factory=Mix)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.maker = SwapMaker(self.world)
        self._accounts = {t.address: Account.from_key(t.private_key) for t in self.world.traders}
        weth = self.world.tokens["WETH"]["address"]
        self._v3_weth_pools = [
            p for p in self.world.v3.get("pools", []) if weth in (p["token0"], p["token1"])
        ]

    async def sync_nonces(self, rpc: Any) -> None:
        answers = await rpc.batch(
            [("eth_getTransactionCount", [address, "pending"]) for address in self._accounts]
        )
        self.nonces = {
            address: int(answer, 16)
            for address, answer in zip(self._accounts, answers, strict=True)
        }

    def sign(
        self,
        trader: str,
        to: str,
        data: bytes,
        base_fee: int,
        value: int = 0,
        gas: int = GAS["uniswap-v2"],
    ) -> SignedTx:
        account = self._accounts[trader]
        nonce = self.nonces[trader]
        signed = account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": to_checksum_address(to),
                "value": value,
                "data": data,
                "gas": gas,
                "maxFeePerGas": 2 * base_fee + TIP,
                "maxPriorityFeePerGas": TIP,
            }
        )
        self.nonces[trader] = nonce + 1
        return SignedTx(bytes(signed.raw_transaction), "0x" + signed.hash.hex(), trader, nonce)

    def swap(self, reserves: dict[str, tuple[int, int]], base_fee: int) -> tuple[SignedTx, Trade]:
        """A Router02 ``swapExactTokensForTokens`` of a random pair, sized from ``reserves``
        (pair address -> (reserve0, reserve1))."""
        trade = self.trade(reserves, base_fee, "uniswap-v2", "swapExactTokensForTokens")
        return trade.txs[0], trade

    def next(self, reserves: dict[str, tuple[int, int]], base_fee: int) -> Trade:
        """A random swap of the mix (V2 ones sized from ``reserves``)."""
        family = self.rng.choices(list(FAMILIES), [getattr(self.mix, f) for f in FAMILIES])[0]
        kind = self.rng.choice(FAMILIES[family])
        return self.trade(reserves, base_fee, kind, self.rng.choice(VARIANTS[kind]))

    def trade(
        self, reserves: dict[str, tuple[int, int]], base_fee: int, kind: str, variant: str
    ) -> Trade:
        """A random swap of the given router kind and variant, signed by a random trader."""
        trader = self.rng.choice(sorted(self._accounts))
        if kind == "uniswap-v2":
            user_swap = self._v2(reserves, variant, trader)
        elif kind == "universal-router":
            user_swap = self._universal(variant)
        else:
            user_swap = self._v3(kind, variant, trader)
        return Trade(trader, user_swap, self.sign_swap(trader, user_swap, base_fee))

    def sign_swap(self, trader: str, swap: UserSwap, base_fee: int) -> tuple[SignedTx, ...]:
        """``swap``'s transactions signed by ``trader`` on consecutive nonces."""
        return tuple(
            self.sign(
                trader,
                step.to,
                step.data,
                base_fee,
                step.value,
                GAS[swap.kind] if step.to == swap.router else TRANSFER_GAS,
            )
            for step in swap.steps
        )

    def _v2(self, reserves: dict[str, tuple[int, int]], variant: str, trader: str) -> UserSwap:
        dex = self.world.dexes[self.rng.choice(sorted(self.world.dexes))]
        weth = self.world.tokens["WETH"]["address"]
        eth_in, eth_out = needs_eth(variant)
        pairs = [
            p
            for _, p in sorted(dex["pairs"].items())
            if not (eth_in or eth_out) or weth in (p["token0"], p["token1"])
        ]
        pair = self.rng.choice(pairs)
        if eth_in or eth_out:
            zero_for_one = (pair["token0"] == weth) == eth_in
        else:
            zero_for_one = self.rng.random() < 0.5
        return self.maker.v2(
            variant,
            dex["router"],
            pair,
            zero_for_one,
            reserves[pair["address"]],
            self.rng.uniform(0.002, 0.03),
            trader,
        )

    def _v3(self, kind: str, variant: str, trader: str) -> UserSwap:
        usd = self.rng.uniform(*USD_RANGE)
        if variant in ("exactInput", "exactOutput"):  # two pools through WETH
            first, second = self.rng.sample(self._v3_weth_pools, 2)
            while {first["token0"], first["token1"]} == {second["token0"], second["token1"]}:
                first, second = self.rng.sample(self._v3_weth_pools, 2)
            weth = self.world.tokens["WETH"]["address"]
            token_in = first["token1"] if first["token0"] == weth else first["token0"]
            return self.maker.v3(kind, variant, [first, second], token_in, usd, trader)
        pool = self.rng.choice(self.world.v3["pools"])
        token_in = pool["token0"] if self.rng.random() < 0.5 else pool["token1"]
        return self.maker.v3(kind, variant, [pool], token_in, usd, trader)

    def _universal(self, variant: str) -> UserSwap:
        weth = self.world.tokens["WETH"]["address"]
        if "v3" in variant:
            pool: dict[str, Any] = self.rng.choice(self._v3_weth_pools)
        else:  # the Universal Router's V2 factory is the first DEX's
            factory = self.world.v3["v2_factory"]
            [dex] = [d for d in self.world.dexes.values() if d["factory"] == factory]
            pairs = dex["pairs"]
            pool = self.rng.choice(
                [p for p in pairs.values() if weth in (p["token0"], p["token1"])]
            )
        other = pool["token1"] if pool["token0"] == weth else pool["token0"]
        return self.maker.universal(variant, pool, other, self.rng.uniform(*USD_RANGE))


async def run_traffic(
    world: World,
    rpc: Any,
    *,
    seconds: float,
    swaps_per_s: float,
    transfers_per_s: float = 0.0,
    seed: int = 1,
    tick: float = 0.1,
    resend_after: float = 3.0,
    drain: float = 10.0,
    mix: Mix = DEFAULT_MIX,
    private_share: float = 0.0,
    mevshare_url: str | None = None,
) -> SentTraffic:
    """Send swaps of the ``mix`` (V2 ones sized from on-chain reserves, re-read every tick; a
    swap paid by a prior transfer counts its two txs) and plain ETH transfers
    from spare senders at the given rates, re-sending what a sender has had stuck for
    ``resend_after`` seconds (0: never); then, as a wallet does, keep re-sending until all of
    it is mined, for at most ``drain`` seconds. ``private_share`` of the swaps go to the MEV-Share
    node at ``mevshare_url`` instead. Return what was sent."""
    if not 0.0 <= private_share <= 1.0:
        raise ValueError(f"private_share is a share within 0..1, got {private_share}")
    if private_share and mevshare_url is None:
        raise ValueError("private_share needs the MEV-Share node's URL")
    async with contextlib.AsyncExitStack() as stack:
        private = None
        if private_share and mevshare_url is not None:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            private = PrivateFlow(mevshare_url, session, seed=seed)
        return await _run(
            world,
            rpc,
            seconds=seconds,
            swaps_per_s=swaps_per_s,
            transfers_per_s=transfers_per_s,
            seed=seed,
            tick=tick,
            resend_after=resend_after,
            drain=drain,
            mix=mix,
            private=private,
            private_share=private_share,
        )


async def _run(
    world: World,
    rpc: Any,
    *,
    seconds: float,
    swaps_per_s: float,
    transfers_per_s: float,
    seed: int,
    tick: float,
    resend_after: float,
    drain: float,
    mix: Mix,
    private: PrivateFlow | None,
    private_share: float,
) -> SentTraffic:
    traffic = Traffic(world, seed=seed, mix=mix)
    choose_private = random.Random(seed + 1)
    await traffic.sync_nonces(rpc)
    kinds: Counter[str] = Counter()
    spammers = [Account.from_key(derived_key(f"traffic-spam-{i}")) for i in range(8)]
    for spammer in spammers:
        await rpc.call("anvil_setBalance", [spammer.address, hex(10**24)])
    nonces = {
        s.address: int(await rpc.call("eth_getTransactionCount", [s.address, "pending"]), 16)
        for s in spammers
    }
    pairs = [p["address"] for d in world.dexes.values() for p in d["pairs"].values()]
    reserves_fn = _PAIR.function("getReserves")
    swaps: list[str] = []
    transfers: list[str] = []
    wallet = _Wallet(resend_after)
    started = time.monotonic()
    sent_swaps = sent_transfers = node_timeouts = 0
    while (elapsed := time.monotonic() - started) < seconds:
        # A node saturated by the burst may not answer within the client's timeout: the tick
        # is skipped (counted), as a wallet would wait, and the rates catch up after it.
        try:
            head = await rpc.call("eth_getBlockByNumber", ["latest", False])
            answers = await rpc.batch(
                [
                    ("eth_call", [{"to": p, "data": "0x" + reserves_fn.encode().hex()}, "latest"])
                    for p in pairs
                ]
            )
        except RpcTimeout:
            node_timeouts += 1
            continue
        base_fee = int(head["baseFeePerGas"], 16)
        reserves = {
            p: reserves_fn.decode_output(bytes.fromhex(a[2:]))[:2]
            for p, a in zip(pairs, answers, strict=True)
        }
        batch: list[SignedTx] = []
        while sent_swaps < swaps_per_s * (elapsed + tick):
            trade = traffic.next(reserves, base_fee)
            kinds[trade.swap.kind] += 1
            swaps += [tx.hash for tx in trade.txs]
            sent_swaps += 1
            if private is not None and choose_private.random() < private_share:
                await private.send(trade.txs, int(head["number"], 16))
            else:
                batch += trade.txs
        while sent_transfers < transfers_per_s * (elapsed + tick):
            spammer = spammers[sent_transfers % len(spammers)]
            tx = spammer.sign_transaction(
                {
                    "type": 2,
                    "chainId": traffic.chain_id,
                    "nonce": nonces[spammer.address],
                    "to": to_checksum_address("0x" + "ee" * 20),
                    "value": 1,
                    "gas": 21_000,
                    "maxFeePerGas": 2 * base_fee + TIP,
                    "maxPriorityFeePerGas": TIP,
                }
            )
            nonces[spammer.address] += 1
            batch.append(
                SignedTx(
                    bytes(tx.raw_transaction),
                    "0x" + tx.hash.hex(),
                    spammer.address.lower(),
                    nonces[spammer.address] - 1,
                )
            )
            transfers.append(batch[-1].hash)
            sent_transfers += 1
        if batch:
            # Noted first: a send that timed out may or may not have reached the pool, and the
            # wallet sends again whatever stays unmined.
            wallet.sent(batch)
            try:
                await rpc.batch([("eth_sendRawTransaction", [tx.raw_hex]) for tx in batch])
            except RpcTimeout:
                node_timeouts += 1
        node_timeouts += await wallet.resend_stuck(rpc)
        await asyncio.sleep(max(0.0, started + elapsed + tick - time.monotonic()))
    drained_by = time.monotonic() + drain
    while wallet.resend_after > 0 and wallet.waiting() and time.monotonic() < drained_by:
        node_timeouts += await wallet.resend_stuck(rpc)
        await asyncio.sleep(tick)
    return SentTraffic(
        swaps,
        transfers,
        sorted(wallet.resent),
        sorted(wallet.taken_back),
        dict(sorted(kinds.items())),
        [] if private is None else private.sent,
        node_timeouts,
    )


@dataclass(frozen=True, slots=True)
class SentTraffic:
    """The hashes sent; those sent again because they sat unmined; and of those, the ones the
    node accepted again: it did not hold them at that moment (lost, or out of the pool for a
    moment while the devnet builder moved it)."""

    swaps: list[str]
    transfers: list[str]
    resent: list[str]
    taken_back: list[str]
    by_kind: dict[str, int]  # swaps per router kind
    private: list[str] = field(default_factory=list)  # the swaps' txs sent to the MEV-Share node
    node_timeouts: int = 0  # calls the node did not answer in time (ticks skipped, sends retried)


class _Wallet:
    """Tracks each sender's unmined txs; re-sends a sender's txs once its next one has waited
    ``resend_after`` seconds (checked at most once a second)."""

    def __init__(self, resend_after: float) -> None:
        self.resend_after = resend_after
        self.unmined: dict[str, dict[int, tuple[SignedTx, float]]] = {}
        self.resent: set[str] = set()
        self.taken_back: set[str] = set()
        self._checked_at = time.monotonic()

    def waiting(self) -> int:
        """How many sent txs are not known to be mined yet (as of the last check)."""
        return sum(len(txs) for txs in self.unmined.values())

    def sent(self, txs: list[SignedTx]) -> None:
        now = time.monotonic()
        for tx in txs:
            self.unmined.setdefault(tx.sender, {})[tx.nonce] = (tx, now)

    async def resend_stuck(self, rpc: Any) -> int:
        """Re-send what is stuck; returns how many calls the node did not answer in time (the
        check is then left to the next second)."""
        now = time.monotonic()
        if self.resend_after <= 0 or now - self._checked_at < 1.0:
            return 0
        self._checked_at = now
        senders = [s for s, txs in self.unmined.items() if txs]
        if not senders:
            return 0
        try:
            answers = await rpc.batch(
                [("eth_getTransactionCount", [sender, "latest"]) for sender in senders]
            )
        except RpcTimeout:
            return 1
        again: list[SignedTx] = []
        for sender, answer in zip(senders, answers, strict=True):
            mined_up_to = int(answer, 16)
            txs = self.unmined[sender]
            for nonce in [n for n in txs if n < mined_up_to]:
                del txs[nonce]
            waiting = txs.get(mined_up_to)
            if waiting is not None and now - waiting[1] >= self.resend_after:
                again += [tx for tx, _ in txs.values()]
                self.unmined[sender] = {n: (tx, now) for n, (tx, _) in txs.items()}
        if again:
            self.resent.update(tx.hash for tx in again)
            try:
                answers = await rpc.batch(
                    [("eth_sendRawTransaction", [tx.raw_hex]) for tx in again]
                )
            except RpcTimeout:
                return 1
            # Refused ones were still in the pool ("already imported") or mined meanwhile.
            self.taken_back.update(
                tx.hash
                for tx, answer in zip(again, answers, strict=True)
                if not isinstance(answer, RpcError)
            )
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m anvil.traffic",
        description=(
            "Send devnet traffic from its own process: traders' swaps (which move pool prices) "
            "and plain ETH transfers (which touch no pool), at fixed rates for a while; write "
            'the sent tx hashes as JSON {"swaps": [...], "transfers": [...], "resent": [...], '
            '"taken_back": [...], "by_kind": {...}, "private": [...], "node_timeouts": n} '
            "(resent: txs sent again because they sat unmined, as a wallet does; taken_back: "
            "those the node accepted again, not holding them at that moment; by_kind: swaps per "
            "router kind; private: swap txs sent to the MEV-Share node; node_timeouts: calls a "
            "saturated node did not answer in time, the tick skipped or the send left to the "
            "wallet's re-send)."
        ),
    )
    parser.add_argument("--world", required=True, help="the JSON of `mevbot devnet --out`")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--swaps-per-s", type=float, default=3.0)
    parser.add_argument("--transfers-per-s", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mix",
        type=mix_argument,
        default=DEFAULT_MIX,
        help=(
            "shares of swaps by router family: v2 (Router02), v3 (V3 SwapRouter, SwapRouter02), "
            f"universal (Universal Router); default {DEFAULT_MIX}"
        ),
    )
    parser.add_argument(
        "--resend-after",
        type=float,
        default=3.0,
        help="re-send a sender's txs when its next one sat unmined this long, s (0: never)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="after sending, keep re-sending stuck txs until all are mined, at most this long, s",
    )
    parser.add_argument(
        "--private-share",
        type=float,
        default=0.0,
        help="share of swaps sent privately to the devnet's MEV-Share node (0..1; default 0)",
    )
    parser.add_argument("--out", help="where to write the sent hashes (default: stdout)")
    args = parser.parse_args(argv)

    world = World.from_json(json.loads(Path(args.world).read_text()))

    async def go() -> SentTraffic:
        async with connect(world.rpc["ws"]) as rpc:
            return await run_traffic(
                world,
                rpc,
                seconds=args.seconds,
                swaps_per_s=args.swaps_per_s,
                transfers_per_s=args.transfers_per_s,
                seed=args.seed,
                resend_after=args.resend_after,
                drain=args.drain,
                mix=args.mix,
                private_share=args.private_share,
                mevshare_url=world.extra.get("mevshare"),
            )

    sent = asyncio.run(go())
    text = json.dumps(
        {
            "swaps": sent.swaps,
            "transfers": sent.transfers,
            "resent": sent.resent,
            "taken_back": sent.taken_back,
            "by_kind": sent.by_kind,
            "private": sent.private,
            "node_timeouts": sent.node_timeouts,
        }
    )
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
