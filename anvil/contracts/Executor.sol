// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "./interfaces/IERC20.sol";
import {IWETH} from "./interfaces/IWETH.sol";
import {IUniswapV2Pair} from "./interfaces/IUniswapV2Pair.sol";
import {IPool} from "./interfaces/IPool.sol";

/// @title Executor
/// @notice The bot's on-chain arm. It trades only its own inventory, obeys only its owner, and
/// reverts unless the trade pays: after each arbitrage or liquidation the gain in the measured
/// token must cover minProfit (plus the coinbase tip when that token is WETH, since the tip is
/// then paid out of it). The tip goes to block.coinbase in ETH, unwrapping WETH for whatever the
/// ETH balance lacks, so a bundle pays the builder only when it lands profitably.
contract Executor {
    event ArbitrageExecuted(address indexed tokenIn, uint256 amountIn, uint256 profit, uint256 coinbasePaid);
    event LiquidationExecuted(
        address indexed pool,
        address indexed user,
        address indexed collateralAsset,
        address debtAsset,
        uint256 debtRepaid,
        uint256 collateralReceived,
        address profitToken,
        uint256 profit,
        uint256 coinbasePaid
    );

    struct LiquidationResult {
        uint256 debtBefore;
        uint256 debtRepaid;
        uint256 collateralReceived;
        address profitToken;
        uint256 profit;
    }

    address public immutable owner;
    IWETH public immutable weth;

    modifier onlyOwner() {
        require(msg.sender == owner, "executor: not owner");
        _;
    }

    constructor(address owner_, address weth_) {
        owner = owner_;
        weth = IWETH(weth_);
    }

    /// @notice Anyone may send ether (WETH unwraps land here; the owner funds tips this way).
    receive() external payable {}

    /// @notice Swap amountIn of tokenIn (held here) through the V2 pairs in order; the cycle must
    /// end in tokenIn. Profit = tokenIn balance after - before.
    function arbitrage(address[] calldata pairs, address tokenIn, uint256 amountIn, uint256 minProfit, uint256 coinbaseWei)
        external
        onlyOwner
    {
        uint256 balanceBefore = IERC20(tokenIn).balanceOf(address(this));
        address tokenOut = _swapPath(pairs, tokenIn, amountIn);
        require(tokenOut == tokenIn, "executor: cycle must end in tokenIn");
        uint256 profit = _gain(tokenIn, balanceBefore);
        _settle(tokenIn, profit, minProfit, coinbaseWei);
        emit ArbitrageExecuted(tokenIn, amountIn, profit, coinbaseWei);
    }

    /// @notice Liquidate `user` on an Aave-V3-shaped pool with this contract's debtAsset
    /// inventory (receiveAToken = false). With swapPairs, the collateral received is swapped back
    /// into debtAsset and the profit is the debtAsset balance after - before. With no swapPairs the
    /// collateral is kept and the profit is the collateral received (in collateralAsset units),
    /// which must be non-zero.
    function liquidate(
        address pool,
        address collateralAsset,
        address debtAsset,
        address user,
        uint256 debtToCover,
        address[] calldata swapPairs,
        uint256 minProfit,
        uint256 coinbaseWei
    ) external onlyOwner {
        LiquidationResult memory result = _liquidationCall(pool, collateralAsset, debtAsset, user, debtToCover);
        if (swapPairs.length != 0) {
            require(
                _swapPath(swapPairs, collateralAsset, result.collateralReceived) == debtAsset,
                "executor: path must end in debt asset"
            );
            result.profitToken = debtAsset;
            result.profit = _gain(debtAsset, result.debtBefore);
        }
        _settle(result.profitToken, result.profit, minProfit, coinbaseWei);
        emit LiquidationExecuted(
            pool,
            user,
            collateralAsset,
            debtAsset,
            result.debtRepaid,
            result.collateralReceived,
            result.profitToken,
            result.profit,
            coinbaseWei
        );
    }

    function withdraw(address token, uint256 amount, address to) external onlyOwner {
        _transfer(token, to, amount);
    }

    function withdrawETH(uint256 amount, address payable to) external onlyOwner {
        (bool ok,) = to.call{value: amount}("");
        require(ok, "executor: ETH transfer failed");
    }

    /// @dev Calls liquidationCall with an exact allowance; the collateral received is the
    /// provisional profit until a swap back into the debt asset replaces it.
    function _liquidationCall(
        address pool,
        address collateralAsset,
        address debtAsset,
        address user,
        uint256 debtToCover
    ) internal returns (LiquidationResult memory result) {
        // Balance deltas could not tell the repaid debt from the seized collateral.
        require(collateralAsset != debtAsset, "executor: same collateral and debt asset");
        result.debtBefore = IERC20(debtAsset).balanceOf(address(this));
        uint256 collateralBefore = IERC20(collateralAsset).balanceOf(address(this));
        _approve(debtAsset, pool, debtToCover);
        IPool(pool).liquidationCall(collateralAsset, debtAsset, user, debtToCover, false);
        _approve(debtAsset, pool, 0);
        result.debtRepaid = result.debtBefore - IERC20(debtAsset).balanceOf(address(this));
        result.collateralReceived = _gain(collateralAsset, collateralBefore);
        require(result.collateralReceived != 0, "executor: no collateral received");
        result.profitToken = collateralAsset;
        result.profit = result.collateralReceived;
    }

    /// @dev Walks the pairs: the input of the first hop is sent from here, every later hop's input
    /// is delivered straight by the previous pair's swap; the last pair pays this contract.
    /// Returns the token that arrived here.
    function _swapPath(address[] calldata pairs, address token, uint256 amountIn) internal returns (address) {
        require(pairs.length != 0, "executor: empty path");
        _transfer(token, pairs[0], amountIn);
        uint256 amount = amountIn;
        for (uint256 i = 0; i < pairs.length; i++) {
            IUniswapV2Pair pair = IUniswapV2Pair(pairs[i]);
            address token0 = pair.token0();
            (uint256 reserve0, uint256 reserve1,) = pair.getReserves();
            address recipient = i + 1 < pairs.length ? pairs[i + 1] : address(this);
            if (token == token0) {
                amount = _amountOut(amount, reserve0, reserve1);
                pair.swap(0, amount, recipient, "");
                token = pair.token1();
            } else {
                require(token == pair.token1(), "executor: token not in pair");
                amount = _amountOut(amount, reserve1, reserve0);
                pair.swap(amount, 0, recipient, "");
                token = token0;
            }
        }
        return token;
    }

    /// @dev UniswapV2Library.getAmountOut: 0.3% fee, floor.
    function _amountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut) internal pure returns (uint256) {
        uint256 amountInWithFee = amountIn * 997;
        return (amountInWithFee * reserveOut) / (reserveIn * 1000 + amountInWithFee);
    }

    function _gain(address token, uint256 balanceBefore) internal view returns (uint256) {
        uint256 balanceAfter = IERC20(token).balanceOf(address(this));
        require(balanceAfter >= balanceBefore, "executor: profit below minimum");
        return balanceAfter - balanceBefore;
    }

    /// @dev Profit check, then the coinbase tip in ETH (unwrapping WETH for any ETH shortfall).
    function _settle(address profitToken, uint256 profit, uint256 minProfit, uint256 coinbaseWei) internal {
        uint256 required = profitToken == address(weth) ? coinbaseWei + minProfit : minProfit;
        require(profit >= required, "executor: profit below minimum");
        if (coinbaseWei == 0) {
            return;
        }
        uint256 ethBalance = address(this).balance;
        if (ethBalance < coinbaseWei) {
            weth.withdraw(coinbaseWei - ethBalance);
        }
        (bool ok,) = block.coinbase.call{value: coinbaseWei}("");
        require(ok, "executor: coinbase payment failed");
    }

    function _approve(address token, address spender, uint256 amount) internal {
        (bool ok, bytes memory data) = token.call(abi.encodeWithSelector(IERC20.approve.selector, spender, amount));
        require(ok && (data.length == 0 || abi.decode(data, (bool))), "executor: approve failed");
    }

    function _transfer(address token, address to, uint256 amount) internal {
        (bool ok, bytes memory data) = token.call(abi.encodeWithSelector(IERC20.transfer.selector, to, amount));
        require(ok && (data.length == 0 || abi.decode(data, (bool))), "executor: transfer failed");
    }
}
