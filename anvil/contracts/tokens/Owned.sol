// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Single owner set at deployment; guards the devnet tokens' admin switches.
abstract contract Owned {
    address public immutable owner;

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "Owned: caller is not the owner");
        _;
    }
}
