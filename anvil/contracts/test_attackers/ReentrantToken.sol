// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20Token} from "../tokens/ERC20Token.sol";

/// @notice Test-only hostile token: once armed, every transfer calls `target` with `attack`
/// calldata (e.g. an Executor callback) in the middle of whatever swap moves the token, and
/// records how each such call ended (`outcomes`: success flag + return or revert data) instead
/// of failing the transfer, so the swap around it goes on and the refusal stays readable.
contract ReentrantToken is ERC20Token {
    struct Outcome {
        bool ok;
        bytes result;
    }

    address public target;
    bytes public attack;
    Outcome[] public outcomes;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Token(name_, symbol_, decimals_) {}

    function arm(address target_, bytes calldata attack_) external onlyOwner {
        target = target_;
        attack = attack_;
    }

    function outcomeCount() external view returns (uint256) {
        return outcomes.length;
    }

    function _transfer(address from, address to, uint256 value) internal override {
        super._transfer(from, to, value);
        if (target != address(0)) {
            (bool ok, bytes memory result) = target.call(attack);
            outcomes.push(Outcome(ok, result));
        }
    }
}
