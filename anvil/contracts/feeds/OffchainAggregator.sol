// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAggregatorV3, IAggregatorLegacy} from "../interfaces/IAggregatorV3.sol";

/// @title OffchainAggregator
/// @notice An aggregator ABI-compatible with Chainlink's OCR1 AccessControlledOffchainAggregator,
/// the contract behind most mainnet price feeds: oracles post a signed report with `transmit`
/// (selector 0xc9807539), the answer is the median observation, and each transmission emits
/// NewTransmission, NewRound and AnswerUpdated as mainnet does. Chainlink's npm package ships no
/// aggregator bytecode, so the devnet runs this one. The report layout, the config digest and
/// the checks on a report (transmitter, digest, epoch-round order, signature count, sorted
/// observations, min-max range) are OCR1's; the signatures themselves are not verified here.
contract OffchainAggregator is IAggregatorV3, IAggregatorLegacy {
    struct Transmission {
        int192 answer;
        uint64 timestamp;
    }

    // OCR1 OffchainAggregator.sol: at most 31 oracles, one byte per observer index.
    uint256 internal constant MAX_NUM_ORACLES = 31;

    event ConfigSet(
        uint32 previousConfigBlockNumber,
        uint64 configCount,
        address[] signers,
        address[] transmitters,
        uint8 threshold,
        uint64 encodedConfigVersion,
        bytes encoded
    );
    event NewTransmission(
        uint32 indexed aggregatorRoundId,
        int192 answer,
        address transmitter,
        int192[] observations,
        bytes observers,
        bytes32 rawReportContext
    );

    uint8 public immutable override decimals;
    uint256 public constant override version = 4;
    int192 public immutable minAnswer;
    int192 public immutable maxAnswer;
    string public override description;
    address public immutable owner;

    bytes16 internal latestConfigDigest;
    uint40 internal latestEpochAndRound;
    uint8 internal threshold;
    uint32 internal latestAggregatorRoundId;
    uint32 internal latestConfigBlockNumber;
    uint32 internal configCount;
    address[] internal signerList;
    address[] internal transmitterList;
    mapping(address => bool) internal isTransmitter;
    mapping(uint32 => Transmission) internal transmissions;

    constructor(int192 minAnswer_, int192 maxAnswer_, uint8 decimals_, string memory description_) {
        minAnswer = minAnswer_;
        maxAnswer = maxAnswer_;
        decimals = decimals_;
        description = description_;
        owner = msg.sender;
    }

    /// @notice OCR1's setConfig: the oracles' signing and transmitting keys and the fault bound.
    function setConfig(
        address[] calldata signers,
        address[] calldata transmitters_,
        uint8 threshold_,
        uint64 encodedConfigVersion,
        bytes calldata encoded
    ) external {
        require(msg.sender == owner, "Only callable by owner");
        require(signers.length <= MAX_NUM_ORACLES, "too many signers");
        require(threshold_ > 0, "threshold must be positive");
        require(signers.length == transmitters_.length, "oracle addresses out of registration");
        require(signers.length > 3 * uint256(threshold_), "faulty-oracle threshold too high");
        for (uint256 i = 0; i < transmitterList.length; i++) {
            isTransmitter[transmitterList[i]] = false;
        }
        for (uint256 i = 0; i < transmitters_.length; i++) {
            require(!isTransmitter[transmitters_[i]], "repeated transmitter address");
            isTransmitter[transmitters_[i]] = true;
        }
        signerList = signers;
        transmitterList = transmitters_;
        threshold = threshold_;
        uint32 previous = latestConfigBlockNumber;
        latestConfigBlockNumber = uint32(block.number);
        configCount += 1;
        latestConfigDigest = bytes16(
            keccak256(
                abi.encode(
                    address(this), uint64(configCount), signers, transmitters_, threshold_, encodedConfigVersion, encoded
                )
            )
        );
        latestEpochAndRound = 0;
        emit ConfigSet(previous, configCount, signers, transmitters_, threshold_, encodedConfigVersion, encoded);
    }

    function latestConfigDetails() external view returns (uint32, uint32, bytes16) {
        return (configCount, latestConfigBlockNumber, latestConfigDigest);
    }

    function transmitters() external view returns (address[] memory) {
        return transmitterList;
    }

    function latestTransmissionDetails() external view returns (bytes16, uint32, uint8, int192, uint64) {
        Transmission memory t = transmissions[latestAggregatorRoundId];
        return (
            latestConfigDigest, uint32(latestEpochAndRound >> 8), uint8(latestEpochAndRound), t.answer, t.timestamp
        );
    }

    /// @notice OCR1 transmit: report = abi.encode(bytes32 rawReportContext, bytes32 rawObservers,
    /// int192[] observations); rawReportContext = 11 zero bytes | configDigest (16) | epoch (4) |
    /// round (1). One signature (rs[i], ss[i], byte i of rawVs) per f+1 oracles.
    function transmit(bytes calldata report, bytes32[] calldata rs, bytes32[] calldata ss, bytes32 rawVs) external {
        require(isTransmitter[msg.sender], "unauthorized transmitter");
        _transmit(report, rs, ss, rawVs);
    }

    function _transmit(bytes calldata report, bytes32[] calldata rs, bytes32[] calldata ss, bytes32) internal {
        (bytes32 rawReportContext, bytes32 rawObservers, int192[] memory observations) =
            abi.decode(report, (bytes32, bytes32, int192[]));
        require(bytes16(rawReportContext << 88) == latestConfigDigest, "configDigest mismatch");
        uint40 epochAndRound = uint40(uint256(rawReportContext));
        require(epochAndRound > latestEpochAndRound, "stale report");
        latestEpochAndRound = epochAndRound;
        (uint32 roundId, int192 median) = _record(rs.length, ss.length, rawObservers, observations, rawReportContext);
        // OCR1 also emits the legacy events, for consumers that only follow those.
        emit NewRound(roundId, address(0), block.timestamp);
        emit AnswerUpdated(median, roundId, block.timestamp);
    }

    /// @dev The checks and bookkeeping every report shares (OCR1 and OCR2 alike): signature
    /// count, observation count and order, the median's range; stores the median as a new round.
    function _record(
        uint256 signatures,
        uint256 sValues,
        bytes32 rawObservers,
        int192[] memory observations,
        bytes32 context
    ) internal returns (uint32 roundId, int192 median) {
        require(signatures == uint256(threshold) + 1, "wrong number of signatures");
        require(signatures == sValues, "signatures out of registration");
        require(observations.length <= MAX_NUM_ORACLES, "num observations out of bounds");
        require(observations.length > 2 * uint256(threshold), "too few values to trust median");
        for (uint256 i = 1; i < observations.length; i++) {
            require(observations[i - 1] <= observations[i], "observations not sorted");
        }
        median = observations[observations.length / 2];
        require(minAnswer <= median && median <= maxAnswer, "median is out of min-max range");
        bytes memory observers = new bytes(observations.length);
        for (uint256 i = 0; i < observations.length; i++) {
            observers[i] = rawObservers[i];
        }
        roundId = latestAggregatorRoundId + 1;
        latestAggregatorRoundId = roundId;
        transmissions[roundId] = Transmission(median, uint64(block.timestamp));
        emit NewTransmission(roundId, median, msg.sender, observations, observers, context);
    }

    function getRoundData(uint80 roundId) public view virtual override returns (uint80, int256, uint256, uint256, uint80) {
        require(roundId <= type(uint32).max, "No data present");
        Transmission memory t = transmissions[uint32(roundId)];
        require(t.timestamp != 0, "No data present");
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }

    function latestRoundData() public view virtual override returns (uint80, int256, uint256, uint256, uint80) {
        uint32 roundId = latestAggregatorRoundId;
        Transmission memory t = transmissions[roundId];
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }

    function latestAnswer() external view override returns (int256) {
        (, int256 answer,,,) = latestRoundData();
        return answer;
    }

    function latestTimestamp() external view override returns (uint256) {
        (,,, uint256 updatedAt,) = latestRoundData();
        return updatedAt;
    }

    function latestRound() external view override returns (uint256) {
        (uint80 roundId,,,,) = latestRoundData();
        return roundId;
    }

    function getAnswer(uint256 roundId) external view override returns (int256) {
        return roundId > type(uint32).max ? int256(0) : transmissions[uint32(roundId)].answer;
    }

    function getTimestamp(uint256 roundId) external view override returns (uint256) {
        return roundId > type(uint32).max ? 0 : transmissions[uint32(roundId)].timestamp;
    }
}
