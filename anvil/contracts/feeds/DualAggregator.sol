// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OffchainAggregator} from "./OffchainAggregator.sol";

/// @title DualAggregator
/// @notice The Chainlink SVR shape: the public `transmit` as in OffchainAggregator, plus
/// `transmitSecondary(bytes32[3],bytes,bytes32[],bytes32[],bytes32)` (selector 0xba0cb29e), which
/// the SVR node operators send privately through MEV-Share (wrapped in a Forwarder's `forward`).
/// Its report is OCR2's: abi.encode(uint32 observationsTimestamp, bytes32 observers, int192[]
/// observations, int192 juelsPerFeeCoin); reportContext = [configDigest, epoch-and-round,
/// extraHash]. A secondary answer is read only by `secondaryProxy` (Aave's SVR feed), which sees
/// the newer of the latest primary and secondary transmissions; everyone else reads the primary.
contract DualAggregator is OffchainAggregator {
    event SecondaryRoundIdUpdated(uint32 indexed secondaryRoundId);

    address public immutable secondaryProxy;
    uint40 internal latestSecondaryEpochAndRound;
    mapping(uint32 => bool) internal isSecondaryRound;

    constructor(int192 minAnswer_, int192 maxAnswer_, uint8 decimals_, string memory description_, address proxy)
        OffchainAggregator(minAnswer_, maxAnswer_, decimals_, description_)
    {
        secondaryProxy = proxy;
    }

    function transmitSecondary(
        bytes32[3] calldata reportContext,
        bytes calldata report,
        bytes32[] calldata rs,
        bytes32[] calldata ss,
        bytes32
    ) external {
        require(isTransmitter[msg.sender], "unauthorized transmitter");
        _transmitSecondary(reportContext, report, rs.length, ss.length);
    }

    function _transmitSecondary(bytes32[3] calldata reportContext, bytes calldata report, uint256 rs, uint256 ss)
        private
    {
        // OCR2 digests fill the word; this aggregator's OCR1-style digest is its low 16 bytes.
        require(bytes16(reportContext[0] << 128) == latestConfigDigest, "configDigest mismatch");
        uint40 epochAndRound = uint40(uint256(reportContext[1]));
        require(epochAndRound > latestSecondaryEpochAndRound, "stale report");
        latestSecondaryEpochAndRound = epochAndRound;
        (, bytes32 rawObservers, int192[] memory observations,) = abi.decode(report, (uint32, bytes32, int192[], int192));
        (uint32 roundId,) = _record(rs, ss, rawObservers, observations, reportContext[1]);
        isSecondaryRound[roundId] = true;
        emit SecondaryRoundIdUpdated(roundId);
    }

    /// @notice The primary's readers see the latest public transmission; the secondary proxy sees
    /// the latest of all.
    function latestRoundData() public view override returns (uint80, int256, uint256, uint256, uint80) {
        uint32 roundId = msg.sender == secondaryProxy ? latestAggregatorRoundId : _latestPrimaryRound();
        Transmission memory t = transmissions[roundId];
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }

    function _latestPrimaryRound() private view returns (uint32 roundId) {
        roundId = latestAggregatorRoundId;
        while (roundId != 0 && isSecondaryRound[roundId]) {
            roundId -= 1;
        }
    }
}
