// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Flash-swap callback a pair makes on `to` when swap() is called with non-empty data.
interface IUniswapV2Callee {
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external;
}
