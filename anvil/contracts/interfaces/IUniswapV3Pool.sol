// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The parts of a Uniswap V3 pool the Executor uses, same selectors as Uniswap/v3-core
/// (commit d8b1c63, IUniswapV3PoolImmutables and IUniswapV3PoolActions): swap 0x128acb08, which
/// pays the recipient first and then calls uniswapV3SwapCallback (0xfa461e33) on its caller.
interface IUniswapV3Pool {
    function factory() external view returns (address);
    function token0() external view returns (address);
    function token1() external view returns (address);
    function fee() external view returns (uint24);

    function swap(
        address recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        bytes calldata data
    ) external returns (int256 amount0, int256 amount1);
}
