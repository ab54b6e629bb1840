// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "../interfaces/IERC20.sol";
import {IAggregatorV3} from "../interfaces/IAggregatorV3.sol";
import {IPool} from "../interfaces/IPool.sol";

/// @title LendingPool
/// @notice The devnet's lending market, shaped like Aave V3 (v3.0-3.2) wherever a keeper looks:
/// same selectors, events, revert codes ("45", "46", "47"...), account-data units (USD base with
/// 8 decimals, bps, HF in wad), GenericLogic health factor, 50%/100% close factor and
/// LiquidationLogic collateral math with half-up percentMul/percentDiv. Deliberately simpler:
/// no interest accrual (so positions are deterministic), no aTokens (supplied balances live in
/// this contract), no e-mode, caps, isolation or protocol fee. simulation/lending.py mirrors the
/// arithmetic bit for bit.
contract LendingPool is IPool {
    struct ReserveConfig {
        IAggregatorV3 priceFeed;
        uint8 decimals;
        uint16 ltv;
        uint16 liquidationThreshold;
        uint16 liquidationBonus;
    }

    struct AccountData {
        uint256 totalCollateralBase;
        uint256 totalDebtBase;
        uint256 availableBorrowsBase;
        uint256 currentLiquidationThreshold;
        uint256 ltv;
        uint256 healthFactor;
    }

    event ReserveConfigured(
        address indexed asset,
        address indexed priceFeed,
        uint8 decimals,
        uint256 ltv,
        uint256 liquidationThreshold,
        uint256 liquidationBonus
    );

    uint256 public constant PERCENTAGE_FACTOR = 1e4;
    uint256 internal constant HALF_PERCENTAGE_FACTOR = 0.5e4;
    uint256 internal constant WAD = 1e18;
    uint256 public constant HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 1e18;
    uint256 public constant CLOSE_FACTOR_HF_THRESHOLD = 0.95e18;
    uint256 public constant DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5e4;
    uint256 public constant MAX_LIQUIDATION_CLOSE_FACTOR = 1e4;
    uint256 public constant VARIABLE_RATE_MODE = 2;

    // Aave V3 Errors.sol codes, so revert reasons read the same as on mainnet.
    string internal constant INVALID_RESERVE_PARAMS = "20";
    string internal constant INVALID_AMOUNT = "26";
    string internal constant RESERVE_INACTIVE = "27";
    string internal constant NOT_ENOUGH_AVAILABLE_USER_BALANCE = "32";
    string internal constant INVALID_INTEREST_RATE_MODE_SELECTED = "33";
    string internal constant COLLATERAL_BALANCE_IS_ZERO = "34";
    string internal constant HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD = "35";
    string internal constant COLLATERAL_CANNOT_COVER_NEW_BORROW = "36";
    string internal constant NO_DEBT_OF_SELECTED_TYPE = "39";
    string internal constant NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF = "40";
    string internal constant HEALTH_FACTOR_NOT_BELOW_THRESHOLD = "45";
    string internal constant COLLATERAL_CANNOT_BE_LIQUIDATED = "46";
    string internal constant SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER = "47";
    string internal constant LTV_VALIDATION_FAILED = "57";

    address public immutable owner;
    address[] private _reservesList;
    mapping(address => ReserveConfig) private _reserves;
    mapping(address => mapping(address => uint256)) private _collateral; // user => asset => amount
    mapping(address => mapping(address => uint256)) private _debt; // user => asset => amount

    constructor() {
        owner = msg.sender;
    }

    // ---------------------------------------------------------------- configuration

    /// @notice List a reserve or change its parameters. Bounds as Aave's PoolConfigurator:
    /// ltv <= liquidationThreshold <= 100%, bonus >= 100%, threshold x bonus <= 100%.
    function configureReserve(
        address asset,
        address priceFeed,
        uint256 ltv,
        uint256 liquidationThreshold,
        uint256 liquidationBonus
    ) external {
        require(msg.sender == owner, "LendingPool: not owner");
        require(asset != address(0) && priceFeed != address(0), INVALID_RESERVE_PARAMS);
        require(ltv <= liquidationThreshold && liquidationThreshold <= PERCENTAGE_FACTOR, INVALID_RESERVE_PARAMS);
        require(liquidationBonus >= PERCENTAGE_FACTOR && liquidationBonus <= type(uint16).max, INVALID_RESERVE_PARAMS);
        require(_percentMul(liquidationThreshold, liquidationBonus) <= PERCENTAGE_FACTOR, INVALID_RESERVE_PARAMS);
        uint8 decimals = IERC20(asset).decimals();
        if (address(_reserves[asset].priceFeed) == address(0)) {
            _reservesList.push(asset);
        }
        _reserves[asset] = ReserveConfig(
            IAggregatorV3(priceFeed), decimals, uint16(ltv), uint16(liquidationThreshold), uint16(liquidationBonus)
        );
        emit ReserveConfigured(asset, priceFeed, decimals, ltv, liquidationThreshold, liquidationBonus);
    }

    // ---------------------------------------------------------------- user actions

    function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external override {
        _requireListed(asset);
        require(amount != 0, INVALID_AMOUNT);
        _pull(asset, msg.sender, amount);
        _collateral[onBehalfOf][asset] += amount;
        emit Supply(asset, msg.sender, onBehalfOf, amount, referralCode);
    }

    /// @notice type(uint256).max withdraws the whole balance. Withdrawing collateral that counts
    /// (liquidation threshold != 0) must leave the health factor >= 1.
    function withdraw(address asset, uint256 amount, address to) external override returns (uint256) {
        ReserveConfig memory reserve = _requireListed(asset);
        uint256 balance = _collateral[msg.sender][asset];
        uint256 amountToWithdraw = amount == type(uint256).max ? balance : amount;
        require(amountToWithdraw != 0, INVALID_AMOUNT);
        require(amountToWithdraw <= balance, NOT_ENOUGH_AVAILABLE_USER_BALANCE);
        _collateral[msg.sender][asset] = balance - amountToWithdraw;
        if (reserve.liquidationThreshold != 0) {
            require(
                _accountData(msg.sender).healthFactor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
                HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD
            );
        }
        _push(asset, to, amountToWithdraw);
        emit Withdraw(asset, msg.sender, to, amountToWithdraw);
        return amountToWithdraw;
    }

    /// @notice Variable rate only (mode 2); no credit delegation, so onBehalfOf must be the caller.
    /// Validation as Aave's ValidationLogic.validateBorrow.
    function borrow(address asset, uint256 amount, uint256 interestRateMode, uint16 referralCode, address onBehalfOf)
        external
        override
    {
        ReserveConfig memory reserve = _requireListed(asset);
        require(amount != 0, INVALID_AMOUNT);
        require(interestRateMode == VARIABLE_RATE_MODE, INVALID_INTEREST_RATE_MODE_SELECTED);
        require(onBehalfOf == msg.sender, "LendingPool: no credit delegation");
        AccountData memory account = _accountData(onBehalfOf);
        require(account.totalCollateralBase != 0, COLLATERAL_BALANCE_IS_ZERO);
        require(account.ltv != 0, LTV_VALIDATION_FAILED);
        require(account.healthFactor > HEALTH_FACTOR_LIQUIDATION_THRESHOLD, HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD);
        uint256 amountInBase = (_price(reserve) * amount) / 10 ** reserve.decimals;
        uint256 collateralNeeded = _percentDiv(account.totalDebtBase + amountInBase, account.ltv);
        require(collateralNeeded <= account.totalCollateralBase, COLLATERAL_CANNOT_COVER_NEW_BORROW);
        _debt[onBehalfOf][asset] += amount;
        _push(asset, msg.sender, amount);
        emit Borrow(asset, msg.sender, onBehalfOf, amount, uint8(VARIABLE_RATE_MODE), 0, referralCode);
    }

    /// @notice Repays min(amount, debt); type(uint256).max repays everything but only for oneself.
    function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf)
        external
        override
        returns (uint256)
    {
        _requireListed(asset);
        require(amount != 0, INVALID_AMOUNT);
        require(interestRateMode == VARIABLE_RATE_MODE, INVALID_INTEREST_RATE_MODE_SELECTED);
        uint256 debt = _debt[onBehalfOf][asset];
        require(debt != 0, NO_DEBT_OF_SELECTED_TYPE);
        require(amount != type(uint256).max || msg.sender == onBehalfOf, NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF);
        uint256 paybackAmount = amount < debt ? amount : debt;
        _debt[onBehalfOf][asset] = debt - paybackAmount;
        _pull(asset, msg.sender, paybackAmount);
        emit Repay(asset, onBehalfOf, msg.sender, paybackAmount, false);
        return paybackAmount;
    }

    /// @notice Aave V3 (v3.0-3.2) liquidation: HF must be < 1 ("45"), the collateral must count
    /// ("46"), the user must owe debtAsset ("47"). Covers at most 50% of that debt (100% when
    /// HF <= 0.95); type(uint256).max asks for the maximum. The liquidator receives the
    /// collateral (plus bonus) as underlying, or as a supplied position with receiveAToken.
    function liquidationCall(
        address collateralAsset,
        address debtAsset,
        address user,
        uint256 debtToCover,
        bool receiveAToken
    ) external override {
        (uint256 collateralAmount, uint256 debtAmount) =
            _liquidationAmounts(collateralAsset, debtAsset, user, debtToCover);
        _debt[user][debtAsset] -= debtAmount;
        _collateral[user][collateralAsset] -= collateralAmount;
        if (receiveAToken) {
            _collateral[msg.sender][collateralAsset] += collateralAmount;
        } else {
            _push(collateralAsset, msg.sender, collateralAmount);
        }
        _pull(debtAsset, msg.sender, debtAmount);
        emit LiquidationCall(collateralAsset, debtAsset, user, debtAmount, collateralAmount, msg.sender, receiveAToken);
    }

    // ---------------------------------------------------------------- views

    function getUserAccountData(address user)
        external
        view
        override
        returns (uint256, uint256, uint256, uint256, uint256, uint256)
    {
        AccountData memory account = _accountData(user);
        return (
            account.totalCollateralBase,
            account.totalDebtBase,
            account.availableBorrowsBase,
            account.currentLiquidationThreshold,
            account.ltv,
            account.healthFactor
        );
    }

    function getReservesList() external view override returns (address[] memory) {
        return _reservesList;
    }

    function getReserveConfig(address asset)
        external
        view
        returns (
            address priceFeed,
            uint8 decimals,
            uint256 ltv,
            uint256 liquidationThreshold,
            uint256 liquidationBonus
        )
    {
        ReserveConfig memory reserve = _requireListed(asset);
        return (
            address(reserve.priceFeed),
            reserve.decimals,
            reserve.ltv,
            reserve.liquidationThreshold,
            reserve.liquidationBonus
        );
    }

    /// @notice The reserve's price in the base currency (USD, 8 decimals), as Aave's oracle.
    function getAssetPrice(address asset) external view returns (uint256) {
        return _price(_requireListed(asset));
    }

    function getUserCollateral(address user, address asset) external view returns (uint256) {
        return _collateral[user][asset];
    }

    function getUserDebt(address user, address asset) external view returns (uint256) {
        return _debt[user][asset];
    }

    /// @notice One call for an indexer: the user's supplied and borrowed amount in every reserve,
    /// aligned with getReservesList().
    function getUserPosition(address user)
        external
        view
        returns (address[] memory assets, uint256[] memory collateral, uint256[] memory debt)
    {
        assets = _reservesList;
        collateral = new uint256[](assets.length);
        debt = new uint256[](assets.length);
        for (uint256 i = 0; i < assets.length; i++) {
            collateral[i] = _collateral[user][assets[i]];
            debt[i] = _debt[user][assets[i]];
        }
    }

    // ---------------------------------------------------------------- internals

    /// @dev GenericLogic.calculateUserAccountData + calculateAvailableBorrows, without e-mode.
    function _accountData(address user) internal view returns (AccountData memory account) {
        uint256 weightedLtv;
        uint256 weightedThreshold;
        uint256 count = _reservesList.length;
        for (uint256 i = 0; i < count; i++) {
            address asset = _reservesList[i];
            uint256 supplied = _collateral[user][asset];
            uint256 borrowed = _debt[user][asset];
            ReserveConfig memory reserve = _reserves[asset];
            bool countsAsCollateral = supplied != 0 && reserve.liquidationThreshold != 0;
            if (!countsAsCollateral && borrowed == 0) {
                continue;
            }
            uint256 price = _price(reserve);
            uint256 unit = 10 ** reserve.decimals;
            if (countsAsCollateral) {
                uint256 suppliedBase = (supplied * price) / unit;
                account.totalCollateralBase += suppliedBase;
                weightedLtv += suppliedBase * reserve.ltv;
                weightedThreshold += suppliedBase * reserve.liquidationThreshold;
            }
            if (borrowed != 0) {
                account.totalDebtBase += (price * borrowed) / unit;
            }
        }
        if (account.totalCollateralBase != 0) {
            account.ltv = weightedLtv / account.totalCollateralBase;
            account.currentLiquidationThreshold = weightedThreshold / account.totalCollateralBase;
        }
        account.healthFactor = account.totalDebtBase == 0
            ? type(uint256).max
            : _wadDiv(
                _percentMul(account.totalCollateralBase, account.currentLiquidationThreshold), account.totalDebtBase
            );
        uint256 borrowable = _percentMul(account.totalCollateralBase, account.ltv);
        account.availableBorrowsBase = borrowable > account.totalDebtBase ? borrowable - account.totalDebtBase : 0;
    }

    /// @dev ValidationLogic.validateLiquidationCall + LiquidationLogic._calculateDebt.
    function _liquidationAmounts(address collateralAsset, address debtAsset, address user, uint256 debtToCover)
        internal
        view
        returns (uint256 collateralAmount, uint256 debtAmount)
    {
        ReserveConfig memory collateralReserve = _requireListed(collateralAsset);
        ReserveConfig memory debtReserve = _requireListed(debtAsset);
        uint256 healthFactor = _accountData(user).healthFactor;
        uint256 userTotalDebt = _debt[user][debtAsset];
        uint256 userCollateral = _collateral[user][collateralAsset];

        require(healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD, HEALTH_FACTOR_NOT_BELOW_THRESHOLD);
        require(collateralReserve.liquidationThreshold != 0 && userCollateral != 0, COLLATERAL_CANNOT_BE_LIQUIDATED);
        require(userTotalDebt != 0, SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER);

        uint256 closeFactor = healthFactor > CLOSE_FACTOR_HF_THRESHOLD
            ? DEFAULT_LIQUIDATION_CLOSE_FACTOR
            : MAX_LIQUIDATION_CLOSE_FACTOR;
        uint256 maxLiquidatableDebt = _percentMul(userTotalDebt, closeFactor);
        uint256 actualDebtToLiquidate = debtToCover > maxLiquidatableDebt ? maxLiquidatableDebt : debtToCover;
        return _collateralToLiquidate(collateralReserve, debtReserve, actualDebtToLiquidate, userCollateral);
    }

    /// @dev LiquidationLogic._calculateAvailableCollateralToLiquidate with no protocol fee.
    function _collateralToLiquidate(
        ReserveConfig memory collateralReserve,
        ReserveConfig memory debtReserve,
        uint256 debtToCover,
        uint256 userCollateral
    ) internal view returns (uint256 collateralAmount, uint256 debtAmountNeeded) {
        uint256 collateralPrice = _price(collateralReserve);
        uint256 debtPrice = _price(debtReserve);
        uint256 collateralUnit = 10 ** collateralReserve.decimals;
        uint256 debtUnit = 10 ** debtReserve.decimals;
        uint256 baseCollateral = (debtPrice * debtToCover * collateralUnit) / (collateralPrice * debtUnit);
        uint256 maxCollateralToLiquidate = _percentMul(baseCollateral, collateralReserve.liquidationBonus);
        if (maxCollateralToLiquidate > userCollateral) {
            collateralAmount = userCollateral;
            debtAmountNeeded = _percentDiv(
                (collateralPrice * userCollateral * debtUnit) / (debtPrice * collateralUnit),
                collateralReserve.liquidationBonus
            );
        } else {
            collateralAmount = maxCollateralToLiquidate;
            debtAmountNeeded = debtToCover;
        }
    }

    function _requireListed(address asset) internal view returns (ReserveConfig memory reserve) {
        reserve = _reserves[asset];
        require(address(reserve.priceFeed) != address(0), RESERVE_INACTIVE);
    }

    function _price(ReserveConfig memory reserve) internal view returns (uint256) {
        (, int256 answer,,,) = reserve.priceFeed.latestRoundData();
        require(answer > 0, "LendingPool: invalid price");
        return uint256(answer);
    }

    // Aave's PercentageMath / WadRayMath: half-up rounding.
    function _percentMul(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return (value * percentage + HALF_PERCENTAGE_FACTOR) / PERCENTAGE_FACTOR;
    }

    function _percentDiv(uint256 value, uint256 percentage) internal pure returns (uint256) {
        return (value * PERCENTAGE_FACTOR + percentage / 2) / percentage;
    }

    function _wadDiv(uint256 a, uint256 b) internal pure returns (uint256) {
        return (a * WAD + b / 2) / b;
    }

    function _pull(address asset, address from, uint256 amount) internal {
        (bool ok, bytes memory data) =
            asset.call(abi.encodeWithSelector(IERC20.transferFrom.selector, from, address(this), amount));
        require(ok && (data.length == 0 || abi.decode(data, (bool))), "LendingPool: transferFrom failed");
    }

    function _push(address asset, address to, uint256 amount) internal {
        (bool ok, bytes memory data) = asset.call(abi.encodeWithSelector(IERC20.transfer.selector, to, amount));
        require(ok && (data.length == 0 || abi.decode(data, (bool))), "LendingPool: transfer failed");
    }
}
