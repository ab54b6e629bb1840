// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "./interfaces/IERC20.sol";
import {IWETH} from "./interfaces/IWETH.sol";
import {IUniswapV2Pair} from "./interfaces/IUniswapV2Pair.sol";
import {IUniswapV3Pool} from "./interfaces/IUniswapV3Pool.sol";
import {IPool} from "./interfaces/IPool.sol";

/// @title Executor
/// @notice The bot's on-chain arm. It obeys only its owner and reverts unless the trade pays:
/// after each arbitrage or liquidation the gain in the measured token must cover minProfit (plus
/// the coinbase tip when that token is WETH, since the tip is then paid out of it). The tip goes
/// to block.coinbase in ETH, unwrapping WETH for whatever the ETH balance lacks, so a bundle pays
/// the builder only when it lands profitably.
///
/// A cycle of hops through Uniswap V2 pairs and V3 pools either spends inventory or is financed
/// by a flash swap of its first hop (no inventory needed). Pools call back (uniswapV2Call,
/// uniswapV3SwapCallback), and every callback is an attack surface: one is obeyed only when its
/// caller is the very pool this contract is swapping with at that moment inside an owner-only
/// entry point (the transient `_armed`), and is a genuine pool of a configured factory (its
/// CREATE2 address recomputed from the factory, its tokens, fee and init-code hash).
///
/// A liquidation borrows the debt it repays with an Aave flash loan (flashLoanSimple) from the
/// very pool it liquidates on: the pool calls executeOperation, which is obeyed only when its
/// caller is the pool the owner's liquidate armed, and the loan's initiator is this contract.
contract Executor {
    /// @notice The pool kinds a hop can swap through; each has its own swap and callback.
    enum Kind {
        V2,
        V3
    }

    /// @notice One swap of a cycle: token0 in when zeroForOne, else token1 in.
    struct Hop {
        address pool;
        Kind kind;
        bool zeroForOne;
    }

    /// @notice A factory whose pools may call back, and the init-code hash of its pools.
    struct Factory {
        address factory;
        bytes32 initCodeHash;
        Kind kind;
    }

    /// @dev A hop with the pool's tokens and fee, from which a callback recomputes its address.
    struct Leg {
        address pool;
        Kind kind;
        bool zeroForOne;
        address token0;
        address token1;
        uint24 fee;
    }

    /// @dev What a pool hands back to its callback: the cycle, which leg is calling, what the
    /// first hop owes (V2 flash swaps; a V3 pool states what it is owed) and whether the callback
    /// runs the rest of the cycle (the flash swap's first hop) or only pays.
    struct Plan {
        Leg[] legs;
        uint256 index;
        uint256 amountIn;
        bool flash;
    }

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

    /// @dev What the flash-loan callback liquidates and swaps back.
    struct Liquidation {
        address collateralAsset;
        address debtAsset;
        address user;
        address[] swapPairs;
    }

    address public immutable owner;
    IWETH public immutable weth;
    Factory[] private _factories;
    /// @dev The pool whose callback is awaited: set just before this contract calls a pool's
    /// swap (only ever below an owner-only entry point), consumed by that callback, cleared after
    /// the swap returns. Zero whenever no swap of ours is under way.
    address private transient _armed;
    /// @dev What the flash-loan callback measured, for liquidate's event.
    uint256 private transient _debtRepaid;
    uint256 private transient _collateralReceived;

    // v3-core TickMath MIN_SQRT_RATIO + 1 and MAX_SQRT_RATIO - 1: "no price limit".
    uint160 internal constant MIN_SQRT_PRICE_LIMIT = 4295128740;
    uint160 internal constant MAX_SQRT_PRICE_LIMIT = 1461446703485210103287273052203988822378723970341;

    modifier onlyOwner() {
        require(msg.sender == owner, "executor: not owner");
        _;
    }

    /// @param factories_ the factories whose pools may call back: each V2 factory with its pair
    /// init-code hash (0x96e8ac42…845f for Uniswap's, others differ), the V3 factory with
    /// 0xe34f199b…8b54 (v3-periphery PoolAddress.POOL_INIT_CODE_HASH).
    constructor(address owner_, address weth_, Factory[] memory factories_) {
        owner = owner_;
        weth = IWETH(weth_);
        for (uint256 i = 0; i < factories_.length; i++) {
            _factories.push(factories_[i]);
        }
    }

    function factories() external view returns (Factory[] memory) {
        return _factories;
    }

    /// @notice Anyone may send ether (WETH unwraps land here; the owner funds tips this way).
    receive() external payable {}

    /// @notice Swap amountIn of the first hop's input token through the hops, which must chain
    /// into a cycle back to that token. With flash, nothing is spent from inventory: the first
    /// hop pays out first (a V2 flash swap, or the V3 swap before its callback), the rest of the
    /// cycle runs inside that pool's callback, and the first pool is repaid there. Without flash
    /// the first hop's input comes from inventory. Profit = start token balance after - before.
    function arbitrageHops(Hop[] calldata hops, uint256 amountIn, bool flash, uint256 minProfit, uint256 coinbaseWei)
        external
        onlyOwner
    {
        Leg[] memory legs = _legs(hops);
        address tokenIn = _tokenIn(legs[0]);
        require(_tokenOut(legs[legs.length - 1]) == tokenIn, "executor: cycle must end in tokenIn");
        uint256 balanceBefore = IERC20(tokenIn).balanceOf(address(this));
        if (flash) {
            _flashFirstHop(legs, amountIn);
        } else {
            _runLegs(legs, 0, amountIn);
        }
        uint256 profit = _gain(tokenIn, balanceBefore);
        _settle(tokenIn, profit, minProfit, coinbaseWei);
        emit ArbitrageExecuted(tokenIn, amountIn, profit, coinbaseWei);
    }

    /// @notice A V2 pair's flash-swap callback: the first hop of a flash cycle paid amount0 or
    /// amount1 here; run the rest of the cycle and repay the pair the hop's input.
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        Plan memory plan = abi.decode(data, (Plan));
        Leg memory leg = plan.legs[plan.index];
        _acceptCallback(leg, Kind.V2);
        // A pair calls back whoever its swap paid; only a swap this contract started counts.
        require(sender == address(this), "executor: swap not started by executor");
        _runLegs(plan.legs, plan.index + 1, leg.zeroForOne ? amount1 : amount0);
        _transfer(_tokenIn(leg), msg.sender, plan.amountIn);
    }

    /// @notice A V3 pool's swap callback: pay what the pool is owed (running the rest of the
    /// cycle first when this is a flash cycle's first hop).
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        Plan memory plan = abi.decode(data, (Plan));
        Leg memory leg = plan.legs[plan.index];
        _acceptCallback(leg, Kind.V3);
        (int256 owed, int256 received) = leg.zeroForOne ? (amount0Delta, amount1Delta) : (amount1Delta, amount0Delta);
        if (plan.flash) {
            _runLegs(plan.legs, plan.index + 1, uint256(-received));
        }
        _transfer(_tokenIn(leg), msg.sender, uint256(owed));
    }

    /// @notice Liquidate `user` on an Aave V3 pool (receiveAToken = false) with debtToCover of
    /// debtAsset flash-borrowed from that pool (flashLoanSimple; its premium is a cost). With
    /// swapPairs, the collateral received is swapped back into debtAsset inside the loan, which is
    /// repaid from it; the profit is the debtAsset balance after - before. With no swapPairs the
    /// loan is repaid from inventory, the collateral is kept and the profit is the collateral
    /// received (in collateralAsset units), which must be non-zero.
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
        // Balance deltas could not tell the repaid debt from the seized collateral.
        require(collateralAsset != debtAsset, "executor: same collateral and debt asset");
        address profitToken = swapPairs.length != 0 ? debtAsset : collateralAsset;
        uint256 balanceBefore = IERC20(profitToken).balanceOf(address(this));
        _flashLiquidate(pool, debtAsset, debtToCover, abi.encode(Liquidation(collateralAsset, debtAsset, user, swapPairs)));
        uint256 profit = _gain(profitToken, balanceBefore);
        _settle(profitToken, profit, minProfit, coinbaseWei);
        emit LiquidationExecuted(
            pool, user, collateralAsset, debtAsset, _debtRepaid, _collateralReceived, profitToken, profit, coinbaseWei
        );
    }

    /// @dev Arms the pool's one callback, takes the loan; the callback must have run.
    function _flashLiquidate(address pool, address debtAsset, uint256 amount, bytes memory params) internal {
        _armed = pool;
        IPool(pool).flashLoanSimple(address(this), debtAsset, amount, params, 0);
        require(_armed == address(0), "executor: flash loan not taken");
    }

    /// @notice Aave's flash-loan callback (IFlashLoanSimpleReceiver): liquidate with the `amount`
    /// lent, swap the collateral back when asked, and approve the pool its `amount + premium`.
    function executeOperation(address asset, uint256 amount, uint256 premium, address initiator, bytes calldata params)
        external
        returns (bool)
    {
        address armed = _armed;
        require(armed != address(0), "executor: no flash loan in progress");
        require(msg.sender == armed, "executor: callback from unexpected caller");
        _armed = address(0);
        require(initiator == address(this), "executor: flash loan not started by executor");
        Liquidation memory liq = abi.decode(params, (Liquidation));
        require(asset == liq.debtAsset, "executor: flash loan of another asset");
        uint256 debtBefore = IERC20(asset).balanceOf(address(this));
        uint256 collateralBefore = IERC20(liq.collateralAsset).balanceOf(address(this));
        _approve(asset, msg.sender, amount);
        IPool(msg.sender).liquidationCall(liq.collateralAsset, asset, liq.user, amount, false);
        _debtRepaid = debtBefore - IERC20(asset).balanceOf(address(this));
        uint256 received = _gain(liq.collateralAsset, collateralBefore);
        require(received != 0, "executor: no collateral received");
        _collateralReceived = received;
        if (liq.swapPairs.length != 0) {
            require(
                _swapPath(liq.swapPairs, liq.collateralAsset, received) == asset, "executor: path must end in debt asset"
            );
        }
        _approve(asset, msg.sender, amount + premium);
        return true;
    }

    function withdraw(address token, uint256 amount, address to) external onlyOwner {
        _transfer(token, to, amount);
    }

    function withdrawETH(uint256 amount, address payable to) external onlyOwner {
        (bool ok,) = to.call{value: amount}("");
        require(ok, "executor: ETH transfer failed");
    }

    /// @dev Walks the pairs: the input of the first hop is sent from here, every later hop's input
    /// is delivered straight by the previous pair's swap; the last pair pays this contract.
    /// Returns the token that arrived here.
    function _swapPath(address[] memory pairs, address token, uint256 amountIn) internal returns (address) {
        require(pairs.length != 0, "executor: empty path");
        _transfer(token, pairs[0], amountIn);
        uint256 amount = amountIn;
        for (uint256 i = 0; i < pairs.length; i++) {
            IUniswapV2Pair pair = IUniswapV2Pair(pairs[i]);
            address token0 = pair.token0();
            bool zeroForOne = token == token0;
            require(zeroForOne || token == pair.token1(), "executor: token not in pair");
            address recipient = i + 1 < pairs.length ? pairs[i + 1] : address(this);
            amount = _v2Swap(address(pair), zeroForOne, amount, recipient, "");
            token = zeroForOne ? pair.token1() : token0;
        }
        return token;
    }

    /// @dev The hops with their pools' tokens (and fee), checked to chain token to token.
    function _legs(Hop[] calldata hops) internal view returns (Leg[] memory legs) {
        require(hops.length != 0, "executor: empty path");
        legs = new Leg[](hops.length);
        for (uint256 i = 0; i < hops.length; i++) {
            Hop calldata hop = hops[i];
            IUniswapV3Pool pool = IUniswapV3Pool(hop.pool);
            legs[i] = Leg(
                hop.pool, hop.kind, hop.zeroForOne, pool.token0(), pool.token1(), hop.kind == Kind.V3 ? pool.fee() : 0
            );
            require(i == 0 || _tokenIn(legs[i]) == _tokenOut(legs[i - 1]), "executor: hops do not chain");
        }
    }

    /// @dev The first hop as a flash swap: its output is paid here first, its callback runs the
    /// rest of the cycle (legs 1..) and repays it.
    function _flashFirstHop(Leg[] memory legs, uint256 amountIn) internal {
        Leg memory leg = legs[0];
        bytes memory data = abi.encode(Plan(legs, 0, amountIn, true));
        _armed = leg.pool;
        if (leg.kind == Kind.V2) {
            _v2Swap(leg.pool, leg.zeroForOne, amountIn, address(this), data);
        } else {
            _v3Swap(leg, amountIn, address(this), data);
        }
        _armed = address(0);
    }

    /// @dev Swaps amountIn (held here) through legs[start..]; a V2 leg's input is sent to its
    /// pair by whoever holds it (this contract, or the previous leg's swap paying the pair
    /// directly), a V3 leg's is paid from here in its callback. The last leg pays this contract.
    function _runLegs(Leg[] memory legs, uint256 start, uint256 amountIn) internal {
        uint256 amount = amountIn;
        bool inputHere = true;
        for (uint256 i = start; i < legs.length; i++) {
            Leg memory leg = legs[i];
            bool nextIsV2 = i + 1 < legs.length && legs[i + 1].kind == Kind.V2;
            address recipient = nextIsV2 ? legs[i + 1].pool : address(this);
            if (leg.kind == Kind.V2) {
                if (inputHere) {
                    _transfer(_tokenIn(leg), leg.pool, amount);
                }
                amount = _v2Swap(leg.pool, leg.zeroForOne, amount, recipient, "");
            } else {
                _armed = leg.pool;
                amount = _v3Swap(leg, amount, recipient, abi.encode(Plan(legs, i, 0, false)));
                _armed = address(0);
            }
            inputHere = !nextIsV2;
        }
    }

    /// @dev Sells amountIn (already in the pair) for what the pair's reserves give.
    function _v2Swap(address pair, bool zeroForOne, uint256 amountIn, address recipient, bytes memory data)
        internal
        returns (uint256 amountOut)
    {
        (uint256 reserve0, uint256 reserve1,) = IUniswapV2Pair(pair).getReserves();
        if (zeroForOne) {
            amountOut = _amountOut(amountIn, reserve0, reserve1);
            IUniswapV2Pair(pair).swap(0, amountOut, recipient, data);
        } else {
            amountOut = _amountOut(amountIn, reserve1, reserve0);
            IUniswapV2Pair(pair).swap(amountOut, 0, recipient, data);
        }
    }

    /// @dev Exact input with no price limit; the pool's deltas are its own (negative: paid out).
    function _v3Swap(Leg memory leg, uint256 amountIn, address recipient, bytes memory data)
        internal
        returns (uint256 amountOut)
    {
        uint160 limit = leg.zeroForOne ? MIN_SQRT_PRICE_LIMIT : MAX_SQRT_PRICE_LIMIT;
        (int256 amount0, int256 amount1) =
            IUniswapV3Pool(leg.pool).swap(recipient, leg.zeroForOne, int256(amountIn), limit, data);
        return uint256(-(leg.zeroForOne ? amount1 : amount0));
    }

    /// @dev The gate of every callback: the caller must be the pool this contract armed (so an
    /// owner-only entry point started the swap, and this is its one callback), and a genuine pool
    /// of a configured factory of the callback's kind.
    function _acceptCallback(Leg memory leg, Kind kind) internal {
        address armed = _armed;
        require(armed != address(0), "executor: no swap in progress");
        require(msg.sender == armed, "executor: callback from unexpected caller");
        _armed = address(0);
        require(leg.kind == kind && _isPool(leg, msg.sender), "executor: caller is not a known pool");
    }

    /// @dev CREATE2 address of the leg's pool under each configured factory of its kind (salt:
    /// v2-periphery UniswapV2Library.pairFor, v3-periphery PoolAddress.computeAddress).
    function _isPool(Leg memory leg, address caller) internal view returns (bool) {
        bytes32 salt = leg.kind == Kind.V2
            ? keccak256(abi.encodePacked(leg.token0, leg.token1))
            : keccak256(abi.encode(leg.token0, leg.token1, leg.fee));
        for (uint256 i = 0; i < _factories.length; i++) {
            Factory storage f = _factories[i];
            if (f.kind != leg.kind) {
                continue;
            }
            bytes32 hash = keccak256(abi.encodePacked(hex"ff", f.factory, salt, f.initCodeHash));
            if (address(uint160(uint256(hash))) == caller) {
                return true;
            }
        }
        return false;
    }

    function _tokenIn(Leg memory leg) internal pure returns (address) {
        return leg.zeroForOne ? leg.token0 : leg.token1;
    }

    function _tokenOut(Leg memory leg) internal pure returns (address) {
        return leg.zeroForOne ? leg.token1 : leg.token0;
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
