"""The devnet's Chainlink-style feeds on a real anvil: the OCR1 aggregator, the proxy and its
phases, and SVR's forwarder + dual aggregator. Reports are built with :mod:`chain.ocr`."""

from __future__ import annotations

from collections.abc import Iterator

import eth_abi
import pytest
from web3.exceptions import ContractLogicError
from web3_devnet import USD, Devnet, Feed, deploy_feed

from chain.node import AnvilProcess
from chain.ocr import (
    encode_ocr2_report,
    encode_report,
    report_context,
    transmit_answer,
    transmit_calldata,
)
from chain.topics import event_topic

NEW_TRANSMISSION = event_topic("NewTransmission(uint32,int192,address,int192[],bytes,bytes32)")
ANSWER_UPDATED = event_topic("AnswerUpdated(int256,uint256,uint256)")
NEW_ROUND = event_topic("NewRound(uint256,address,uint256)")
PHASE_1 = 1 << 64


@pytest.fixture(scope="module")
def chain() -> Iterator[Devnet]:
    with AnvilProcess() as node:
        yield Devnet.connect(node.http_url)


@pytest.fixture
def devnet(chain: Devnet) -> Iterator[Devnet]:
    snapshot = chain.snapshot()
    yield chain
    chain.revert(snapshot)


@pytest.fixture
def feed(devnet: Devnet) -> Feed:
    return deploy_feed(devnet, "ETH / USD", 2000 * USD, devnet.accounts[1])


def _revert(devnet: Devnet, sender: str, to: str, data: bytes) -> str:
    with pytest.raises(ContractLogicError) as caught:
        devnet.w3.eth.call({"from": sender, "to": to, "data": data})
    return str(caught.value.message).removeprefix("execution reverted: ")


def test_a_transmit_answers_the_median_through_the_proxy_with_ocr_events(
    devnet: Devnet, feed: Feed
) -> None:
    proxy = feed.proxy.functions
    assert proxy.decimals().call() == 8
    assert proxy.description().call() == "ETH / USD"
    assert proxy.version().call() == 4
    first = proxy.latestRoundData().call()
    assert list(first) == [PHASE_1 | 1, 2000 * USD, first[2], first[3], PHASE_1 | 1]

    context = report_context(feed.digest, 7, 3)
    observations = (1980 * USD, 1985 * USD, 1987 * USD, 1990 * USD, 2100 * USD)
    receipt = devnet.w3.eth.wait_for_transaction_receipt(
        devnet.w3.eth.send_transaction(
            {
                "from": feed.transmitter,
                "to": feed.aggregator.address,
                "data": transmit_calldata(encode_report(context, observations), 2),
            }
        )
    )
    block_time = devnet.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert list(proxy.latestRoundData().call()) == [
        PHASE_1 | 2,
        1987 * USD,
        block_time,
        block_time,
        PHASE_1 | 2,
    ]
    assert proxy.getRoundData(PHASE_1 | 1).call() == first
    assert proxy.latestAnswer().call() == 1987 * USD
    assert proxy.latestRound().call() == PHASE_1 | 2
    assert proxy.getAnswer(PHASE_1 | 1).call() == 2000 * USD
    details = feed.aggregator.functions.latestTransmissionDetails().call()
    assert details == [feed.digest, 7, 3, 1987 * USD, block_time]

    logs = {bytes(log["topics"][0]): log for log in receipt["logs"]}
    transmission = logs[NEW_TRANSMISSION]
    assert int.from_bytes(transmission["topics"][1], "big") == 2
    answer, transmitter, observed, observers, raw_context = eth_abi.decode(
        ["int192", "address", "int192[]", "bytes", "bytes32"], transmission["data"]
    )
    assert (answer, transmitter.lower(), observed) == (
        1987 * USD,
        feed.transmitter.lower(),
        observations,
    )
    assert observers == bytes(range(5)) and raw_context == context
    answered = logs[ANSWER_UPDATED]
    assert answered["address"] == feed.aggregator.address, "the aggregator emits, not the proxy"
    assert int.from_bytes(answered["topics"][1], "big") == 1987 * USD
    assert int.from_bytes(answered["topics"][2], "big") == 2
    assert int.from_bytes(logs[NEW_ROUND]["topics"][1], "big") == 2


