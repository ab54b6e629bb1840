"""The liquidation keeper: liquidate positions under health factor 1, once each, at a profit.

Positions come from :class:`~simulation.state.ChainState` (kept from the Aave pool's events by
the block pipeline, balances at the head's time). Every ``reconcile_every`` blocks the keeper
checks them against the pool's own ``getUserAccountData`` (one batched ``eth_call``) and counts
the users whose local health factor disagrees. On every block it finds the positions with health
factor < 1 with the shared search (:func:`simulation.liquidation.find_liquidations`: close-factor
size, flash-borrowed from the pool; collateral plus bonus less the protocol fee swapped back
through the best pool), then runs the exact ``Executor.liquidate`` on the fork simulator: the
measured debt-asset gain (bonus minus the swap-back cost and the loan's premium) minus the gas
must stay above ``min_profit_wei``; a revert is logged with Aave's error decoded.

The action goes out privately by default: a :class:`~simulation.candidates.Candidate` with no
backrun, handed to the injected ``submit`` (the app wires the bundle pipeline), keyed by
(job, user, position state, target block). In public mode it goes through the
:class:`~execution.sender.TxSender`, keyed by (job, user, position state), and is cancelled
if the position turns healthy before it lands. The key is claimed in the store first: a
position state is never liquidated twice, by any instance.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from chain.abi import Abi
from chain.errors import ChainError
from chain.rpc import Rpc, eth_get_block
from chain.types import BlockHeader, MalformedError, hex_to_bytes
from execution.executor_calls import gas_limit_for
from execution.sender import SendRefused, TxRequest, TxSender
from keepers.scheduler import Tick, action_key
from keepers.store import KeeperStore
from simulation.aave_v3 import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    AavePosition,
    AaveRevert,
    health_factor,
)
from simulation.actions import LiquidationAction
from simulation.candidates import Candidate
from simulation.liquidation import LiquidationOpportunity, find_liquidations, value_in_wei
from simulation.simulator import SimCall, SimulationError, Simulator
from simulation.state import ChainState

POOL = Abi.from_signatures(
    "function getUserAccountData(address) returns (uint256, uint256, uint256, uint256,"
    " uint256, uint256)"
)
ACCOUNT_DATA = POOL.function("getUserAccountData")
SIMULATION_GAS = 2_000_000
log = logging.getLogger(__name__)

Submit = Callable[[Candidate], Awaitable[None]]


def position_digest(position: AavePosition) -> str:
    """A short digest of a position's scaled amounts and flags: the same state gives the same
    key everywhere."""
    parts = sorted(f"c{a}={v}" for a, v in position.scaled_collateral.items())
    parts += sorted(f"d{a}={v}" for a, v in position.scaled_debt.items())
    parts.append(f"f={position.configuration}")
    return hashlib.sha256(",".join(parts).encode()).hexdigest()[:16]


@dataclass(slots=True)
class LiquidationKeeperStats:
    reconciliations: int = 0
    mismatches: int = 0  # users whose local health factor differed from the pool's
    unprofitable: int = 0
    simulation_failures: int = 0
    submitted: int = 0
    sent: int = 0
    cancelled: int = 0


class LiquidationKeeper:
    """Finds, verifies and takes liquidations for the executor owned by ``executor_owner``."""

    def __init__(
        self,
        name: str,
        *,
        state: ChainState,
        rpc: Rpc,
        simulator: Simulator,
        store: KeeperStore,
        owner: str,
        executor: str,
        executor_owner: str,
        weth: str,
        mode: Literal["bundle", "public"] = "bundle",
        submit: Submit | None = None,
        sender: TxSender | None = None,
        factories: Iterable[str] | None = None,
        reconcile_every: int = 10,
        min_profit_wei: int = 0,
        gas_price_premium_wei: int = 0,
        timeout_s: float = 5.0,
    ) -> None:
        if mode == "bundle" and submit is None:
            raise ValueError("bundle mode needs a submit callable")
        if mode == "public" and sender is None:
            raise ValueError("public mode needs a transaction sender")
        self.name = name
        self.state = state
        self.rpc = rpc
        self.simulator = simulator
        self.store = store
        self.owner = owner
        self.executor = executor.lower()
        self.executor_owner = executor_owner.lower()
        self.weth = weth.lower()
        self.mode = mode
        self.submit = submit
        self.sender = sender
        self.factories = None if factories is None else tuple(factories)
        self.reconcile_every = max(1, reconcile_every)
        self.min_profit_wei = min_profit_wei
        self.gas_price_premium_wei = gas_price_premium_wei
        self.timeout_s = timeout_s
        self.stats = LiquidationKeeperStats()
        self.chain_health: dict[str, int] = {}
        self._last_reconciled: int | None = None
        self._in_flight: dict[str, str] = {}  # public tx key -> user

    async def run(self, tick: Tick) -> str | None:
        header = tick.header or await eth_get_block(self.rpc, "latest")
        if header is None:
            return None
        if self.sender is not None and self.mode == "public":
            await self._follow_public(header)
        if self._last_reconciled is None or header.number - self._last_reconciled >= (
            self.reconcile_every
        ):
            await self.reconcile(header.number)
        found = find_liquidations(self.state, weth=self.weth, factories=self.factories)
        actions = []
        for opportunity in found:
            action = await self._take(opportunity, header)
            if action is not None:
                actions.append(action)
        return "; ".join(actions) or None

    # -- position index reconciliation -----------------------------------------------------

    async def reconcile(self, block: int) -> int:
        """Compare every local position with debt to ``getUserAccountData``; returns how many
        disagree on the health factor (also added to ``stats.mismatches``)."""
        users = sorted(u for u, p in self.state.positions.items() if p.has_debt)
        pool = self.state.lending_pool
        self._last_reconciled = block
        if not users or pool is None:
            return 0
        answers = await self.rpc.batch(
            [
                (
                    "eth_call",
                    ({"to": pool, "data": "0x" + ACCOUNT_DATA.encode(u).hex()}, hex(block)),
                )
                for u in users
            ],
            timeout=self.timeout_s,
        )
        mismatches = 0
        state = self.state
        for user, answer in zip(users, answers, strict=True):
            if isinstance(answer, ChainError):
                raise answer
            try:
                chain_health = ACCOUNT_DATA.decode_output(hex_to_bytes(answer))[5]
            except MalformedError as error:
                raise ChainError(f"getUserAccountData({user}): {error.reason}") from None
            self.chain_health[user] = chain_health
            try:
                local = health_factor(
                    state.positions[user], state.reserves, state.prices, state.timestamp
                )
            except AaveRevert:
                local = None
            if local != chain_health:
                mismatches += 1
        self.stats.reconciliations += 1
        self.stats.mismatches += mismatches
        return mismatches

    # -- one opportunity -------------------------------------------------------------------

    def _action(self, opportunity: LiquidationOpportunity) -> LiquidationAction:
        return LiquidationAction(
            pool=self.state.lending_pool or "",
            collateral_asset=opportunity.collateral_asset,
            debt_asset=opportunity.debt_asset,
            user=opportunity.user,
            debt_to_cover=opportunity.debt_to_cover,
            swap_pairs=(opportunity.swap_pool,),
        )

    def _key(self, opportunity: LiquidationOpportunity, target_block: int) -> str:
        digest = position_digest(self.state.positions[opportunity.user])
        if self.mode == "bundle":
            return action_key(self.name, opportunity.user, f"{digest}@{target_block}")
        return action_key(self.name, opportunity.user, digest)

    async def _take(self, opportunity: LiquidationOpportunity, header: BlockHeader) -> str | None:
        if opportunity.user in self._in_flight.values():
            return None
        target_block = header.number + 1
        key = self._key(opportunity, target_block)
        if not await self.store.claim(key, self.owner):
            return None
        try:
            verified = await self._verify(opportunity, header)
            if verified is None:
                await self.store.release_claim(key, self.owner)
                return None
            profit, profit_wei, gas_used, gas_cost_wei = verified
            action = self._action(opportunity)
            candidate = Candidate(
                strategy=self.name,
                key=key,
                action=action,
                backrun=(),
                target_block=target_block,
                profit_token=opportunity.debt_asset,
                expected_profit=profit,
                expected_profit_wei=profit_wei,
            )
            if self.mode == "bundle":
                assert self.submit is not None
                await self.submit(candidate)
                self.stats.submitted += 1
                return f"bundle for {opportunity.user} at {target_block}: +{profit}"
            return await self._send_public(candidate, gas_used, gas_cost_wei, header)
        except BaseException:
            if self.sender is None or self.sender.pending(key) is None:
                await self.store.release_claim(key, self.owner)
            raise

    async def _verify(
        self, opportunity: LiquidationOpportunity, header: BlockHeader
    ) -> tuple[int, int, int, int] | None:
        """Run the exact executor call on the fork: (profit, profit in wei, gas used, gas cost
        in wei), or None when it reverts or does not pay for its gas."""
        await self.simulator.on_new_head(header.number)
        action = self._action(opportunity)
        call = SimCall(
            sender=self.executor_owner,
            to=self.executor,
            data=action.calldata(0, 0),
            gas=SIMULATION_GAS,
        )
        try:
            result = await self.simulator.simulate(
                [call], watch=[self.executor], tokens=[opportunity.debt_asset]
            )
        except SimulationError:
            self.stats.simulation_failures += 1
            return None
        if not result.success:
            self.stats.simulation_failures += 1
            log.info(
                "liquidation of %s reverts on the fork: %s",
                opportunity.user,
                result.txs[0].revert_reason,
            )
            return None
        profit = result.balance_diffs[self.executor].get(opportunity.debt_asset, 0)
        profit_wei = value_in_wei(
            profit,
            opportunity.debt_asset,
            self.weth,
            self.state.prices,
            self.state.reserves,
        )
        gas_used = result.txs[0].gas_used
        gas_cost_wei = gas_used * (result.base_fee + self.gas_price_premium_wei)
        if profit <= 0 or profit_wei - gas_cost_wei < self.min_profit_wei:
            self.stats.unprofitable += 1
            return None
        return profit, profit_wei, gas_used, gas_cost_wei

    async def _send_public(
        self, candidate: Candidate, gas_used: int, gas_cost_wei: int, header: BlockHeader
    ) -> str | None:
        assert self.sender is not None
        (user,) = candidate.action.positions
        # minProfit makes the call revert unless the gain still covers the gas it burns.
        min_profit = -(-gas_cost_wei * candidate.expected_profit // candidate.expected_profit_wei)
        request = TxRequest(
            key=candidate.key,
            to=self.executor,
            data=candidate.action.calldata(min_profit, 0),
            gas=gas_limit_for(gas_used),
        )
        try:
            sent = await self.sender.send(request, block=header.number, base_fee=header.base_fee)
        except SendRefused as refused:
            await self.store.release_claim(candidate.key, self.owner)
            return f"liquidation of {user} refused: {refused}"
        self._in_flight[candidate.key] = user
        self.stats.sent += 1
        return f"liquidation of {user} sent ({sent.hash}): +{candidate.expected_profit}"

    async def _follow_public(self, header: BlockHeader) -> None:
        """Settle our public txs; cancel those whose position is healthy again."""
        assert self.sender is not None
        await self.sender.on_block(header)
        for key, user in list(self._in_flight.items()):
            tracked = self.sender.pending(key)
            if tracked is None:
                del self._in_flight[key]
            elif not tracked.cancelling and not self._liquidatable(user):
                await self.sender.cancel(key)
                self.stats.cancelled += 1

    def _liquidatable(self, user: str) -> bool:
        state = self.state
        position = state.positions.get(user)
        if position is None or not position.has_debt:
            return False
        try:
            health = health_factor(position, state.reserves, state.prices, state.timestamp)
        except AaveRevert:
            return False
        return health < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
