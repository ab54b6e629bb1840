"""Calldata decoders against 210 real mainnet router calls, independent eth-abi decoding with the
signatures from the reference (§4.1, §4.2, §4.5), the calls' recorded outputs, and hypothesis:
round trips of random arguments, byte mutations, truncations and garbage never raise."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import eth_abi
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.intents import (
    AuxiliaryIntent,
    LiquidityIntent,
    MulticallIntent,
    PairSwapIntent,
    SwapIntent,
)
from chain.types import PendingTx
from watcher.decode import MAINNET_ROUTERS, METHOD_TABLES, PAIR_METHODS, Decoder, RouterKind

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/mainnet/router_calls.jsonl"
V2 = RouterKind.UNISWAP_V2_ROUTER
V3 = RouterKind.UNISWAP_V3_SWAP_ROUTER
V3_02 = RouterKind.UNISWAP_V3_SWAP_ROUTER02
# One router per kind for generated calls (for V2 the later of Uniswap's and Sushi's).
ROUTER_OF = {kind: address for address, kind in MAINNET_ROUTERS.items()}
ZERO = "0x" + "00" * 20
MSG_SENDER = "0x" + "00" * 19 + "01"
ADDRESS_THIS = "0x" + "00" * 19 + "02"
PAIR = "0xb4e16d0168e52d35cacd2c6185b44281ec28c9dc"

_PAYMENTS = {
    "49404b7c": "unwrapWETH9(uint256 amountMinimum,address recipient)",
    "9b2c0a37": "unwrapWETH9WithFee(uint256 amountMinimum,address recipient,uint256 feeBips,"
    "address feeRecipient)",
    "df2ab5bb": "sweepToken(address token,uint256 amountMinimum,address recipient)",
    "e0e189a0": "sweepTokenWithFee(address token,uint256 amountMinimum,address recipient,"
    "uint256 feeBips,address feeRecipient)",
    "12210e8a": "refundETH()",
    "f3995c67": "selfPermit(address token,uint256 value,uint256 deadline,uint8 v,bytes32 r,"
    "bytes32 s)",
    "c2e3140a": "selfPermitIfNecessary(address token,uint256 value,uint256 deadline,uint8 v,"
    "bytes32 r,bytes32 s)",
    "4659a494": "selfPermitAllowed(address token,uint256 nonce,uint256 expiry,uint8 v,bytes32 r,"
    "bytes32 s)",
    "a4a78f0c": "selfPermitAllowedIfNecessary(address token,uint256 nonce,uint256 expiry,uint8 v,"
    "bytes32 r,bytes32 s)",
}
_V2_EXACT = "(uint256 {0},uint256 {1},address[] path,address to,uint256 deadline)"
REFERENCE: dict[RouterKind, dict[str, str]] = {
    V2: {
        "38ed1739": "swapExactTokensForTokens" + _V2_EXACT.format("amountIn", "amountOutMin"),
        "8803dbee": "swapTokensForExactTokens" + _V2_EXACT.format("amountOut", "amountInMax"),
        "7ff36ab5": "swapExactETHForTokens(uint256 amountOutMin,address[] path,address to,"
        "uint256 deadline)",
        "4a25d94a": "swapTokensForExactETH" + _V2_EXACT.format("amountOut", "amountInMax"),
        "18cbafe5": "swapExactTokensForETH" + _V2_EXACT.format("amountIn", "amountOutMin"),
        "fb3bdb41": "swapETHForExactTokens(uint256 amountOut,address[] path,address to,"
        "uint256 deadline)",
        "5c11d795": "swapExactTokensForTokensSupportingFeeOnTransferTokens"
        + _V2_EXACT.format("amountIn", "amountOutMin"),
        "b6f9de95": "swapExactETHForTokensSupportingFeeOnTransferTokens(uint256 amountOutMin,"
        "address[] path,address to,uint256 deadline)",
        "791ac947": "swapExactTokensForETHSupportingFeeOnTransferTokens"
        + _V2_EXACT.format("amountIn", "amountOutMin"),
        "e8e33700": "addLiquidity(address tokenA,address tokenB,uint256 amountADesired,"
        "uint256 amountBDesired,uint256 amountAMin,uint256 amountBMin,address to,"
        "uint256 deadline)",
        "f305d719": "addLiquidityETH(address token,uint256 amountTokenDesired,"
        "uint256 amountTokenMin,uint256 amountETHMin,address to,uint256 deadline)",
        "baa2abde": "removeLiquidity(address tokenA,address tokenB,uint256 liquidity,"
        "uint256 amountAMin,uint256 amountBMin,address to,uint256 deadline)",
        "02751cec": "removeLiquidityETH(address token,uint256 liquidity,uint256 amountTokenMin,"
        "uint256 amountETHMin,address to,uint256 deadline)",
        "2195995c": "removeLiquidityWithPermit(address tokenA,address tokenB,uint256 liquidity,"
        "uint256 amountAMin,uint256 amountBMin,address to,uint256 deadline,bool approveMax,"
        "uint8 v,bytes32 r,bytes32 s)",
        "ded9382a": "removeLiquidityETHWithPermit(address token,uint256 liquidity,"
        "uint256 amountTokenMin,uint256 amountETHMin,address to,uint256 deadline,"
        "bool approveMax,uint8 v,bytes32 r,bytes32 s)",
        "af2979eb": "removeLiquidityETHSupportingFeeOnTransferTokens(address token,"
        "uint256 liquidity,uint256 amountTokenMin,uint256 amountETHMin,address to,"
        "uint256 deadline)",
        "5b0d5984": "removeLiquidityETHWithPermitSupportingFeeOnTransferTokens(address token,"
        "uint256 liquidity,uint256 amountTokenMin,uint256 amountETHMin,address to,"
        "uint256 deadline,bool approveMax,uint8 v,bytes32 r,bytes32 s)",
    },
    V3: {
        "414bf389": "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,"
        "address recipient,uint256 deadline,uint256 amountIn,uint256 amountOutMinimum,"
        "uint160 sqrtPriceLimitX96) params)",
        "c04b8d59": "exactInput((bytes path,address recipient,uint256 deadline,uint256 amountIn,"
        "uint256 amountOutMinimum) params)",
        "db3e2198": "exactOutputSingle((address tokenIn,address tokenOut,uint24 fee,"
        "address recipient,uint256 deadline,uint256 amountOut,uint256 amountInMaximum,"
        "uint160 sqrtPriceLimitX96) params)",
        "f28c0498": "exactOutput((bytes path,address recipient,uint256 deadline,uint256 amountOut,"
        "uint256 amountInMaximum) params)",
        "ac9650d8": "multicall(bytes[] data)",
        **_PAYMENTS,
    },
    V3_02: {
        "04e45aaf": "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,"
        "address recipient,uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96)"
        " params)",
        "b858183f": "exactInput((bytes path,address recipient,uint256 amountIn,"
        "uint256 amountOutMinimum) params)",
        "5023b4df": "exactOutputSingle((address tokenIn,address tokenOut,uint24 fee,"
        "address recipient,uint256 amountOut,uint256 amountInMaximum,uint160 sqrtPriceLimitX96)"
        " params)",
        "09b81346": "exactOutput((bytes path,address recipient,uint256 amountOut,"
        "uint256 amountInMaximum) params)",
        "472b43f3": "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,"
        "address[] path,address to)",
        "42712a67": "swapTokensForExactTokens(uint256 amountOut,uint256 amountInMax,"
        "address[] path,address to)",
        "ac9650d8": "multicall(bytes[] data)",
        "5ae401dc": "multicall(uint256 deadline,bytes[] data)",
        "1f0464d1": "multicall(bytes32 previousBlockhash,bytes[] data)",
        **_PAYMENTS,
        "49616997": "unwrapWETH9(uint256 amountMinimum)",
        "d4ef38de": "unwrapWETH9WithFee(uint256 amountMinimum,uint256 feeBips,address feeRecipient)",
        "e90a182f": "sweepToken(address token,uint256 amountMinimum)",
        "3068c554": "sweepTokenWithFee(address token,uint256 amountMinimum,uint256 feeBips,"
        "address feeRecipient)",
        "1c58db4f": "wrapETH(uint256 value)",
        "f2d5d56b": "pull(address token,uint256 value)",
        "571ac8b0": "approveMax(address token)",
        "cab372ce": "approveMaxMinusOne(address token)",
        "639d71a9": "approveZeroThenMax(address token)",
        "ab3fdd50": "approveZeroThenMaxMinusOne(address token)",
        "efdeed8e": "checkOracleSlippage(bytes[] paths,uint128[] amounts,"
        "uint24 maximumTickDivergence,uint32 secondsAgo)",
        "f25801a7": "checkOracleSlippage(bytes path,uint24 maximumTickDivergence,uint32 secondsAgo)",
        # ApproveAndCall; the first token is named token, as the intent reports it.
        "dee00f35": "getApprovalType(address token,uint256 amount)",
        "b3a2af13": "callPositionManager(bytes data)",
        "11ed56c9": "mint((address token,address token1,uint24 fee,int24 tickLower,"
        "int24 tickUpper,uint256 amount0Min,uint256 amount1Min,address recipient) params)",
        "f100b205": "increaseLiquidity((address token,address token1,uint256 tokenId,"
        "uint256 amount0Min,uint256 amount1Min) params)",
    },
}
PAIR_REFERENCE = {"022c0d9f": "swap(uint256 amount0Out,uint256 amount1Out,address to,bytes data)"}
# Recipients by which a router keeps a swap's output itself, besides its own address.
SELF_SENTINELS = {V2: set(), V3: {ZERO}, V3_02: {ADDRESS_THIS}}
FIXTURE_KINDS = {"uniswap-v2-router02": V2, "sushiswap-router": V2, "uniswap-v3-swaprouter": V3}


# --- an independent reading of the reference signatures ------------------------------------------

Param = tuple[str, Any]  # (name, type): type is an ABI type string or a list of Params (a tuple)


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current else parts


def _param(text: str) -> Param:
    abi_type, name = text.rsplit(" ", 1)
    if abi_type.startswith("("):
        return name, [_param(p) for p in _split(abi_type[1:-1])]
    return name, abi_type


@cache
def parse_signature(signature: str) -> tuple[str, list[Param]]:
    name, rest = signature.split("(", 1)
    return name, [_param(p) for p in _split(rest[:-1])]


def canonical(abi_type: Any) -> str:
    if isinstance(abi_type, list):
        return "(" + ",".join(canonical(t) for _, t in abi_type) + ")"
    return abi_type


def canonical_signature(signature: str) -> str:
    name, params = parse_signature(signature)
    return f"{name}({','.join(canonical(t) for _, t in params)})"


def reference_decode(signature: str, data: bytes) -> tuple[str, dict[str, Any]]:
    """eth-abi decoding of the arguments, by parameter name (tuple fields flattened)."""
    name, params = parse_signature(signature)
    values = eth_abi.decode([canonical(t) for _, t in params], data[4:])
    named: dict[str, Any] = {}
    for (param, abi_type), value in zip(params, values, strict=True):
        if isinstance(abi_type, list):
            named.update(zip([n for n, _ in abi_type], value, strict=True))
        else:
            named[param] = value
    return name, {k: v.lower() if isinstance(v, str) else v for k, v in named.items()}


def split_packed_path(path: bytes) -> tuple[tuple[str, ...], tuple[int, ...]]:
    tokens, fees = ["0x" + path[:20].hex()], []
    rest = path[20:]
    while rest:
        fees.append(int.from_bytes(rest[:3], "big"))
        tokens.append("0x" + rest[3:23].hex())
        rest = rest[23:]
    return tuple(tokens), tuple(fees)


def expected(
    kind: RouterKind, router: str, data: bytes, value: int, unwraps: bool = False
) -> tuple[type, dict]:
    """The intent class and fields the decoder must produce, derived from the reference alone."""
    signature = REFERENCE[kind].get(data[:4].hex())
    if signature is None:
        return AuxiliaryIntent, {"router": router, "method": "0x" + data[:4].hex()}
    name, a = reference_decode(signature, data)
    if name == "multicall":
        inner = a["data"]
        unwrap = any(REFERENCE[kind].get(c[:4].hex(), "").startswith("unwrapWETH9") for c in inner)
        blockhash = a.get("previousBlockhash")
        return MulticallIntent, {
            "router": router,
            "method": name,
            "deadline": a.get("deadline"),
            "previous_blockhash": None if blockhash is None else "0x" + blockhash.hex(),
            "value": value,
            "calls": [expected(kind, router, call, value, unwrap) for call in inner],
        }
    if name.startswith(("swap", "exact")):
        v3 = name.startswith("exact")
        exact_in = name.startswith(("exactInput", "swapExact"))
        pays_eth_by_name = "ETHFor" in name
        if "tokenIn" in a:
            path, fees = (a["tokenIn"], a["tokenOut"]), (a["fee"],)
        elif v3:
            path, fees = split_packed_path(a["path"])
            if not exact_in:
                path, fees = path[::-1], fees[::-1]
        else:
            path, fees = tuple(a["path"]), ()
        recipient = a.get("to", a.get("recipient"))
        return SwapIntent, {
            "protocol": "uniswap-v3" if v3 else "uniswap-v2",
            "router": router,
            "method": name,
            "kind": "exact_in" if exact_in else "exact_out",
            "path": path,
            "fees": fees,
            "amount_in": a.get("amountIn", value if exact_in and pays_eth_by_name else None),
            "amount_out_min": a.get("amountOutMin", a.get("amountOutMinimum")),
            "amount_out": a.get("amountOut"),
            "amount_in_max": a.get(
                "amountInMax",
                a.get("amountInMaximum", value if pays_eth_by_name and not exact_in else None),
            ),
            "recipient": recipient,
            "deadline": a.get("deadline"),
            "value": value,
            "eth_in": pays_eth_by_name if kind is V2 else value > 0,
            "eth_out": "ForETH" in name
            or "ForExactETH" in name
            or (unwraps and recipient in SELF_SENTINELS[kind] | {router}),
            "fee_on_transfer": "FeeOnTransfer" in name,
        }
    if "Liquidity" in name and kind is V2:
        with_eth = "token" in a
        add = name.startswith("add")
        if with_eth:
            tokens, mins = (a["token"],), (a["amountTokenMin"], a["amountETHMin"])
            desired = (a["amountTokenDesired"], value) if add else ()
        else:
            tokens, mins = (a["tokenA"], a["tokenB"]), (a["amountAMin"], a["amountBMin"])
            desired = (a["amountADesired"], a["amountBDesired"]) if add else ()
        return LiquidityIntent, {
            "router": router,
            "method": name,
            "action": "add" if add else "remove",
            "tokens": tokens,
            "with_eth": with_eth,
            "liquidity": a.get("liquidity"),
            "amounts_desired": desired,
            "amounts_min": mins,
            "recipient": a["to"],
            "deadline": a["deadline"],
            "value": value,
        }
    return AuxiliaryIntent, {
        "router": router,
        "method": name,
        "token": a.get("token"),
        "amount": a.get("amountMinimum", a.get("value", a.get("amount"))),
        "recipient": a.get("recipient"),
    }


def assert_matches(intent: Any, expectation: tuple[type, dict]) -> None:
    cls, fields = expectation
    assert type(intent) is cls, (intent, fields)
    for name, want in fields.items():
        if name == "calls":
            assert len(intent.calls) == len(want)
            for call, inner in zip(intent.calls, want, strict=True):
                assert_matches(call, inner)
        else:
            assert getattr(intent, name) == want, (name, intent)


# --- the fixture: 210 real mainnet router calls ---------------------------------------------------


@cache
def fixture_rows() -> tuple[dict[str, Any], ...]:
    rows = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    assert len(rows) == 210
    return tuple(rows)


def call_of(row: dict[str, Any]) -> tuple[str, bytes, int]:
    return row["to"], bytes.fromhex(row["input"][2:]), int(row["value"], 16)


def test_selector_tables_are_keccak_of_their_signatures() -> None:
    for kind, table in METHOD_TABLES.items():
        if kind.value.startswith("universal-router"):
            continue  # tests/test_decode_universal.py
        assert {s.hex() for s in table} == set(REFERENCE[kind]), kind
        for selector, method in table.items():
            assert keccak(text=method.signature)[:4] == selector, method.signature
            assert method.signature == canonical_signature(REFERENCE[kind][selector.hex()])
    for selector, method in PAIR_METHODS.items():
        assert keccak(text=method.signature)[:4] == selector
    for references in (*REFERENCE.values(), PAIR_REFERENCE):
        for selector, signature in references.items():
            assert keccak(text=canonical_signature(signature))[:4].hex() == selector, signature


def test_every_fixture_call_decodes_to_the_fields_eth_abi_reads() -> None:
    decoder = Decoder()
    for row in fixture_rows():
        to, data, value = call_of(row)
        intent = decoder.decode(to, data, value)
        assert intent is not None, (row["tx_hash"], decoder.stats.log_line())
        assert_matches(intent, expected(FIXTURE_KINDS[row["router"]], to, data, value))
    assert decoder.stats.decoded == 210
    assert decoder.stats.undecoded == decoder.stats.malformed == 0
    assert decoder.stats.by_method["swapExactETHForTokens"] == 57
    assert decoder.stats.by_method["multicall"] == 18


def test_v2_amounts_agree_with_the_recorded_outputs() -> None:
    decoder = Decoder()
    checked = {"exact_in": 0, "exact_out": 0, "liquidity": 0}
    for row in fixture_rows():
        intent = decoder.decode(*call_of(row))
        if row["error"] is not None or row["output"] in (None, "0x"):
            continue
        output = bytes.fromhex(row["output"][2:])
        if isinstance(intent, SwapIntent) and intent.protocol == "uniswap-v2":
            (amounts,) = eth_abi.decode(["uint256[]"], output)
            assert len(amounts) == len(intent.path)
            if intent.kind == "exact_in":
                assert intent.amount_in == amounts[0]
                assert amounts[-1] >= intent.amount_out_min
                if intent.eth_in:
                    assert intent.amount_in == intent.value
            else:
                assert intent.amount_out == amounts[-1]
                assert amounts[0] <= intent.amount_in_max
            checked[intent.kind] += 1
        elif isinstance(intent, LiquidityIntent):
            received = eth_abi.decode(["uint256", "uint256"], output[:64])
            for got, low in zip(received, intent.amounts_min, strict=True):
                assert got >= low
            for got, high in zip(received, intent.amounts_desired, strict=False):
                assert got <= high
            checked["liquidity"] += 1
    # Fee-on-transfer variants return nothing; every other successful V2 swap was checked.
    assert checked == {"exact_in": 109, "exact_out": 20, "liquidity": 5}


def test_v3_amounts_respect_the_limits_in_the_recorded_outputs() -> None:
    decoder = Decoder()
    checked = 0
    for row in fixture_rows():
        intent = decoder.decode(*call_of(row))
        if row["error"] is not None or FIXTURE_KINDS[row["router"]] is not V3:
            continue
        output = bytes.fromhex(row["output"][2:])
        if isinstance(intent, MulticallIntent):
            (results,) = eth_abi.decode(["bytes[]"], output)
            pairs = list(zip(intent.calls, results, strict=True))
        else:
            pairs = [(intent, output)]
        for call, result in pairs:
            if not isinstance(call, SwapIntent):
                continue
            (amount,) = eth_abi.decode(["uint256"], result)
            if call.kind == "exact_in":
                assert amount >= call.amount_out_min
            else:
                assert amount <= call.amount_in_max
            checked += 1
    assert checked == 36


def test_multicall_unwrap_marks_the_swap_as_paying_eth() -> None:
    decoder = Decoder()
    unwrapping = 0
    for row in fixture_rows():
        intent = decoder.decode(*call_of(row))
        if isinstance(intent, MulticallIntent) and any(
            c.method == "unwrapWETH9" for c in intent.calls
        ):
            (swap,) = intent.swaps
            assert swap.eth_out and swap.recipient == ZERO
            assert swap.token_out == "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
            unwrapping += 1
    assert unwrapping == 12


def test_every_truncation_of_every_fixture_call_is_malformed() -> None:
    decoder = Decoder()
    cuts = 0
    for row in fixture_rows():
        to, data, value = call_of(row)
        for end in range(4, len(data)):
            assert decoder.decode(to, data[:end], value) is None
            cuts += 1
    assert decoder.stats.malformed == cuts
    assert decoder.stats.decoded == decoder.stats.undecoded == 0
    assert (
        "truncated" in decoder.stats.last_malformed
        or "past the end" in decoder.stats.last_malformed
    )


# --- hypothesis ------------------------------------------------------------------------------------

addresses = st.one_of(
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    st.sampled_from([ZERO, ADDRESS_THIS, *MAINNET_ROUTERS]),
)
packed_paths = st.integers(1, 3).flatmap(
    lambda hops: st.tuples(
        st.lists(st.binary(min_size=20, max_size=20), min_size=hops + 1, max_size=hops + 1),
        st.lists(st.integers(0, 2**24 - 1), min_size=hops, max_size=hops),
    ).map(
        lambda tf: (
            tf[0][0]
            + b"".join(f.to_bytes(3, "big") + t for f, t in zip(tf[1], tf[0][1:], strict=True))
        )
    )
)


def argument(name: str, abi_type: Any, kind: RouterKind, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(abi_type, list):
        return st.tuples(*[argument(n, t, kind, depth) for n, t in abi_type])
    if abi_type == "bytes[]":
        if name == "data":
            return st.lists(encoded_call(kind, depth + 1), max_size=4)
        return st.lists(packed_paths, max_size=3)
    if abi_type.endswith("[]"):
        return st.lists(argument(name, abi_type[:-2], kind, depth), min_size=2, max_size=4)
    if abi_type.startswith("uint"):
        return st.integers(0, 2 ** int(abi_type[4:]) - 1)
    if abi_type.startswith("int"):
        half = 2 ** (int(abi_type[3:]) - 1)
        return st.integers(-half, half - 1)
    return {
        "address": addresses,
        "bool": st.booleans(),
        "bytes32": st.binary(min_size=32, max_size=32),
        "bytes": packed_paths if name == "path" else st.binary(max_size=100),
    }[abi_type]


def encoded(signature: str, kind: RouterKind, depth: int) -> st.SearchStrategy[bytes]:
    _, params = parse_signature(signature)
    types = [canonical(t) for _, t in params]
    return st.tuples(*[argument(n, t, kind, depth) for n, t in params]).map(
        lambda args: keccak(text=canonical_signature(signature))[:4] + eth_abi.encode(types, args)
    )


def encoded_call(kind: RouterKind, depth: int) -> st.SearchStrategy[bytes]:
    """A call to ``kind``'s router: known methods (multicalls only at the top), or an unknown
    selector with a random body."""
    known = [s for s in REFERENCE[kind].values() if depth == 0 or not s.startswith("multicall")]
    unknown = st.binary(max_size=40).filter(lambda b: b[:4].hex() not in REFERENCE[kind])
    return st.one_of(st.sampled_from(known).flatmap(lambda s: encoded(s, kind, depth)), unknown)


@pytest.mark.parametrize(
    ("kind", "selector"), [(kind, selector) for kind in REFERENCE for selector in REFERENCE[kind]]
)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=st.integers(0, 10**21))
def test_random_arguments_round_trip(
    kind: RouterKind, selector: str, data: st.DataObject, value: int
) -> None:
    calldata = data.draw(encoded(REFERENCE[kind][selector], kind, 0))
    decoder = Decoder()
    intent = decoder.decode(ROUTER_OF[kind], calldata, value)
    assert intent is not None, decoder.stats.log_line()
    assert_matches(intent, expected(kind, ROUTER_OF[kind], calldata, value))


@settings(max_examples=300, deadline=None)
@given(
    row=st.sampled_from(fixture_rows()),
    position=st.integers(min_value=0),
    byte=st.integers(0, 255),
)
def test_mutated_fixture_calls_decode_like_eth_abi_or_not_at_all(
    row: dict[str, Any], position: int, byte: int
) -> None:
    to, data, value = call_of(row)
    at = 4 + position % (len(data) - 4)
    mutated = data[:at] + bytes([byte]) + data[at + 1 :]
    decoder = Decoder()
    intent = decoder.decode(to, mutated, value)
    try:
        reference = expected(FIXTURE_KINDS[row["router"]], to, mutated, value)
    except Exception:
        reference = None  # eth-abi refuses it (dirty bits, bad offsets ...)
    if intent is not None:
        assert reference is not None, (intent, at, byte)
        assert_matches(intent, reference)
    else:
        assert decoder.stats.malformed == 1
        if reference is not None:  # ABI-valid, but no swap the router would accept
            reason = decoder.stats.last_malformed
            assert "V3 path of" in reason or "path has" in reason, (reason, reference)


@settings(max_examples=300, deadline=None)
@given(
    to=st.sampled_from([*MAINNET_ROUTERS, PAIR, None, "0x" + "ab" * 20]),
    selector=st.one_of(
        st.sampled_from(
            [bytes.fromhex(s) for t in (*REFERENCE.values(), PAIR_REFERENCE) for s in t]
        ),
        st.binary(max_size=4),
    ),
    body=st.one_of(
        st.binary(max_size=600),
        st.lists(st.integers(0, 2**256 - 1), max_size=20).map(
            lambda words: b"".join(w.to_bytes(32, "big") for w in words)
        ),
    ),
    value=st.integers(0, 2**256 - 1),
)
def test_garbage_never_raises_and_is_counted(
    to: str | None, selector: bytes, body: bytes, value: int
) -> None:
    decoder = Decoder(pairs={PAIR})
    decoder.decode(to, selector + body, value)
    stats = decoder.stats
    assert stats.decoded + stats.undecoded + stats.malformed == 1
    assert "Error" not in stats.last_malformed  # only reasons of our own, no stray exceptions


# --- behaviour at the edges ------------------------------------------------------------------------


def v2_swap_call(path: list[str], recipient: str = "0x" + "11" * 20) -> bytes:
    return bytes.fromhex("38ed1739") + eth_abi.encode(
        ["uint256", "uint256", "address[]", "address", "uint256"], [10, 9, path, recipient, 99]
    )


def test_unknown_targets_and_selectors_are_counted_not_errors() -> None:
    decoder = Decoder()
    assert decoder.decode("0x" + "ab" * 20, v2_swap_call([ZERO, ZERO]), 0) is None
    assert decoder.decode(None, b"\x60\x80", 0) is None
    assert decoder.decode(ROUTER_OF[V2], bytes.fromhex("d06ca61f") + bytes(64), 0) is None
    assert decoder.decode(ROUTER_OF[V2], b"", 5) is None
    assert (decoder.stats.undecoded, decoder.stats.malformed) == (4, 0)
    assert "0xd06ca61f" not in decoder.stats.last_undecoded  # the last one was the empty call
    assert "undecoded=4" in decoder.stats.log_line()


def test_malformed_calls_keep_the_reason() -> None:
    decoder = Decoder()
    router = ROUTER_OF[V2]
    assert decoder.decode(router, v2_swap_call(["0x" + "22" * 20]), 0) is None
    assert "path has 1 token" in decoder.stats.last_malformed
    dirty = bytearray(v2_swap_call([ZERO, ZERO]))
    dirty[4 + 3 * 32 + 5] = 1  # a byte above the 20 address bytes of `to`
    assert decoder.decode(router, bytes(dirty), 0) is None
    assert "dirty" in decoder.stats.last_malformed
    short_path = bytes.fromhex("c04b8d59") + eth_abi.encode(
        ["(bytes,address,uint256,uint256,uint256)"], [(bytes(42), ZERO, 1, 2, 3)]
    )
    assert decoder.decode(ROUTER_OF[V3], short_path, 0) is None
    assert "V3 path of 42 bytes" in decoder.stats.last_malformed
    multicall = bytes.fromhex("ac9650d8") + eth_abi.encode(
        ["bytes[]"], [[bytes.fromhex("12210e8a"), short_path]]
    )
    assert decoder.decode(ROUTER_OF[V3], multicall, 0) is None
    assert decoder.stats.last_malformed.startswith("multicall call 1: V3 path")
    assert decoder.stats.malformed == 4


def test_nested_multicalls_are_bounded() -> None:
    decoder = Decoder()
    call = bytes.fromhex("12210e8a")
    for _ in range(4):
        call = bytes.fromhex("ac9650d8") + eth_abi.encode(["bytes[]"], [[call]])
    assert isinstance(decoder.decode(ROUTER_OF[V3], call, 0), MulticallIntent)
    deeper = bytes.fromhex("ac9650d8") + eth_abi.encode(["bytes[]"], [[call]])
    assert decoder.decode(ROUTER_OF[V3], deeper, 0) is None
    assert "nested deeper" in decoder.stats.last_malformed


def test_swap_router02_multicall_with_deadline_and_eth_out() -> None:
    router = ROUTER_OF[V3_02]
    usdc, weth = (
        "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
    )
    swap = bytes.fromhex("04e45aaf") + eth_abi.encode(
        ["(address,address,uint24,address,uint256,uint256,uint160)"],
        [(usdc, weth, 500, ADDRESS_THIS, 2_000_000_000, 10**18, 0)],
    )
    unwrap = bytes.fromhex("49404b7c") + eth_abi.encode(["uint256", "address"], [10**18, PAIR])
    call = bytes.fromhex("5ae401dc") + eth_abi.encode(
        ["uint256", "bytes[]"], [1_700_000_000, [swap, unwrap]]
    )
    intent = Decoder().decode(router.upper().replace("0X", "0x"), call, 0)
    assert isinstance(intent, MulticallIntent)
    assert intent.deadline == 1_700_000_000
    (decoded_swap,) = intent.swaps
    assert decoded_swap.path == (usdc, weth) and decoded_swap.fees == (500,)
    assert decoded_swap.amount_in == 2_000_000_000 and decoded_swap.amount_out_min == 10**18
    assert decoded_swap.deadline is None and decoded_swap.eth_out and not decoded_swap.eth_in


def test_exact_output_paths_read_input_to_output() -> None:
    dai, usdc, weth = ("0x" + c * 40 for c in "dcb")
    # exactOutput encodes the path output first: weth <- 500 <- usdc <- 100 <- dai
    packed = bytes.fromhex(weth[2:]) + (500).to_bytes(3, "big") + bytes.fromhex(usdc[2:])
    packed += (100).to_bytes(3, "big") + bytes.fromhex(dai[2:])
    call = bytes.fromhex("09b81346") + eth_abi.encode(
        ["(bytes,address,uint256,uint256)"], [(packed, MSG_SENDER, 5 * 10**17, 2000 * 10**18)]
    )
    intent = Decoder().decode(ROUTER_OF[V3_02], call, 0)
    assert isinstance(intent, SwapIntent)
    assert intent.path == (dai, usdc, weth) and intent.fees == (100, 500)
    assert (intent.amount_out, intent.amount_in_max) == (5 * 10**17, 2000 * 10**18)
    assert intent.amount_in is None and intent.amount_out_min is None


def test_pair_swaps_by_set_or_predicate_and_decode_tx() -> None:
    call = bytes.fromhex("022c0d9f") + eth_abi.encode(
        ["uint256", "uint256", "address", "bytes"], [0, 12345, MSG_SENDER, b"flash"]
    )
    for pairs in ({PAIR.upper().replace("0X", "0x")}, lambda address: address == PAIR):
        decoder = Decoder(pairs=pairs)
        tx = PendingTx(
            hash="0x" + "00" * 32, sender=MSG_SENDER, to=PAIR, value=0, input=call, nonce=0, gas=1
        )
        assert decoder.decode_tx(tx) == PairSwapIntent(PAIR, 0, 12345, MSG_SENDER, 5)
        assert decoder.stats.by_method == {"swap": 1}
    assert Decoder().decode(PAIR, call, 0) is None


def test_three_fixture_calls_read_by_hand() -> None:
    """Amounts and paths read off the calldata words of three real calls."""
    weth = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    by_hash = {row["tx_hash"]: row for row in fixture_rows()}
    decoder = Decoder()

    # Router02 swapTokensForExactTokens: words 0 and 1, path WETH -> LINK at words 6-7.
    v2 = decoder.decode(*call_of(by_hash[
        "0xf69de8f2a6503256ca3cd9b63a3c1199481b5f6462ba357eb50c80c2b1ca1e7f"]))  # fmt: skip
    assert isinstance(v2, SwapIntent) and v2.kind == "exact_out"
    assert (v2.amount_out, v2.amount_in_max) == (0x661D4FB3D5EBD0000, 0x266FB7FE00BC04E7)
    assert v2.path == (weth, "0x514910771af9ca656af840dff83e8264ecf986ca")

    # SwapRouter multicall: exactInputSingle(token -> WETH, fee 0x2710) to the router, then
    # unwrapWETH9 of the minimum to the user.
    multicall = decoder.decode(*call_of(by_hash[
        "0x7bef2d089a3403863f08183aeafc5f39e0fc649621e7d3845219afc4df54f866"]))  # fmt: skip
    assert isinstance(multicall, MulticallIntent)
    (swap,) = multicall.swaps
    assert swap.path == ("0x3301ee63fb29f863f2333bd4466acb46cd8323e6", weth)
    assert swap.fees == (10_000,) and swap.eth_out
    assert (swap.amount_in, swap.amount_out_min) == (0x18D0BF423C03D8DE000000, 0x21A8A36576DF5DD)
    assert multicall.calls[1] == AuxiliaryIntent(
        multicall.router, "unwrapWETH9", None, 0x21A8A36576DF5DD,
        "0x34da01dc3af140f189523a5ab68df7da12a61730",
    )  # fmt: skip

    # SwapRouter exactInput paid in ETH: WETH -(0x01f4)- WBTC -(0x000bb8)- USDT.
    path = decoder.decode(*call_of(by_hash[
        "0x78e51f307095a3fa7b16211c081ee9f7e04bbabeb1f6929397920f8ea2e258a0"]))  # fmt: skip
    assert isinstance(path, SwapIntent) and path.eth_in
    assert path.path == (
        weth, "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599",
        "0xdac17f958d2ee523a2206206994597c13d831ec7",
    )  # fmt: skip
    assert path.fees == (500, 3000)
    assert (path.amount_in, path.amount_out_min) == (0x361F955640060000, 0x3382BAD5C)
    assert path.amount_in == path.value
