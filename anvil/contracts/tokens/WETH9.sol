// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IWETH} from "../interfaces/IWETH.sol";
import {ERC20Base} from "./ERC20Base.sol";

/// @notice Wrapped ether with mainnet WETH9's ABI: deposit/withdraw/receive emit
/// Deposit/Withdrawal (not Transfer), and wrapped supply equals the ether it holds.
contract WETH9 is IWETH, ERC20Base {
    constructor() ERC20Base("Wrapped Ether", "WETH", 18) {}

    receive() external payable {
        deposit();
    }

    function deposit() public payable {
        balanceOf[msg.sender] += msg.value;
        totalSupply += msg.value;
        emit Deposit(msg.sender, msg.value);
    }

    function withdraw(uint256 wad) external {
        require(balanceOf[msg.sender] >= wad, "WETH9: insufficient balance");
        unchecked {
            balanceOf[msg.sender] -= wad;
            totalSupply -= wad;
        }
        emit Withdrawal(msg.sender, wad);
        (bool sent,) = msg.sender.call{value: wad}("");
        require(sent, "WETH9: ether transfer failed");
    }
}
