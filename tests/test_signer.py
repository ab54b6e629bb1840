"""The local signer: byte-identical to eth-account, and its key never shows."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import rlp
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.signer import LocalSigner, SignerKeyError, rlp_bytes, rlp_int, rlp_list

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

keys = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(
    lambda k: "0x" + k.to_bytes(32, "big").hex()
)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
uint256 = st.integers(min_value=0, max_value=2**256 - 1)
uint64 = st.integers(min_value=0, max_value=2**64 - 1)
access_lists = st.lists(
    st.tuples(
        addresses,
        st.lists(st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()), max_size=3),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    chain_id=st.integers(min_value=1, max_value=2**64 - 1),
    nonce=uint64,
    to=st.none() | addresses,
    data=st.binary(max_size=300),
    value=uint256,
    gas=st.integers(min_value=0, max_value=2**63 - 1),
    fees=st.tuples(uint256, uint256).map(sorted),
    access_list=access_lists,
)
def test_identical_to_eth_account(
    key: str,
    chain_id: int,
    nonce: int,
    to: str | None,
    data: bytes,
    value: int,
    gas: int,
    fees: list[int],
    access_list: list[tuple[str, list[str]]],
) -> None:
    priority, max_fee = fees
    ours = LocalSigner(key).sign_eip1559(
        chain_id=chain_id,
        nonce=nonce,
        to=to,
        data=data,
        value=value,
        gas=gas,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority,
        access_list=access_list,
    )
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "data": data,
        "value": value,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": priority,
        "accessList": [
            {"address": to_checksum_address(a), "storageKeys": k} for a, k in access_list
        ],
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    theirs = Account.sign_transaction(tx, key)
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.hash == "0x" + bytes(theirs.hash).hex()
    assert ours.sender == Account.from_key(key).address.lower()
    assert ours.nonce == nonce
    assert Account.recover_transaction(ours.raw).lower() == ours.sender


@given(st.recursive(st.binary(max_size=80), lambda inner: st.lists(inner, max_size=5)))
def test_rlp_encoding_matches_the_rlp_package(item: bytes | list) -> None:
    def ours(node: bytes | list) -> bytes:
        return rlp_bytes(node) if isinstance(node, bytes) else rlp_list([ours(n) for n in node])

    assert ours(item) == rlp.encode(item)


@given(st.integers(min_value=0, max_value=2**300))
def test_rlp_integers_match_the_rlp_package(value: int) -> None:
    assert rlp_int(value) == rlp.encode(value)


def test_key_never_in_repr_str_or_pickle() -> None:
    signer = LocalSigner(KEY)
    digits = KEY[2:]
    assert signer.address == Account.from_key(KEY).address.lower()
    for text in (repr(signer), str(signer), f"{signer}", f"{signer!r}"):
        assert digits not in text.lower()
        assert signer.address in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(signer)
    assert not hasattr(signer, "__dict__")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (KEY[:-1], "(64 hex digits), got 63 digits"),
        (KEY[:-1] + "z", "not hex"),
        ("0x" + "00" * 32, "out of the secp256k1 range"),
        ("0x" + hex(SECP256K1_ORDER)[2:], "out of the secp256k1 range"),
    ],
)
def test_bad_env_keys_give_clear_errors_without_the_key(value: str, reason: str) -> None:
    with pytest.raises(SignerKeyError) as raised:
        LocalSigner.from_env("MEVBOT_EXECUTOR_KEY", {"MEVBOT_EXECUTOR_KEY": value})
    message = str(raised.value)
    assert reason in message
    assert "MEVBOT_EXECUTOR_KEY" in message
    assert value[2:40] not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_from_env() -> None:
    with pytest.raises(SignerKeyError, match="MEVBOT_EXECUTOR_KEY is not set"):
        LocalSigner.from_env("MEVBOT_EXECUTOR_KEY", {})
    signer = LocalSigner.from_env("MEVBOT_EXECUTOR_KEY", {"MEVBOT_EXECUTOR_KEY": f" {KEY}\n"})
    assert signer.address == Account.from_key(KEY).address.lower()


def test_from_keystore(tmp_path: Path) -> None:
    keystore = tmp_path / "executor.json"
    keystore.write_text(
        json.dumps(Account.encrypt(KEY, "correct horse", kdf="pbkdf2", iterations=2048))
    )
    env = {"KEYSTORE_PASSWORD": "correct horse"}
    signer = LocalSigner.from_keystore(keystore, "KEYSTORE_PASSWORD", env)
    assert signer.address == Account.from_key(KEY).address.lower()

    with pytest.raises(SignerKeyError, match="cannot decrypt") as raised:
        LocalSigner.from_keystore(keystore, "KEYSTORE_PASSWORD", {"KEYSTORE_PASSWORD": "wrong"})
    assert "wrong" not in str(raised.value) and KEY[2:] not in str(raised.value)
    with pytest.raises(SignerKeyError, match="KEYSTORE_PASSWORD is not set"):
        LocalSigner.from_keystore(keystore, "KEYSTORE_PASSWORD", {})
    with pytest.raises(SignerKeyError, match="No such file"):
        LocalSigner.from_keystore(tmp_path / "missing.json", "KEYSTORE_PASSWORD", env)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(SignerKeyError, match="not JSON"):
        LocalSigner.from_keystore(tmp_path / "junk.json", "KEYSTORE_PASSWORD", env)
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(SignerKeyError, match="keystore"):
        LocalSigner.from_keystore(tmp_path / "other.json", "KEYSTORE_PASSWORD", env)


def test_bad_fields_fail_before_signing() -> None:
    signer = LocalSigner(KEY)
    fields = dict(chain_id=1, nonce=0, data=b"", value=0, gas=21_000)
    with pytest.raises(ValueError, match="priority"):
        signer.sign_eip1559(to=None, max_fee_per_gas=1, max_priority_fee_per_gas=2, **fields)
    with pytest.raises(ValueError, match="not an address"):
        signer.sign_eip1559(to="0x1234", max_fee_per_gas=2, max_priority_fee_per_gas=1, **fields)
    with pytest.raises(ValueError, match="non-negative"):
        signer.sign_eip1559(to=None, max_fee_per_gas=2, max_priority_fee_per_gas=-1, **fields)
