"""The hint-driven backrun strategy on synthetic states, exact to the wei.

A hint with the swap's own logs (a V2 ``Sync``) must give the very backrun the pending-tx path
gives for the same swap; one that only names the pool (``default_logs``) gives a few guesses,
each an exact cycle on its guessed state; an SVR ``forward(aggregator, transmitSecondary)`` on a
known SVR aggregator gives the liquidations the oracle-update path gives for that answer.
"""

from __future__ import annotations

import eth_abi
from hypothesis import given
from hypothesis import strategies as st
from test_strategies import (
    AGGREGATOR_OF,
    DECODER,
    FEED_WETH,
    ROUTER_A,
    TKN,
    WETH,
    _context,
    _feed_update,
    _lending_state,
    _swap_tx,
    _two_dex_state,
)

from anvil.matchmaker import UNISWAP_V2_SWAP
from chain.ocr import FORWARD, TRANSMIT_SECONDARY, encode_ocr2_report
from chain.topics import SYNC
from strategies.backrun import BackrunArbitrage
from strategies.liquidation import LiquidationBackrun
from strategies.mevshare import BOUNDED, EXACT, ORACLE, HintBackrun
from watcher.decode_feeds import svr_forward
from watcher.events import HintLog, HintTx, MevShareHint

HINT_HASH = "0x" + "5e" * 32
FORWARDER = "0x" + "f0" * 20


def _hint(logs: tuple[HintLog, ...] | None = None, txs: tuple[HintTx, ...] = ()) -> MevShareHint:
    return MevShareHint(HINT_HASH, logs, txs, None, None, 321, "mevshare")


def _sync(address: str, reserve0: int, reserve1: int) -> HintLog:
    return HintLog(address, (SYNC,), eth_abi.encode(["uint112", "uint112"], [reserve0, reserve1]))


def test_a_hint_with_the_swaps_logs_is_backrun_exactly_as_the_pending_swap_would_be() -> None:
    state, pool_a, _ = _two_dex_state(100_000, 200_000)
    arbitrage = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    context = _context(state, _swap_tx(ROUTER_A, TKN, WETH, 30_000))
    expected = arbitrage.on_pending(context, state)[0]
    after = context.effect.pools[pool_a.address]
    reserves = (after.reserve0, after.reserve1)

    found = HintBackrun("mevshare", arbitrage).on_hint(
        _hint((_sync(pool_a.address, *reserves),)), state, context.target_block
    )

    assert [h.sizing for h in found] == [EXACT]
    candidate = found[0].candidate
    assert found[0].hint_hash == HINT_HASH and candidate.backrun == ()
    assert candidate.action == expected.action
    assert candidate.expected_profit == expected.expected_profit > 0
    assert candidate.key == f"mevshare:{context.target_block}:{HINT_HASH}:0"


def test_a_hint_that_only_names_the_pool_gives_a_few_exact_guesses() -> None:
    state, pool_a, pool_b = _two_dex_state(100_000, 200_000)
    arbitrage = BackrunArbitrage.for_state("backrun", state, start_token=WETH)
    strategy = HintBackrun("mevshare", arbitrage)
    # default_logs: the V2 Swap event with its topics zeroed and no data.
    named = HintLog(pool_a.address, (UNISWAP_V2_SWAP, bytes(32), bytes(32)), b"")

    found = strategy.on_hint(_hint((named,)), state, state.block_number + 1)

    assert 1 <= len(found) <= 3 and {h.sizing for h in found} == {BOUNDED}
    assert len({h.candidate.action for h in found}) == len(found)
    profits = [h.candidate.expected_profit for h in found]
    assert profits == sorted(profits, reverse=True) and profits[-1] > 0
    assert all(set(h.candidate.action.pools) == {pool_a.address, pool_b.address} for h in found)
    assert strategy.stats.bounded == 1 and strategy.stats.exact == 0


def test_a_hint_sharing_nothing_about_pools_gives_nothing() -> None:
    state, _, _ = _two_dex_state(100_000, 200_000)
    strategy = HintBackrun("mevshare", BackrunArbitrage.for_state("b", state, start_token=WETH))
    assert strategy.on_hint(_hint(), state, 1) == []
    elsewhere = HintTx(None, "0x" + "99" * 20, bytes.fromhex("38ed1739"), None)
    assert strategy.on_hint(_hint(None, (elsewhere,)), state, 1) == []
    assert strategy.stats.hints == 2 and strategy.stats.candidates == 0


