"""Universal Router ``execute`` decoding: the command tables against the installed package's
Commands.sol, hypothesis round trips of random plans encoded with eth-abi, the versions' masks,
V4_SWAP actions, sub-plans, bad plans, the devnet's traffic through every router kind, and the
``mevbot decode`` command on Universal Router and SwapRouter02 calldata."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import eth_abi
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_state import _loaded_state, _mine_block, _pending

from anvil.devnet import Devnet
from anvil.swaps import VARIANTS
from anvil.traffic import Traffic
from chain.intents import (
    AuxiliaryIntent,
    CommandIntent,
    MulticallIntent,
    SwapIntent,
    V4SwapIntent,
)
from chain.rpc import connect
from mevbot.deployment import deployment_from_world
from watcher.decode import METHOD_TABLES, Decoder, RouterKind
from watcher.decode_universal import V1, V1_2, V2, V2_1, V2_1_1, UniversalVersion

ROOT = Path(__file__).resolve().parents[1]
COMMANDS_SOL = ROOT / "node_modules/@uniswap/universal-router/contracts/libraries/Commands.sol"
ROUTER = "0x" + "ab" * 20
KINDS = {
    V1: RouterKind.UNIVERSAL_ROUTER_V1,
    V1_2: RouterKind.UNIVERSAL_ROUTER_V1_2,
    V2: RouterKind.UNIVERSAL_ROUTER_V2,
    V2_1: RouterKind.UNIVERSAL_ROUTER_V2_1,
    V2_1_1: RouterKind.UNIVERSAL_ROUTER_V2_1_1,
}
# The sentinels, as calldata carries them (Constants.sol / ActionConstants.sol).
MSG_SENDER_WORD = "0x" + "00" * 19 + "01"
ADDRESS_THIS_WORD = "0x" + "00" * 19 + "02"
CONTRACT_BALANCE = 2**255
DEADLINE = 1_900_000_000
SWAP_V3 = ["address", "uint256", "uint256", "bytes", "bool"]
SWAP_V2 = ["address", "uint256", "uint256", "address[]", "bool"]
TOKEN_TO_AMOUNT = ["address", "address", "uint256"]
# The commands every version shares, by byte (Commands.sol of each version).
COMMON = {
    0x00: ("V3_SWAP_EXACT_IN", SWAP_V3),
    0x01: ("V3_SWAP_EXACT_OUT", SWAP_V3),
    0x02: ("PERMIT2_TRANSFER_FROM", ["address", "address", "uint160"]),
    0x04: ("SWEEP", TOKEN_TO_AMOUNT),
    0x05: ("TRANSFER", TOKEN_TO_AMOUNT),
    0x06: ("PAY_PORTION", TOKEN_TO_AMOUNT),
    0x08: ("V2_SWAP_EXACT_IN", SWAP_V2),
    0x09: ("V2_SWAP_EXACT_OUT", SWAP_V2),
    0x0A: ("PERMIT2_PERMIT", ["((address,uint160,uint48,uint48),address,uint256)", "bytes"]),
    0x0B: ("WRAP_ETH", ["address", "uint256"]),
    0x0C: ("UNWRAP_WETH", ["address", "uint256"]),
}

Command = tuple[int, list[str], tuple[Any, ...]]


def execute(commands: list[Command], deadline: int | None = DEADLINE) -> bytes:
    """``execute`` calldata as the Uniswap SDK builds it: each input is abi.encode(args)."""
    body: list[Any] = [
        bytes(byte for byte, _, _ in commands),
        [eth_abi.encode(types, args) for _, types, args in commands],
    ]
    if deadline is None:
        return keccak(text="execute(bytes,bytes[])")[:4] + eth_abi.encode(
            ["bytes", "bytes[]"], body
        )
    signature = "execute(bytes,bytes[],uint256)"
    return keccak(text=signature)[:4] + eth_abi.encode(
        ["bytes", "bytes[]", "uint256"], [*body, deadline]
    )


def packed(tokens: list[str], fees: list[int]) -> bytes:
    out = bytes.fromhex(tokens[0][2:])
    for fee, token in zip(fees, tokens[1:], strict=True):
        out += fee.to_bytes(3, "big") + bytes.fromhex(token[2:])
    return out


def decode(version: UniversalVersion, data: bytes, value: int = 0) -> Any:
    decoder = Decoder({ROUTER: KINDS[version]})
    intent = decoder.decode(ROUTER, data, value)
    return intent, decoder.stats


def meaning(address: str) -> str:
    return {MSG_SENDER_WORD: "msg.sender", ADDRESS_THIS_WORD: "router"}.get(address, address)


# --- the tables against their sources -------------------------------------------------------------


def test_the_devnet_version_is_the_installed_packages_commands_sol() -> None:
    source = COMMANDS_SOL.read_text()
    constants = {
        int(value, 16): name
        for name, value in re.findall(r"uint256 constant (\w+) = (0x[0-9a-fA-F]+);", source)
    }
    assert {byte: command.name for byte, command in V2_1.commands.items()} == constants
    mask = re.search(r"COMMAND_TYPE_MASK = (0x[0-9a-fA-F]+);", source)
    assert mask is not None and V2_1.mask == int(mask.group(1), 16) == 0x7F


def test_versions_differ_where_their_sources_do() -> None:
    assert [v.mask for v in (V1, V1_2, V2, V2_1, V2_1_1)] == [0x1F, 0x3F, 0x3F, 0x7F, 0x7F]
    assert [v.commands[0x10].name for v in (V1, V1_2, V2)] == ["SEAPORT", "SEAPORT_V1_5", "V4_SWAP"]
    assert V1.commands[0x0E].name == "SEAPORT_V1_4"
    assert {v.commands[0x0E].name for v in (V1_2, V2, V2_1, V2_1_1)} == {"BALANCE_CHECK_ERC20"}
    assert 0x07 not in V2_1.commands and V2_1_1.commands[0x07].name == "PAY_PORTION_FULL_PRECISION"
    assert 0x14 in V1.commands and 0x14 not in V1_2.commands  # LOOKS_RARE_1155 left in v1.2
    for version in (V1, V1_2, V2, V2_1, V2_1_1):
        for byte, (name, _) in COMMON.items():
            assert version.commands[byte].name == name
        for selector, method in METHOD_TABLES[KINDS[version]].items():
            assert keccak(text=method.signature)[:4] == selector
        assert {s.hex() for s in METHOD_TABLES[KINDS[version]]} == {"3593564c", "24856bc3"}


# --- hypothesis round trips -----------------------------------------------------------------------

addresses = st.one_of(
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    st.sampled_from([MSG_SENDER_WORD, ADDRESS_THIS_WORD]),
)
amounts = st.one_of(st.integers(0, 2**256 - 1), st.just(CONTRACT_BALANCE))
fee_tiers = st.sampled_from([100, 500, 3000, 10000])


@st.composite
def commands(draw: st.DrawFn) -> Command:
    byte = draw(st.sampled_from(sorted(COMMON)))
    flag = draw(st.sampled_from([0, 0x80]))
    name, types = COMMON[byte]
    if "SWAP" in name:
        hops = draw(st.integers(1, 3))
        tokens = draw(st.lists(addresses.filter(lambda a: len(a) == 42), min_size=hops + 1,
                               max_size=hops + 1))  # fmt: skip
        amount, limit = draw(amounts), draw(st.integers(0, 2**256 - 1))
        path: Any = tokens
        if name.startswith("V3"):
            path = packed(tokens, draw(st.lists(fee_tiers, min_size=hops, max_size=hops)))
        return byte | flag, types, (draw(addresses), amount, limit, path, True)
    if name == "PERMIT2_PERMIT":
        details = (draw(addresses), draw(st.integers(0, 2**160 - 1)), 2**40, 0)
        return byte | flag, types, ((details, draw(addresses), 2**40), b"\x01" * 65)
    if name == "PERMIT2_TRANSFER_FROM":
        return (
            byte | flag,
            types,
            (draw(addresses), draw(addresses), draw(st.integers(0, 2**160 - 1))),
        )
    args = (*[draw(addresses) for _ in types[:-1]], draw(amounts))
    return byte | flag, types, args


def expected_swap(name: str, args: tuple[Any, ...], unwraps_later: bool) -> dict[str, Any]:
    to, amount, limit, path, _ = args
    exact_in = name.endswith("EXACT_IN")
    if name.startswith("V3"):
        raw = path
        tokens = tuple("0x" + raw[i : i + 20].hex() for i in range(0, len(raw), 23))
        fees = tuple(int.from_bytes(raw[i : i + 3], "big") for i in range(20, len(raw), 23))
        if not exact_in:
            tokens, fees = tokens[::-1], fees[::-1]
    else:
        tokens, fees = tuple(path), ()
    whole = exact_in and amount == CONTRACT_BALANCE
    return {
        "protocol": "uniswap-v3" if name.startswith("V3") else "uniswap-v2",
        "method": name,
        "kind": "exact_in" if exact_in else "exact_out",
        "path": tokens,
        "fees": fees,
        "amount_in": (None if whole else amount) if exact_in else None,
        "amount_out_min": limit if exact_in else None,
        "amount_out": None if exact_in else amount,
        "amount_in_max": None if exact_in else limit,
        "recipient": meaning(to),
        "deadline": DEADLINE,
        "eth_in": False,
        "eth_out": unwraps_later and meaning(to) == "router",
        "whole_balance": whole,
    }


def expected_payment(name: str, args: tuple[Any, ...], value: int) -> dict[str, Any]:
    if name == "PERMIT2_PERMIT":
        return {"token": args[0][0][0], "amount": args[0][0][1], "recipient": args[0][1]}
    if name in ("WRAP_ETH", "UNWRAP_WETH"):
        to, amount = args
        token = None
    else:
        token, to, amount = args
    whole = amount == CONTRACT_BALANCE
    if whole:
        amount = value if name == "WRAP_ETH" else None
    return {"token": token, "amount": amount, "recipient": meaning(to), "whole_balance": whole}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from([V1, V1_2, V2, V2_1, V2_1_1]),
    plan=st.lists(commands(), max_size=8),
    value=st.integers(0, 10**21),
    with_deadline=st.booleans(),
)
def test_random_plans_round_trip(
    version: UniversalVersion, plan: list[Command], value: int, with_deadline: bool
) -> None:
    intent, stats = decode(version, execute(plan, DEADLINE if with_deadline else None), value)
    assert isinstance(intent, MulticallIntent), stats.log_line()
    assert intent.method == "execute" and intent.value == value
    assert intent.deadline == (DEADLINE if with_deadline else None)
    assert len(intent.calls) == len(plan)
    names = [COMMON[byte & 0x7F][0] for byte, _, _ in plan]
    swaps = []
    for index, (call, (byte, _, args)) in enumerate(zip(intent.calls, plan, strict=True)):
        name = names[index]
        assert isinstance(call, CommandIntent)
        assert (call.command, call.name, call.allow_revert) == (byte, name, byte >= 0x80)
        if "SWAP" in name:
            want = expected_swap(name, args, "UNWRAP_WETH" in names[index + 1 :])
            if not with_deadline:
                want["deadline"] = None
            assert isinstance(call.intent, SwapIntent) and call.payer_is_user is True
            assert {k: getattr(call.intent, k) for k in want} == want
            swaps.append(call.intent)
        else:
            want = expected_payment(name, args, value)
            assert isinstance(call.intent, AuxiliaryIntent) and call.intent.method == name
            assert {k: getattr(call.intent, k) for k in want} == want
    assert list(intent.swaps) == swaps


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from([V1, V1_2, V2, V2_1, V2_1_1]),
    command_bytes=st.binary(max_size=6),
    inputs=st.lists(st.binary(max_size=200), max_size=6),
    value=st.integers(0, 2**256 - 1),
)
def test_garbage_plans_never_raise_and_are_counted(
    version: UniversalVersion, command_bytes: bytes, inputs: list[bytes], value: int
) -> None:
    data = keccak(text="execute(bytes,bytes[])")[:4] + eth_abi.encode(
        ["bytes", "bytes[]"], [command_bytes, inputs]
    )
    _, stats = decode(version, data, value)
    assert stats.decoded + stats.malformed == 1 and stats.undecoded == 0


# --- what a wallet sends ------------------------------------------------------------------------

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
DAI = "0x6b175474e89094c44da98b954eedeac495271d0f"


def test_ether_wrapped_into_the_router_is_the_contract_balance_swap_input() -> None:
    path = packed([WETH, USDC], [500])
    plan = [
        (0x0B, ["address", "uint256"], (ADDRESS_THIS_WORD, CONTRACT_BALANCE)),
        (0x00, SWAP_V3, (MSG_SENDER_WORD, CONTRACT_BALANCE, 1_900_000_000, path, False)),
    ]
    intent, _ = decode(V2, execute(plan), 10**18)
    (swap,) = intent.swaps
    assert swap.path == (WETH, USDC) and swap.fees == (500,)
    assert swap.amount_in == 10**18 and swap.amount_out_min == 1_900_000_000
    assert swap.whole_balance and swap.eth_in and swap.recipient == "msg.sender"
    assert intent.calls[0].intent.amount == 10**18 and intent.calls[1].payer_is_user is False


def test_tokens_to_ether_through_v2_then_v3_into_the_router_then_unwrapped() -> None:
    plan = [
        (0x08, SWAP_V2, (ADDRESS_THIS_WORD, 5 * 10**21, 0, [DAI, USDC], True)),
        (
            0x00,
            SWAP_V3,
            (ADDRESS_THIS_WORD, CONTRACT_BALANCE, 0, packed([USDC, WETH], [3000]), False),
        ),
        (0x0C, ["address", "uint256"], (MSG_SENDER_WORD, 2 * 10**18)),
    ]
    intent, _ = decode(V1_2, execute(plan))
    first, second = intent.swaps
    assert (first.protocol, first.path, first.amount_in) == ("uniswap-v2", (DAI, USDC), 5 * 10**21)
    assert (second.protocol, second.path, second.fees) == ("uniswap-v3", (USDC, WETH), (3000,))
    assert second.amount_in is None and second.whole_balance  # the first swap's output
    assert first.eth_out and second.eth_out and not second.eth_in
    unwrap = intent.calls[2].intent
    assert (unwrap.method, unwrap.amount, unwrap.recipient) == (
        "UNWRAP_WETH",
        2 * 10**18,
        "msg.sender",
    )


def test_exact_output_v3_path_reads_input_to_output() -> None:
    # V3_SWAP_EXACT_OUT's path runs from the output back: USDC <- WETH <- DAI.
    path = packed([USDC, WETH, DAI], [500, 3000])
    plan = [(0x01, SWAP_V3, (MSG_SENDER_WORD, 1000 * 10**6, 1100 * 10**18, path, True))]
    intent, _ = decode(V2_1_1, execute(plan))
    (swap,) = intent.swaps
    assert swap.path == (DAI, WETH, USDC) and swap.fees == (3000, 500)
    assert (swap.amount_out, swap.amount_in_max) == (1000 * 10**6, 1100 * 10**18)


def test_the_mask_and_the_allow_revert_bit_per_version() -> None:
    sweep = (USDC, MSG_SENDER_WORD, 0)
    # 0x30 & 0x1f is SEAPORT on v1; v2 masks with 0x3f and has no command 0x30.
    intent, _ = decode(V1, execute([(0x30, TOKEN_TO_AMOUNT, sweep)]))
    assert intent.calls[0].name == "SEAPORT"
    intent, stats = decode(V2, execute([(0x30, TOKEN_TO_AMOUNT, sweep)]))
    assert (
        intent is None
        and "command 0x30 is not a universal-router-v2 command" in stats.last_malformed
    )
    # 0x44 is SWEEP (0x04) on v2 (mask 0x3f) but no command on v2.1 (mask 0x7f).
    intent, _ = decode(V2, execute([(0x44, TOKEN_TO_AMOUNT, sweep)]))
    assert intent.calls[0].name == "SWEEP"
    assert decode(V2_1, execute([(0x44, TOKEN_TO_AMOUNT, sweep)]))[0] is None
    intent, _ = decode(V2_1, execute([(0xC0, ["uint256"], (1,))]))
    assert (intent.calls[0].name, intent.calls[0].allow_revert) == ("ACROSS_V4_DEPOSIT_V3", True)


POOL_KEY = "(address,address,uint24,int24,address)"
PATH_KEYS = "(address,uint24,int24,address,bytes)[]"


def v4_swap(actions: list[tuple[int, list[str], tuple[Any, ...]]]) -> Command:
    return (
        0x10,
        ["bytes", "bytes[]"],
        (bytes(a for a, _, _ in actions), [eth_abi.encode(t, v) for _, t, v in actions]),
    )


def test_v4_swap_actions_decode_but_are_not_v2_v3_swaps() -> None:
    native, hooks = "0x" + "00" * 20, "0x" + "00" * 20
    key = (native, USDC, 500, 10, hooks)
    single = (
        0x06,
        [f"({POOL_KEY},bool,uint128,uint128,bytes)"],
        ((key, True, 10**18, 3 * 10**9, b""),),
    )
    hops = [(WETH, 3000, 60, hooks, b""), (DAI, 100, 1, hooks, b"")]
    multi = (
        0x09,
        [f"(address,{PATH_KEYS},uint128,uint128)"],
        ((USDC, hops, 5 * 10**9, 6 * 10**18),),
    )
    settle = (0x0C, ["address", "uint256"], (native, 10**18))
    take = (0x0F, ["address", "uint256"], (USDC, 3 * 10**9))
    intent, stats = decode(V2_1, execute([(0x0B, ["address", "uint256"], (ADDRESS_THIS_WORD, 0)),
                                           v4_swap([single, multi, settle, take])]), 10**18)  # fmt: skip
    assert intent is not None, stats.log_line()
    assert intent.swaps == ()
    v4 = intent.calls[1].intent
    assert isinstance(v4, MulticallIntent) and v4.method == "V4_SWAP"
    first, second, settle_all, take_all = v4.calls
    assert isinstance(first, V4SwapIntent) and first.path == (native, USDC)
    assert (first.kind, first.amount_in, first.amount_out_min) == ("exact_in", 10**18, 3 * 10**9)
    assert (first.fees, first.tick_spacings) == ((500,), (10,))
    # Exact-out: V4Router walks the path keys from the output back.
    assert second.path == (WETH, DAI, USDC) and second.fees == (3000, 100)
    assert (second.amount_out, second.amount_in_max) == (5 * 10**9, 6 * 10**18)
    assert (settle_all.method, settle_all.token, settle_all.amount) == (
        "SETTLE_ALL",
        native,
        10**18,
    )
    assert (take_all.method, take_all.token, take_all.amount) == ("TAKE_ALL", USDC, 3 * 10**9)
    # v2.1.1's V4Router structs carry minHopPriceX36: the same bytes no longer fit.
    assert decode(V2_1_1, execute([v4_swap([single])]))[0] is None
    single_2_1_1 = (0x06, [f"({POOL_KEY},bool,uint128,uint128,uint256,bytes)"],
                    ((key, False, 10**18, 1, 0, b""),))  # fmt: skip
    intent, _ = decode(V2_1_1, execute([v4_swap([single_2_1_1])]))
    assert intent.calls[0].intent.calls[0].path == (USDC, native)


def test_sub_plans_nest_their_swaps_in_order() -> None:
    swap = (0x08, SWAP_V2, (MSG_SENDER_WORD, 10**18, 1, [WETH, USDC], True))
    inner = [swap, (0x04, TOKEN_TO_AMOUNT, (USDC, MSG_SENDER_WORD, 0))]
    sub = (
        0xA1,  # EXECUTE_SUB_PLAN, allowed to revert
        ["bytes", "bytes[]"],
        (bytes(c for c, _, _ in inner), [eth_abi.encode(t, v) for _, t, v in inner]),
    )
    intent, _ = decode(V1_2, execute([sub, swap]))
    assert intent.calls[0].name == "EXECUTE_SUB_PLAN" and intent.calls[0].allow_revert
    assert [s.path for s in intent.swaps] == [(WETH, USDC), (WETH, USDC)]
    deep = sub
    for _ in range(4):
        deep = (0x21, ["bytes", "bytes[]"], (bytes([deep[0]]), [eth_abi.encode(deep[1], deep[2])]))
    intent, stats = decode(V1_2, execute([deep]))
    assert intent is None and "sub-plans nested deeper" in stats.last_malformed


def test_bad_plans_are_malformed_with_a_reason() -> None:
    swap = (0x08, SWAP_V2, (MSG_SENDER_WORD, 1, 1, [WETH, USDC], True))
    data = keccak(text="execute(bytes,bytes[])")[:4] + eth_abi.encode(
        ["bytes", "bytes[]"], [b"\x08\x08", [eth_abi.encode(swap[1], swap[2])]]
    )
    assert decode(V2, data)[1].last_malformed == "2 commands but 1 inputs"
    one_token = (0x08, SWAP_V2, (MSG_SENDER_WORD, 1, 1, [WETH], True))
    stats = decode(V2, execute([swap, one_token]))[1]
    assert (
        stats.last_malformed
        == "command 1 (V2_SWAP_EXACT_IN): V2_SWAP_EXACT_IN: path has 1 token(s)"
    )
    short_input = keccak(text="execute(bytes,bytes[])")[:4] + eth_abi.encode(
        ["bytes", "bytes[]"], [b"\x0b", [b"\x00" * 40]]
    )
    assert "command 0 (WRAP_ETH): truncated" in decode(V2, short_input)[1].last_malformed


# --- the devnet: every router kind's traffic ------------------------------------------------------


def _pool_of(world: Any, factory_of: dict[str, str], swap: SwapIntent, hop: int) -> str:
    pair = {swap.path[hop], swap.path[hop + 1]}
    if swap.protocol == "uniswap-v3":
        [pool] = [
            p["address"]
            for p in world.v3["pools"]
            if {p["token0"], p["token1"]} == pair and p["fee"] == swap.fees[hop]
        ]
        return pool
    [dex] = [d for d in world.dexes.values() if d["factory"] == factory_of[swap.router]]
    [pool] = [p["address"] for p in dex["pairs"].values() if {p["token0"], p["token1"]} == pair]
    return pool


def test_every_router_kinds_devnet_traffic_decodes_to_swaps_on_world_pools(
    devnet_factory: Any,
) -> None:
    devnet: Devnet = devnet_factory()
    world = devnet.world
    deployment = deployment_from_world(world, None)
    decoder = Decoder(deployment.routers)
    # Router02s trade their own factory's pairs; SwapRouter02 and the Universal Router the V2
    # factory they were deployed with.
    factory_of = {d["router"]: d["factory"] for d in world.dexes.values()}
    factory_of |= {
        r["address"]: world.v3["v2_factory"] for r in world.routers if r["kind"] != "uniswap-v2"
    }
    traffic = Traffic(world, seed=7)
    traffic.nonces = {t.address: 0 for t in world.traders}
    reserves = {address: (10**24, 10**24) for address in world.pool_addresses()}
    decoded_kinds: set[str] = set()
    for kind, variants in VARIANTS.items():
        for variant in variants:
            trade = traffic.trade(reserves, 10**9, kind, variant)
            user = trade.swap
            [step] = [s for s in user.steps if s.to == user.router]
            intent = decoder.decode(step.to, step.data, step.value)
            assert intent is not None, (kind, variant, decoder.stats.log_line())
            swaps = intent.swaps if isinstance(intent, MulticallIntent) else (intent,)
            assert len(swaps) == 1, (kind, variant)
            (swap,) = swaps
            assert (swap.token_in, swap.token_out) == (user.token_in, user.token_out)
            pools = tuple(_pool_of(world, factory_of, swap, h) for h in range(len(swap.path) - 1))
            assert pools == user.pools, (kind, variant)
            if swap.kind == "exact_in" and not swap.whole_balance:
                assert swap.amount_in == user.amount_in, (kind, variant)
            if swap.whole_balance:  # paid by WRAP_ETH (known) or a prior transfer (unknown)
                assert swap.amount_in == (user.amount_in if step.value else None)
            decoded_kinds.add(kind)
    assert decoded_kinds == {r["kind"] for r in world.routers}


@pytest.mark.parametrize(
    "variant", ["wrap-v2-exact-in-pay-portion-sweep", "wrap-v2-exact-out-unwrap"]
)
async def test_a_pending_universal_router_v2_swap_moves_the_pool_as_the_chain_then_does(
    devnet_factory: Any, variant: str
) -> None:
    devnet: Devnet = devnet_factory(block_time=None)
    world = devnet.world
    decoder = Decoder(deployment_from_world(world, None).routers)
    async with connect(world.rpc["ws"]) as rpc:
        state = await _loaded_state(rpc, world)
        # The Universal Router's V2 commands trade the V2 factory it was deployed with.
        state.routers[world.v3["universal_router"]] = {"uniswap-v2": world.v3["v2_factory"]}
        traffic = Traffic(world, seed=3)
        await traffic.sync_nonces(rpc)
        reserves = {a: (p.reserve0, p.reserve1) for a, p in state.pools.items()}
        trade = traffic.trade(reserves, 10**9, "universal-router", variant)
        (signed,) = trade.txs  # paid with ether: no transfer before
        tx = await _pending(rpc, signed.raw_hex)
        intent = decoder.decode(tx["to"], bytes.fromhex(tx["input"][2:]), int(tx["value"], 16))
        effect = state.after(intent)
        (pool,) = trade.swap.pools
        assert list(effect.pools) == [pool]
        predicted = state.pools_after(effect)[pool]
        assert predicted != state.pools[pool]
        await _mine_block(rpc, state)
        assert state.pools[pool] == predicted


# --- mevbot decode --------------------------------------------------------------------------------

MAINNET_UR_V2 = "0x66a9893cc07d91d95644aedd05d03f95e1dba8af"
SWAP_ROUTER02 = "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45"


def test_mevbot_decode_prints_universal_router_and_swap_router02_swaps() -> None:
    universal = execute(
        [
            (0x0B, ["address", "uint256"], (ADDRESS_THIS_WORD, CONTRACT_BALANCE)),
            (
                0x00,
                SWAP_V3,
                (ADDRESS_THIS_WORD, CONTRACT_BALANCE, 0, packed([WETH, USDC], [500]), False),
            ),
            (0x08, SWAP_V2, (MSG_SENDER_WORD, CONTRACT_BALANCE, 7 * 10**17, [USDC, DAI], False)),
        ]
    )
    single = keccak(
        text="exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))"
    )
    inner = single[:4] + eth_abi.encode(
        ["(address,address,uint24,address,uint256,uint256,uint160)"],
        [(USDC, WETH, 3000, ADDRESS_THIS_WORD, 2500 * 10**6, 10**18, 0)],
    )
    unwrap = keccak(text="unwrapWETH9(uint256,address)")[:4] + eth_abi.encode(
        ["uint256", "address"], [10**18, "0x" + "77" * 20]
    )
    multicall = keccak(text="multicall(uint256,bytes[])")[:4] + eth_abi.encode(
        ["uint256", "bytes[]"], [DEADLINE, [inner, unwrap]]
    )
    lines = [
        {"to": MAINNET_UR_V2, "input": "0x" + universal.hex(), "value": hex(10**18)},
        {"to": SWAP_ROUTER02, "input": "0x" + multicall.hex(), "value": "0x0"},
    ]
    result = subprocess.run(
        [str(ROOT / ".venv/bin/mevbot"), "decode", "-"],
        input="\n".join(json.dumps(line) for line in lines).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    v3, v2 = first["swaps"]
    assert (v3["protocol"], v3["path"], v3["fees"]) == ("uniswap-v3", [WETH, USDC], ["500"])
    assert (v3["amount_in"], v3["recipient"], v3["eth_in"]) == (str(10**18), "router", True)
    assert (v2["protocol"], v2["path"], v2["amount_in"]) == ("uniswap-v2", [USDC, DAI], None)
    assert (v2["whole_balance"], v2["amount_out_min"], v2["recipient"]) == (
        True,
        str(7 * 10**17),
        "msg.sender",
    )
    assert [c["name"] for c in first["decoded"]["calls"]] == [
        "WRAP_ETH", "V3_SWAP_EXACT_IN", "V2_SWAP_EXACT_IN",
    ]  # fmt: skip
    (swap,) = second["swaps"]
    assert (swap["path"], swap["fees"], swap["amount_in"]) == (
        [USDC, WETH],
        ["3000"],
        str(2500 * 10**6),
    )
    assert (swap["amount_out_min"], swap["eth_out"]) == (str(10**18), True)
    assert "2 decoded, 0 undecoded, 0 malformed calldata, 0 bad lines" in result.stderr.decode()


@pytest.mark.parametrize("kind", ["universal-router-v2.1", "universal-router-v1"])
def test_mevbot_decode_takes_universal_router_kinds(kind: str) -> None:
    data = execute([(0x04, TOKEN_TO_AMOUNT, (USDC, MSG_SENDER_WORD, 5))])
    result = subprocess.run(
        [str(ROOT / ".venv/bin/mevbot"), "decode", "--router", f"{ROUTER}={kind}", "-"],
        input=json.dumps({"to": ROUTER, "input": "0x" + data.hex(), "value": 0}).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (call,) = json.loads(result.stdout)["decoded"]["calls"]
    assert (call["name"], call["intent"]["amount"], call["intent"]["recipient"]) == (
        "SWEEP", "5", "msg.sender",
    )  # fmt: skip
