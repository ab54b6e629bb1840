// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20Token} from "./ERC20Token.sol";

/// @notice Hostile token: the owner can make every transfer revert (a paused or blacklisting token).
contract RevertingToken is ERC20Token {
    bool public transfersRevert;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Token(name_, symbol_, decimals_) {}

    function setTransfersRevert(bool enabled) external onlyOwner {
        transfersRevert = enabled;
    }

    function _transfer(address from, address to, uint256 value) internal override {
        require(!transfersRevert, "RevertingToken: transfers disabled");
        super._transfer(from, to, value);
    }
}
