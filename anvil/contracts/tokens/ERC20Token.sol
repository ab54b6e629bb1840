// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20Base} from "./ERC20Base.sol";
import {Owned} from "./Owned.sol";

/// @notice Plain devnet ERC-20; the deployer mints.
contract ERC20Token is ERC20Base, Owned {
    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Base(name_, symbol_, decimals_) {}

    function mint(address to, uint256 value) external onlyOwner {
        _mint(to, value);
    }
}
