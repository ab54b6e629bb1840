"""The floor everything stands on: finding anvil, artifacts in sync, mainnet ABIs, typed values."""

from __future__ import annotations

import shutil

import pytest
from eth_utils import keccak

import anvil.build as build
import chain.node as node
from anvil import artifacts
from chain.abi import ARTIFACTS_DIR, Abi, AbiRegistry
from chain.types import Bundle, Log, MalformedError, PendingTx, SignedTx


def test_anvil_bin_that_is_not_executable_is_a_clear_error(monkeypatch, tmp_path):
    bogus = tmp_path / "anvil"
    bogus.write_text("not a binary")
    monkeypatch.setenv("ANVIL_BIN", str(bogus))
    with pytest.raises(node.AnvilNotFound, match="ANVIL_BIN"):
        node.find_anvil()


def test_missing_anvil_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.delenv("ANVIL_BIN", raising=False)
    monkeypatch.setattr(node, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(node.AnvilNotFound) as raised:
        node.find_anvil()
    assert "make setup" in str(raised.value) and "ANVIL_BIN" in str(raised.value)


def test_anvil_rejecting_its_arguments_reports_what_it_said():
    with pytest.raises(node.NodeStartError, match="exited with code"):
        node.AnvilProcess(args=("--no-such-flag",)).start()


def test_anvil_process_starts_answers_and_stops(anvil):
    assert node._probe(anvil.port)
    anvil.stop()
    assert not node._probe(anvil.port)


def test_committed_artifacts_match_the_sources():
    assert build.stale_reason() is None


def test_editing_a_contract_makes_artifacts_stale(monkeypatch, tmp_path):
    copy = tmp_path / "contracts"
    shutil.copytree(build.CONTRACTS, copy)
    monkeypatch.setattr(build, "CONTRACTS", copy)
    assert build.stale_reason() is None
    victim = sorted(copy.rglob("*.sol"))[0]
    victim.write_text(victim.read_text() + "\n// edited\n")
    reason = build.stale_reason()
    assert reason is not None and victim.name in reason and "make contracts" in reason


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


@pytest.mark.parametrize(
    ("contract", "signature", "expected"),
    [
        ("UniswapV2Pair", "getReserves()", "0902f1ac"),
        ("UniswapV2Pair", "swap(uint256,uint256,address,bytes)", "022c0d9f"),
        ("UniswapV2Pair", "sync()", "fff6cae9"),
        ("UniswapV2Factory", "getPair(address,address)", "e6a43905"),
        ("UniswapV2Factory", "allPairs(uint256)", "1e3dd18b"),
        ("UniswapV2Router02", "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)", "38ed1739"),
        ("UniswapV2Router02", "swapExactETHForTokens(uint256,address[],address,uint256)", "7ff36ab5"),
        ("UniswapV2Router02", "swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)", "791ac947"),
        ("Pool", "liquidationCall(address,address,address,uint256,bool)", "00a718a9"),
        ("Pool", "getUserAccountData(address)", "bf92857c"),
        ("Pool", "flashLoanSimple(address,address,uint256,bytes,uint16)", "42b0b77c"),
        ("Executor", "executeOperation(address,uint256,uint256,address,bytes)", "1b11d0ff"),
        ("AggregatorProxy", "latestRoundData()", "feaf968c"),
        ("AggregatorProxy", "aggregator()", "245a7bfc"),
        ("AggregatorProxy", "phaseId()", "58303b10"),
        ("AggregatorProxy", "proposeAggregator(address)", "f8a2abd3"),
        ("AggregatorProxy", "confirmAggregator(address)", "a928c096"),
        # OCR1 transmit, SVR forward and transmitSecondary (reference builders-oracles-2026 §4.2).
        ("OffchainAggregator", "transmit(bytes,bytes32[],bytes32[],bytes32)", "c9807539"),
        ("OffchainAggregator", "latestRoundData()", "feaf968c"),
        ("DualAggregator", "transmitSecondary(bytes32[3],bytes,bytes32[],bytes32[],bytes32)", "ba0cb29e"),
        ("Forwarder", "forward(address,bytes)", "6fadcf72"),
    ],
)  # fmt: skip
def test_devnet_contracts_have_mainnet_selectors(contract, signature, expected):
    abi = artifacts.load(contract).abi
    assert _selector(signature).hex() == expected
    assert bytes.fromhex(expected) in abi.by_selector


@pytest.mark.parametrize(
    ("contract", "event", "topic0"),
    [
        ("UniswapV2Pair", "Sync", "1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"),
        ("UniswapV2Pair", "Swap", "d78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"),
        ("UniswapV2Factory", "PairCreated", "0d3648bd0f6ba80134a33ba9275ac585d9d315f0ad8355cddefde31afa28d0e9"),
        ("OffchainAggregator", "AnswerUpdated", "0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"),
        ("OffchainAggregator", "NewTransmission", "f6a97944f31ea060dfde0566e4167c1a1082551e64b60ecb14d599a9d023d451"),
        ("Pool", "LiquidationCall", "e413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"),
    ],
)  # fmt: skip
def test_devnet_contracts_emit_mainnet_events(contract, event, topic0):
    assert artifacts.load(contract).abi.event(event).topic0.hex() == topic0


def test_log_decoding_by_topic():
    abi = Abi.from_signatures("event Sync(uint112 reserve0, uint112 reserve1)")
    registry = AbiRegistry([abi])
    data = (123).to_bytes(32, "big") + (456).to_bytes(32, "big")
    log = Log(
        "0x" + "11" * 20,
        (abi.event("Sync").topic0,),
        data,
        1,
        "0x" + "22" * 32,
        "0x" + "33" * 32,
        0,
        0,
    )
    decoded = registry.decode_log(log)
    assert decoded is not None and decoded.values == {"reserve0": 123, "reserve1": 456}
    with pytest.raises(MalformedError):
        registry.decode_log(
            Log(log.address, log.topics, b"\x01", 1, log.block_hash, log.tx_hash, 0, 0)
        )
    unknown = Log(log.address, (b"\x00" * 32,), b"", 1, log.block_hash, log.tx_hash, 0, 0)
    assert registry.decode_log(unknown) is None


GOOD_TX = {
    "hash": "0x" + "ab" * 32,
    "from": "0x" + "Cd" * 20,
    "to": "0x" + "ef" * 20,
    "value": "0x10",
    "input": "0x38ed1739",
    "nonce": "0x1",
    "gas": "0x5208",
    "type": "0x2",
    "chainId": "0x7a69",
    "maxFeePerGas": "0x3b9aca00",
    "maxPriorityFeePerGas": "0x1",
}


def test_pending_tx_parses_and_lowercases():
    tx = PendingTx.from_rpc(GOOD_TX, source="ws", received_at=7)
    assert (
        tx.sender == "0x" + "cd" * 20
        and tx.value == 16
        and tx.selector == bytes.fromhex("38ed1739")
    )
    assert (tx.chain_id, tx.max_fee_per_gas, tx.source, tx.received_at) == (31337, 10**9, "ws", 7)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"hash": "0x12"}, "hash"),
        ({"from": None}, "from"),
        ({"value": "12"}, "value"),
        ({"input": "0xzz"}, "input"),
        ({"nonce": [1]}, "nonce"),
    ],
)
def test_malformed_pending_tx_is_a_clear_error(patch, reason):
    with pytest.raises(MalformedError, match=reason):
        PendingTx.from_rpc(GOOD_TX | patch)
    missing = {k: v for k, v in GOOD_TX.items() if k != "gas"}
    with pytest.raises(MalformedError, match="missing field 'gas'"):
        PendingTx.from_rpc(missing)
    with pytest.raises(MalformedError):
        PendingTx.from_rpc(["not", "an", "object"])


def test_bundle_hash_is_keccak_of_concatenated_tx_hashes():
    txs = tuple(
        SignedTx(b"\x02" + bytes([i]), "0x" + f"{i:02x}" * 32, "0x" + "00" * 20, i) for i in (1, 2)
    )
    bundle = Bundle(txs, block_number=0x10, replacement_uuid="u")
    expected = keccak(bytes.fromhex("01" * 32) + bytes.fromhex("02" * 32))
    assert bundle.bundle_hash == "0x" + expected.hex()
    assert bundle.to_rpc() == {
        "txs": ["0x0201", "0x0202"],
        "blockNumber": "0x10",
        "replacementUuid": "u",
    }


def test_artifact_directory_is_where_the_build_writes():
    assert build.ARTIFACTS == ARTIFACTS_DIR