def test_the_aggregator_refuses_what_ocr_refuses(devnet: Devnet, feed: Feed) -> None:
    to, sender = feed.aggregator.address, feed.transmitter
    stranger = devnet.accounts[5]

    def report(observations: tuple[int, ...], epoch: int = 9, digest: bytes = feed.digest) -> bytes:
        return encode_report(report_context(digest, epoch, 1), observations)

    good = (1 * USD, 2 * USD, 3 * USD)
    assert _revert(devnet, stranger, to, transmit_calldata(report(good), 2)) == (
        "unauthorized transmitter"
    )
    assert _revert(devnet, sender, to, transmit_calldata(report(good, digest=bytes(16)), 2)) == (
        "configDigest mismatch"
    )
    assert _revert(devnet, sender, to, transmit_calldata(report(good, epoch=1), 2)) == (
        "stale report"
    )
    assert _revert(devnet, sender, to, transmit_calldata(report(good), 1)) == (
        "wrong number of signatures"
    )
    assert _revert(devnet, sender, to, transmit_calldata(report(good[:2]), 2)) == (
        "too few values to trust median"
    )
    assert _revert(devnet, sender, to, transmit_calldata(report(good[::-1]), 2)) == (
        "observations not sorted"
    )
    assert _revert(devnet, sender, to, transmit_calldata(report((-2, -1, 0)), 2)) == (
        "median is out of min-max range"
    )
    assert feed.proxy.functions.latestAnswer().call() == 2000 * USD


def test_a_new_aggregator_opens_a_phase_and_old_rounds_stay_readable(
    devnet: Devnet, feed: Feed
) -> None:
    owner, stranger = devnet.accounts[0], devnet.accounts[5]
    replacement = deploy_feed(devnet, "ETH / USD", 2100 * USD, feed.transmitter).aggregator
    proxy = feed.proxy.functions
    propose = feed.proxy.encode_abi("proposeAggregator", args=[replacement.address])
    assert _revert(devnet, stranger, feed.proxy.address, propose) == "Only callable by owner"
    proposed = devnet.send(proxy.proposeAggregator(replacement.address), owner)
    assert proxy.aggregator().call() == feed.aggregator.address, "proposing changes nothing"
    confirmed = devnet.send(proxy.confirmAggregator(replacement.address), owner)
    assert proxy.aggregator().call() == replacement.address
    assert proxy.phaseId().call() == 2
    assert proxy.latestRoundData().call()[:2] == [(2 << 64) | 1, 2100 * USD]
    assert proxy.getRoundData(PHASE_1 | 1).call()[1] == 2000 * USD
    (proposal,) = feed.proxy.events.AggregatorProposed().process_receipt(proposed)
    (confirmation,) = feed.proxy.events.AggregatorConfirmed().process_receipt(confirmed)
    assert proposal["args"]["proposed"] == replacement.address
    assert confirmation["args"]["previous"] == feed.aggregator.address
    assert confirmation["args"]["latest"] == replacement.address


def test_svr_secondary_transmissions_through_a_forwarder_reach_only_the_secondary_proxy(
    devnet: Devnet,
) -> None:
    owner, operator, stranger = devnet.accounts[0], devnet.accounts[1], devnet.accounts[5]
    forwarder = devnet.deploy("Forwarder", [operator])
    secondary_reader = devnet.accounts[4]  # stands in for Aave's SVR proxy
    dual = devnet.deploy("DualAggregator", 1, 2**191 - 1, 8, "ETH / USD", secondary_reader)
    oracles = [forwarder.address, *devnet.accounts[6:9]]
    devnet.send(dual.functions.setConfig(oracles, oracles, 1, 1, b""), owner)
    digest = dual.functions.latestConfigDetails().call()[2]
    forward = forwarder.functions.forward

    primary = transmit_answer(2000 * USD, digest, 1)
    devnet.send(forward(dual.address, primary), operator)
    context = [bytes(16) + digest, (1 << 8 | 1).to_bytes(32, "big"), bytes(32)]
    report = encode_ocr2_report(1_700_000_000, (1900 * USD, 1910 * USD, 1920 * USD))
    empty = [bytes(32)] * 2
    data = dual.encode_abi("transmitSecondary", args=[context, report, empty, empty, bytes(32)])
    assert data[:10] == "0xba0cb29e"
    forwarded = forwarder.encode_abi("forward", args=[dual.address, data])
    assert _revert(devnet, stranger, forwarder.address, forwarded) == "Not authorized sender"
    devnet.send(forward(dual.address, data), operator)

    assert dual.functions.latestRoundData().call({"from": secondary_reader})[1] == 1910 * USD
    assert dual.functions.latestRoundData().call({"from": stranger})[1] == 2000 * USD
    # The callee's revert reason comes back through the forwarder.
    assert _revert(devnet, operator, forwarder.address, forwarded) == "stale report"
