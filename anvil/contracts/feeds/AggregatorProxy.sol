// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAggregatorV3, IAggregatorLegacy} from "../interfaces/IAggregatorV3.sol";

interface IFullAggregator is IAggregatorV3, IAggregatorLegacy {}

/// @title AggregatorProxy
/// @notice The EACAggregatorProxy interface mainnet feeds are read through (the address Aave's
/// oracle holds): it forwards reads to the current aggregator, which the owner replaces with
/// proposeAggregator + confirmAggregator, each replacement opening a new phase. Round ids seen
/// through the proxy carry the phase in their top bits: (phaseId << 64) | aggregatorRoundId,
/// as Chainlink's AggregatorProxy encodes them. Phase changes emit AggregatorProposed /
/// AggregatorConfirmed (Chainlink's v0.7+ AggregatorProxy; the v0.6 proxies of older mainnet
/// feeds emit nothing, so a watcher must also read aggregator() to see them).
contract AggregatorProxy is IAggregatorV3, IAggregatorLegacy {
    uint256 private constant PHASE_OFFSET = 64;

    event AggregatorProposed(address indexed current, address indexed proposed);
    event AggregatorConfirmed(address indexed previous, address indexed latest);

    address public immutable owner;
    address public accessController;
    uint16 public phaseId;
    IFullAggregator public proposedAggregator;
    mapping(uint16 => IFullAggregator) public phaseAggregators;

    constructor(address aggregator_, address accessController_) {
        owner = msg.sender;
        accessController = accessController_;
        _setAggregator(aggregator_);
    }

    function aggregator() public view returns (address) {
        return address(phaseAggregators[phaseId]);
    }

    function proposeAggregator(address aggregator_) external {
        require(msg.sender == owner, "Only callable by owner");
        emit AggregatorProposed(aggregator(), aggregator_);
        proposedAggregator = IFullAggregator(aggregator_);
    }

    function confirmAggregator(address aggregator_) external {
        require(msg.sender == owner, "Only callable by owner");
        require(aggregator_ == address(proposedAggregator), "Invalid proposed aggregator");
        address previous = aggregator();
        delete proposedAggregator;
        _setAggregator(aggregator_);
        emit AggregatorConfirmed(previous, aggregator_);
    }

    function _setAggregator(address aggregator_) private {
        phaseId += 1;
        phaseAggregators[phaseId] = IFullAggregator(aggregator_);
    }

    function _current() private view returns (IFullAggregator) {
        return phaseAggregators[phaseId];
    }

    function _withPhase(uint16 phase, uint256 roundId) private pure returns (uint80) {
        return uint80((uint256(phase) << PHASE_OFFSET) | roundId);
    }

    function decimals() external view override returns (uint8) {
        return _current().decimals();
    }

    function description() external view override returns (string memory) {
        return _current().description();
    }

    function version() external view override returns (uint256) {
        return _current().version();
    }

    function latestRoundData() external view override returns (uint80, int256, uint256, uint256, uint80) {
        uint16 phase = phaseId;
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            phaseAggregators[phase].latestRoundData();
        return (_withPhase(phase, roundId), answer, startedAt, updatedAt, _withPhase(phase, answeredInRound));
    }

    function getRoundData(uint80 roundId) external view override returns (uint80, int256, uint256, uint256, uint80) {
        uint16 phase = uint16(roundId >> PHASE_OFFSET);
        IFullAggregator source = phaseAggregators[phase];
        require(address(source) != address(0), "No data present");
        (, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            source.getRoundData(uint64(roundId));
        return (roundId, answer, startedAt, updatedAt, _withPhase(phase, answeredInRound));
    }

    function latestAnswer() external view override returns (int256) {
        return _current().latestAnswer();
    }

    function latestTimestamp() external view override returns (uint256) {
        return _current().latestTimestamp();
    }

    function latestRound() external view override returns (uint256) {
        uint16 phase = phaseId;
        return _withPhase(phase, phaseAggregators[phase].latestRound());
    }

    function getAnswer(uint256 roundId) external view override returns (int256) {
        IFullAggregator source = phaseAggregators[uint16(roundId >> PHASE_OFFSET)];
        return address(source) == address(0) ? int256(0) : source.getAnswer(uint64(roundId));
    }

    function getTimestamp(uint256 roundId) external view override returns (uint256) {
        IFullAggregator source = phaseAggregators[uint16(roundId >> PHASE_OFFSET)];
        return address(source) == address(0) ? 0 : source.getTimestamp(uint64(roundId));
    }
}