def _forward(aggregator: str, answer: int) -> bytes:
    observations = (answer - answer // 2000, answer, answer + answer // 2000)
    report = encode_ocr2_report(1, observations)
    empty: list[bytes] = [bytes(32)] * 2
    inner = TRANSMIT_SECONDARY + eth_abi.encode(
        ["bytes32[3]", "bytes", "bytes32[]", "bytes32[]", "bytes32"],
        [[bytes(32)] * 3, report, empty, empty, bytes(32)],
    )
    return FORWARD + eth_abi.encode(["address", "bytes"], [aggregator, inner])


def test_an_svr_update_hint_gives_the_liquidations_of_the_oracle_update_path() -> None:
    state, _ = _lending_state()
    aggregator = AGGREGATOR_OF[FEED_WETH]
    liquidation = LiquidationBackrun("liquidation", weth=WETH)
    expected = liquidation.on_pending(_context(state, _feed_update(FEED_WETH, 2800 * 10**8)), state)
    strategy = HintBackrun(
        "mevshare",
        BackrunArbitrage.for_state("b", state, start_token=WETH),
        liquidation=liquidation,
        svr_aggregators=[aggregator],
        decode=DECODER.decode,
    )
    call = _forward(aggregator, 2800 * 10**8)
    hint = _hint(None, (HintTx(None, FORWARDER, FORWARD, call),))

    found = strategy.on_hint(hint, state, state.block_number + 1)

    assert expected and [h.sizing for h in found] == [ORACLE] * len(expected)
    assert [h.candidate.action for h in found] == [c.action for c in expected]
    assert all(h.candidate.backrun == () and h.hint_hash == HINT_HASH for h in found)
    # The same forward to an aggregator that is not an SVR one is not trusted.
    other = HintBackrun(
        "mevshare",
        BackrunArbitrage.for_state("b", state, start_token=WETH),
        liquidation=liquidation,
        svr_aggregators=["0x" + "12" * 20],
        decode=DECODER.decode,
    )
    assert other.on_hint(hint, state, state.block_number + 1) == []


@given(st.binary(max_size=300))
def test_the_forward_decoder_never_raises_on_hostile_calldata(junk: bytes) -> None:
    assert svr_forward(junk) is None or isinstance(svr_forward(junk), tuple)
    assert svr_forward(FORWARD + junk) is None or svr_forward(FORWARD + junk)[0].startswith("0x")


@given(st.binary(min_size=20, max_size=20), st.binary(max_size=200))
def test_the_forward_decoder_returns_what_was_forwarded(to: bytes, data: bytes) -> None:
    call = FORWARD + eth_abi.encode(["address", "bytes"], ["0x" + to.hex(), data])
    assert svr_forward(call) == ("0x" + to.hex(), data)


def test_hostile_hints_are_skipped_not_fatal() -> None:
    state, pool_a, _ = _two_dex_state(100_000, 200_000)
    strategy = HintBackrun(
        "mevshare",
        BackrunArbitrage.for_state("b", state, start_token=WETH),
        liquidation=LiquidationBackrun("liquidation", weth=WETH),
        svr_aggregators=[FORWARDER],
        decode=DECODER.decode,
    )
    # A Sync whose data is cut short only names its pool: guessed sizes, no crash.
    short = HintLog(pool_a.address, (SYNC,), b"\x01" * 7)
    found = strategy.on_hint(_hint((short,)), state, 1)
    assert {h.sizing for h in found} <= {BOUNDED} and strategy.stats.bounded == 1
    # A forward whose inner call is garbage, to an "SVR aggregator": nothing.
    garbage = FORWARD + eth_abi.encode(["address", "bytes"], [FORWARDER, b"\xba\x0c\xb2\x9e"])
    assert (
        strategy.on_hint(_hint(None, (HintTx(None, FORWARDER, FORWARD, garbage),)), state, 1) == []
    )
