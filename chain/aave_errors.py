"""Aave V3 revert reasons, readable: string codes (v3.0-v3.3) and custom errors (v3.4+).

Up to v3.3 the pool reverts with ``Error(string)`` carrying a numeric code (``"45"``); from v3.4
(solc 0.8.27, ``require(cond, Error())``) with a custom error whose selector names it
(``HealthFactorNotBelowThreshold()`` = ``0x930bb771``; aave-v3-origin
docs/3.4/Aave-v3.4-features.md).
:func:`decode_revert` turns either, or a plain ``Error(string)`` message, into an
:class:`AaveError` with the constant's name, so a failed liquidation says why in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)

# @aave/core-v3 1.19.3 contracts/protocol/libraries/helpers/Errors.sol (v3.0.x codes);
# MUST_NOT_LEAVE_DUST and "104" SELF_LIQUIDATION... are later versions' additions
# (aave-v3-origin src/contracts/protocol/libraries/helpers/Errors.sol v3.3).
CODES: dict[str, str] = {
    "1": "CALLER_NOT_POOL_ADMIN",
    "2": "CALLER_NOT_EMERGENCY_ADMIN",
    "3": "CALLER_NOT_POOL_OR_EMERGENCY_ADMIN",
    "4": "CALLER_NOT_RISK_OR_POOL_ADMIN",
    "5": "CALLER_NOT_ASSET_LISTING_OR_POOL_ADMIN",
    "6": "CALLER_NOT_BRIDGE",
    "7": "ADDRESSES_PROVIDER_NOT_REGISTERED",
    "8": "INVALID_ADDRESSES_PROVIDER_ID",
    "9": "NOT_CONTRACT",
    "10": "CALLER_NOT_POOL_CONFIGURATOR",
    "11": "CALLER_NOT_ATOKEN",
    "12": "INVALID_ADDRESSES_PROVIDER",
    "13": "INVALID_FLASHLOAN_EXECUTOR_RETURN",
    "14": "RESERVE_ALREADY_ADDED",
    "15": "NO_MORE_RESERVES_ALLOWED",
    "16": "EMODE_CATEGORY_RESERVED",
    "17": "INVALID_EMODE_CATEGORY_ASSIGNMENT",
    "18": "RESERVE_LIQUIDITY_NOT_ZERO",
    "19": "FLASHLOAN_PREMIUM_INVALID",
    "20": "INVALID_RESERVE_PARAMS",
    "21": "INVALID_EMODE_CATEGORY_PARAMS",
    "22": "BRIDGE_PROTOCOL_FEE_INVALID",
    "23": "CALLER_MUST_BE_POOL",
    "24": "INVALID_MINT_AMOUNT",
    "25": "INVALID_BURN_AMOUNT",
    "26": "INVALID_AMOUNT",
    "27": "RESERVE_INACTIVE",
    "28": "RESERVE_FROZEN",
    "29": "RESERVE_PAUSED",
    "30": "BORROWING_NOT_ENABLED",
    "31": "STABLE_BORROWING_NOT_ENABLED",
    "32": "NOT_ENOUGH_AVAILABLE_USER_BALANCE",
    "33": "INVALID_INTEREST_RATE_MODE_SELECTED",
    "34": "COLLATERAL_BALANCE_IS_ZERO",
    "35": "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD",
    "36": "COLLATERAL_CANNOT_COVER_NEW_BORROW",
    "37": "COLLATERAL_SAME_AS_BORROWING_CURRENCY",
    "38": "AMOUNT_BIGGER_THAN_MAX_LOAN_SIZE_STABLE",
    "39": "NO_DEBT_OF_SELECTED_TYPE",
    "40": "NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF",
    "41": "NO_OUTSTANDING_STABLE_DEBT",
    "42": "NO_OUTSTANDING_VARIABLE_DEBT",
    "43": "UNDERLYING_BALANCE_ZERO",
    "44": "INTEREST_RATE_REBALANCE_CONDITIONS_NOT_MET",
    "45": "HEALTH_FACTOR_NOT_BELOW_THRESHOLD",
    "46": "COLLATERAL_CANNOT_BE_LIQUIDATED",
    "47": "SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER",
    "49": "INCONSISTENT_FLASHLOAN_PARAMS",
    "50": "BORROW_CAP_EXCEEDED",
    "51": "SUPPLY_CAP_EXCEEDED",
    "52": "UNBACKED_MINT_CAP_EXCEEDED",
    "53": "DEBT_CEILING_EXCEEDED",
    "54": "UNDERLYING_CLAIMABLE_RIGHTS_NOT_ZERO",
    "55": "STABLE_DEBT_NOT_ZERO",
    "56": "VARIABLE_DEBT_SUPPLY_NOT_ZERO",
    "57": "LTV_VALIDATION_FAILED",
    "58": "INCONSISTENT_EMODE_CATEGORY",
    "59": "PRICE_ORACLE_SENTINEL_CHECK_FAILED",
    "60": "ASSET_NOT_BORROWABLE_IN_ISOLATION",
    "61": "RESERVE_ALREADY_INITIALIZED",
    "62": "USER_IN_ISOLATION_MODE_OR_LTV_ZERO",
    "63": "INVALID_LTV",
    "64": "INVALID_LIQ_THRESHOLD",
    "65": "INVALID_LIQ_BONUS",
    "66": "INVALID_DECIMALS",
    "67": "INVALID_RESERVE_FACTOR",
    "68": "INVALID_BORROW_CAP",
    "69": "INVALID_SUPPLY_CAP",
    "70": "INVALID_LIQUIDATION_PROTOCOL_FEE",
    "71": "INVALID_EMODE_CATEGORY",
    "72": "INVALID_UNBACKED_MINT_CAP",
    "73": "INVALID_DEBT_CEILING",
    "74": "INVALID_RESERVE_INDEX",
    "75": "ACL_ADMIN_CANNOT_BE_ZERO",
    "76": "INCONSISTENT_PARAMS_LENGTH",
    "77": "ZERO_ADDRESS_NOT_VALID",
    "78": "INVALID_EXPIRATION",
    "79": "INVALID_SIGNATURE",
    "80": "OPERATION_NOT_SUPPORTED",
    "81": "DEBT_CEILING_NOT_ZERO",
    "82": "ASSET_NOT_LISTED",
    "83": "INVALID_OPTIMAL_USAGE_RATIO",
    "84": "INVALID_OPTIMAL_STABLE_TO_TOTAL_DEBT_RATIO",
    "85": "UNDERLYING_CANNOT_BE_RESCUED",
    "86": "ADDRESSES_PROVIDER_ALREADY_ADDED",
    "87": "POOL_ADDRESSES_DO_NOT_MATCH",
    "88": "STABLE_BORROWING_ENABLED",
    "89": "SILOED_BORROWING_VIOLATION",
    "90": "RESERVE_DEBT_NOT_ZERO",
    "91": "FLASHLOAN_DISABLED",
    "103": "MUST_NOT_LEAVE_DUST",
}
# v3.4 custom errors that have no numeric ancestor (aave-v3-origin docs/3.4: self-liquidation
# is forbidden).
LATER_ERRORS = ("SELF_LIQUIDATION",)


def pascal_case(constant: str) -> str:
    """``HEALTH_FACTOR_NOT_BELOW_THRESHOLD`` -> ``HealthFactorNotBelowThreshold`` (how v3.4
    renamed the string constants into custom errors)."""
    return "".join(part.capitalize() for part in constant.split("_"))


def error_selector(name: str) -> bytes:
    """The 4-byte selector of a parameterless custom error ``name()``."""
    return keccak(f"{name}()".encode())[:4]


SELECTORS: dict[bytes, str] = {
    error_selector(pascal_case(name)): name for name in (*CODES.values(), *LATER_ERRORS)
}


@dataclass(frozen=True, slots=True)
class AaveError:
    """A decoded revert: ``name`` is the Errors.sol constant (or the raw message), ``code`` the
    v3.0-3.3 string code when the pool sent one."""

    name: str
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.code})" if self.code else self.name


def decode_revert(data: bytes) -> AaveError | None:
    """The Aave error in revert ``data``; a non-Aave ``Error(string)`` keeps its message; None
    for anything else (empty data, an unknown selector, a malformed string)."""
    selector = data[:4]
    if selector == ERROR_STRING_SELECTOR:
        try:
            (message,) = decode(["string"], data[4:])
        except (DecodingError, OverflowError, UnicodeDecodeError):
            return None
        name = CODES.get(message)
        return AaveError(name, message) if name else AaveError(message)
    name = SELECTORS.get(selector) if len(data) == 4 else None
    return None if name is None else AaveError(name)
