// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Forwarder
/// @notice The shape of Chainlink's AuthorizedForwarder as SVR uses it: a node operator's key
/// calls `forward(address to, bytes data)` (selector 0x6fadcf72) and the forwarder calls `to`,
/// so the aggregator sees the forwarder as its transmitter. A failed call reverts with the
/// callee's revert data.
contract Forwarder {
    address public immutable owner;
    mapping(address => bool) public isAuthorizedSender;

    event AuthorizedSendersChanged(address[] senders, address changedBy);

    constructor(address[] memory senders) {
        owner = msg.sender;
        _setSenders(senders, true);
    }

    function setAuthorizedSenders(address[] calldata senders) external {
        require(msg.sender == owner, "Only callable by owner");
        _setSenders(senders, true);
    }

    function forward(address to, bytes calldata data) external {
        require(isAuthorizedSender[msg.sender], "Not authorized sender");
        require(to.code.length > 0, "Must forward to a contract");
        (bool success, bytes memory result) = to.call(data);
        if (!success) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }

    function _setSenders(address[] memory senders, bool allowed) private {
        for (uint256 i = 0; i < senders.length; i++) {
            isAuthorizedSender[senders[i]] = allowed;
        }
        emit AuthorizedSendersChanged(senders, msg.sender);
    }
}
