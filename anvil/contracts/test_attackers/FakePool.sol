// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Test-only attacker posing as a pool: it answers token0/token1/fee/factory with a
/// genuine pool's values (and deep V2 reserves), and calls back whoever calls its swap (V2 or V3 shape) asking to be
/// paid without paying anything; as an Aave pool, its flashLoanSimple lends nothing and calls
/// executeOperation back (naming any initiator), and its liquidationCall re-enters the caller's
/// executeOperation with that same callback; `poke` calls any contract
/// with any calldata. Every call it makes bubbles the callee's revert, so a refusal surfaces with
/// the callee's own reason.
contract FakePool {
    address public immutable token0;
    address public immutable token1;
    uint24 public immutable fee;
    address public immutable factory;

    address public flashInitiator;
    bytes private _flashCallback;

    constructor(address token0_, address token1_, uint24 fee_, address factory_) {
        token0 = token0_;
        token1 = token1_;
        fee = fee_;
        factory = factory_;
    }

    /// @notice Deep reserves, so a V2 caller asks for a large output.
    function getReserves() external view returns (uint112, uint112, uint32) {
        return (1e30, 1e30, uint32(block.timestamp));
    }

    /// @notice The initiator flashLoanSimple names in its callback (zero: its caller).
    function setFlashInitiator(address initiator) external {
        flashInitiator = initiator;
    }

    /// @notice Aave shape: lends nothing, then calls the receiver's executeOperation.
    function flashLoanSimple(address receiver, address asset, uint256 amount, bytes calldata params, uint16) external {
        address initiator = flashInitiator == address(0) ? msg.sender : flashInitiator;
        _flashCallback = abi.encodeWithSignature(
            "executeOperation(address,uint256,uint256,address,bytes)", asset, amount, uint256(0), initiator, params
        );
        _call(receiver, _flashCallback);
    }

    /// @notice Aave shape, called from inside the callback: re-enters it.
    function liquidationCall(address, address, address, uint256, bool) external {
        _call(msg.sender, _flashCallback);
    }

    function poke(address target, bytes calldata data) external {
        _call(target, data);
    }

    /// @notice V2 shape: pays nothing, then calls back as a pair's flash swap would.
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external {
        _call(to, abi.encodeWithSignature("uniswapV2Call(address,uint256,uint256,bytes)", msg.sender, amount0Out, amount1Out, data));
    }

    /// @notice V3 shape: pays nothing, then claims the whole input as owed.
    function swap(address, bool zeroForOne, int256 amountSpecified, uint160, bytes calldata data)
        external
        returns (int256, int256)
    {
        (int256 amount0, int256 amount1) = zeroForOne ? (amountSpecified, int256(0)) : (int256(0), amountSpecified);
        _call(msg.sender, abi.encodeWithSignature("uniswapV3SwapCallback(int256,int256,bytes)", amount0, amount1, data));
        return (amount0, amount1);
    }

    function _call(address target, bytes memory data) internal {
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }
}
