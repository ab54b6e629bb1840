// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAggregatorV3, IAggregatorLegacy} from "../interfaces/IAggregatorV3.sol";

/// @title PriceFeed
/// @notice A Chainlink-shaped aggregator for the devnet: every updateAnswer opens and answers one
/// round, emitting NewRound and AnswerUpdated from this address as a Chainlink aggregator does.
/// Only the updater (the devnet's oracle keeper) may post answers; the owner may change it.
contract PriceFeed is IAggregatorV3, IAggregatorLegacy {
    struct Round {
        int256 answer;
        uint64 startedAt;
        uint64 updatedAt;
    }

    event UpdaterChanged(address indexed previousUpdater, address indexed newUpdater);

    uint8 public immutable override decimals;
    uint256 public constant override version = 4;
    string public override description;
    address public immutable owner;
    address public updater;

    uint80 private _latestRoundId;
    mapping(uint80 => Round) private _rounds;

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer, address updater_) {
        decimals = decimals_;
        description = description_;
        owner = msg.sender;
        updater = updater_;
        emit UpdaterChanged(address(0), updater_);
        _record(initialAnswer);
    }

    function setUpdater(address newUpdater) external {
        require(msg.sender == owner, "PriceFeed: not owner");
        emit UpdaterChanged(updater, newUpdater);
        updater = newUpdater;
    }

    function updateAnswer(int256 answer) external {
        require(msg.sender == updater, "PriceFeed: not updater");
        _record(answer);
    }

    function getRoundData(uint80 roundId)
        external
        view
        override
        returns (uint80, int256, uint256, uint256, uint80)
    {
        Round memory round = _rounds[roundId];
        require(round.updatedAt != 0, "No data present");
        return (roundId, round.answer, round.startedAt, round.updatedAt, roundId);
    }

    function latestRoundData() external view override returns (uint80, int256, uint256, uint256, uint80) {
        uint80 roundId = _latestRoundId;
        Round memory round = _rounds[roundId];
        return (roundId, round.answer, round.startedAt, round.updatedAt, roundId);
    }

    function latestAnswer() external view override returns (int256) {
        return _rounds[_latestRoundId].answer;
    }

    function latestTimestamp() external view override returns (uint256) {
        return _rounds[_latestRoundId].updatedAt;
    }

    function latestRound() external view override returns (uint256) {
        return _latestRoundId;
    }

    function getAnswer(uint256 roundId) external view override returns (int256) {
        return roundId > type(uint80).max ? int256(0) : _rounds[uint80(roundId)].answer;
    }

    function getTimestamp(uint256 roundId) external view override returns (uint256) {
        return roundId > type(uint80).max ? 0 : _rounds[uint80(roundId)].updatedAt;
    }

    function _record(int256 answer) private {
        uint80 roundId = _latestRoundId + 1;
        _latestRoundId = roundId;
        _rounds[roundId] = Round(answer, uint64(block.timestamp), uint64(block.timestamp));
        emit NewRound(roundId, msg.sender, block.timestamp);
        emit AnswerUpdated(answer, roundId, block.timestamp);
    }
}
