// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20Token} from "./ERC20Token.sol";

/// @notice Hostile token: every transfer burns `feeBps` basis points of the amount, so the
/// receiver gets less than was sent (exercises the router's SupportingFeeOnTransferTokens paths).
contract FeeOnTransferToken is ERC20Token {
    uint256 public constant MAX_FEE_BPS = 10_000;
    uint256 public feeBps;

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 feeBps_)
        ERC20Token(name_, symbol_, decimals_)
    {
        setFeeBps(feeBps_);
    }

    function setFeeBps(uint256 feeBps_) public onlyOwner {
        require(feeBps_ <= MAX_FEE_BPS, "FeeOnTransferToken: fee above 100%");
        feeBps = feeBps_;
    }

    function _transfer(address from, address to, uint256 value) internal override {
        uint256 fee = value * feeBps / MAX_FEE_BPS;
        super._transfer(from, to, value - fee);
        if (fee > 0) _burn(from, fee);
    }
}
