// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "../interfaces/IERC20.sol";
import {IUniswapV2Callee} from "../interfaces/IUniswapV2Callee.sol";
import {IUniswapV2Pair} from "../interfaces/IUniswapV2Pair.sol";

/// @notice Flash-swap client for the devnet and its tests: borrows one token from a pair and pays
/// back a chosen amount of that same token inside uniswapV2Call (from its own balance), so the
/// pair's K check decides whether the repayment covers the 0.3% fee.
contract UniswapV2FlashBorrower is IUniswapV2Callee {
    event FlashRepaid(address indexed pair, address indexed sender, address token, uint256 borrowed, uint256 repaid);

    function borrow(address pair, uint256 amount0Out, uint256 amount1Out, uint256 repayAmount) external {
        IUniswapV2Pair(pair).swap(amount0Out, amount1Out, address(this), abi.encode(pair, repayAmount));
    }

    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        (address pair, uint256 repayAmount) = abi.decode(data, (address, uint256));
        require(msg.sender == pair, "UniswapV2FlashBorrower: caller is not the pair");
        (address token, uint256 borrowed) =
            amount0 > 0 ? (IUniswapV2Pair(pair).token0(), amount0) : (IUniswapV2Pair(pair).token1(), amount1);
        require(IERC20(token).transfer(pair, repayAmount), "UniswapV2FlashBorrower: repay failed");
        emit FlashRepaid(pair, sender, token, borrowed, repayAmount);
    }
}
