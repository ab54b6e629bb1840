"""The fast ABI packer writes eth-abi's bytes, and leaves every value it does not take to eth-abi."""

from __future__ import annotations

import eth_abi
import pytest
from eth_abi.exceptions import EncodingError
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.abi import load_artifact
from chain.abi_pack import packer

ADDRESSES = st.binary(min_size=20, max_size=20).flatmap(
    lambda raw: st.sampled_from(["0x" + raw.hex(), "0x" + raw.hex().upper(), raw])
)
UINT256 = st.integers(0, 2**256 - 1)
UINT8 = st.integers(0, 255)
HOP = st.tuples(ADDRESSES, UINT8, st.booleans())
EXECUTOR = load_artifact("Executor").abi


@settings(max_examples=300, deadline=None)
@given(
    hops=st.lists(HOP, max_size=6),
    amount=UINT256,
    flash=st.booleans(),
    min_profit=UINT256,
    coinbase=UINT256,
)
def test_arbitrage_hops_calldata_is_eth_abis(
    hops: list, amount: int, flash: bool, min_profit: int, coinbase: int
) -> None:
    function = EXECUTOR.function("arbitrageHops")
    args = (hops, amount, flash, min_profit, coinbase)
    expected = function.selector + eth_abi.encode(function.input_types, args)
    assert function.encode(*args) == expected


@settings(max_examples=300, deadline=None)
@given(
    addresses=st.lists(ADDRESSES, min_size=4, max_size=4),
    debt=UINT256,
    pairs=st.lists(ADDRESSES, max_size=5),
    min_profit=UINT256,
    coinbase=UINT256,
)
def test_liquidate_calldata_is_eth_abis(
    addresses: list, debt: int, pairs: list, min_profit: int, coinbase: int
) -> None:
    function = EXECUTOR.function("liquidate")
    args = (*addresses, debt, pairs, min_profit, coinbase)
    expected = function.selector + eth_abi.encode(function.input_types, args)
    assert function.encode(*args) == expected


@settings(max_examples=300, deadline=None)
@given(
    signed=st.integers(-(2**127), 2**127 - 1),
    small=st.integers(-128, 127),
    word=st.binary(max_size=32),
    short=st.binary(max_size=4),
    nested=st.lists(st.tuples(UINT8, st.booleans(), st.binary(max_size=32)), max_size=4),
)
def test_other_static_types_are_eth_abis(
    signed: int, small: int, word: bytes, short: bytes, nested: list
) -> None:
    types = ("int128", "int8", "bytes32", "bytes4", "(uint8,bool,bytes32)[]")
    args = (signed, small, word, short, nested)
    pack = packer(types)
    assert pack is not None
    assert pack(args) == eth_abi.encode(types, args)


@pytest.mark.parametrize(
    ("slot", "value"),
    [
        (4, True),  # a bool is not a uint for eth-abi
        (4, -1),
        (4, 2**256),
        (4, 1.0),
        (0, "0x" + "aB" * 20),  # mixed case: eth-abi's to judge (EIP-55)
        (0, "0x" + "ab" * 19),
        (0, b"\x01" * 19),
        (5, "0x" + "11" * 20),  # a string is not an array
    ],
)
def test_values_it_does_not_take_go_to_eth_abi(slot: int, value: object) -> None:
    """eth-abi then encodes or rejects it, as it did before."""
    function = EXECUTOR.function("liquidate")
    args: list[object] = [*["0x" + "11" * 20] * 4, 5, [], 0, 0]
    args[slot] = value
    assert packer(function.input_types)(args) is None  # type: ignore[misc]
    try:
        expected: bytes | type[EncodingError] = function.selector + eth_abi.encode(
            function.input_types, args
        )
    except EncodingError:
        expected = EncodingError
    if expected is EncodingError:
        with pytest.raises(EncodingError):
            function.encode(*args)
    else:
        assert function.encode(*args) == expected


def test_unsupported_types_get_no_packer() -> None:
    assert packer(("bytes",)) is None
    assert packer(("string",)) is None
    assert packer(("uint256[2]",)) is None
    assert packer(("(uint256,bytes)",)) is None
