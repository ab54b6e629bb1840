// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20Token} from "./ERC20Token.sol";

/// @notice Hostile token metadata: symbol() can revert, return terminal/markup control text,
/// invalid UTF-8, or return data that is not an ABI-encoded string at all. Transfers are normal.
contract BadSymbolToken is ERC20Token {
    enum SymbolMode {
        Normal,
        Reverts,
        Markup,
        InvalidUtf8,
        Undecodable
    }

    SymbolMode public symbolMode;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Token(name_, symbol_, decimals_) {}

    function setSymbolMode(SymbolMode mode) external onlyOwner {
        symbolMode = mode;
    }

    function symbol() public view override returns (string memory) {
        SymbolMode mode = symbolMode;
        if (mode == SymbolMode.Reverts) revert("BadSymbolToken: symbol unavailable");
        if (mode == SymbolMode.Markup) return "[red]x\x1b[2J";
        if (mode == SymbolMode.InvalidUtf8) {
            bytes memory notUtf8 = hex"fffe41c0";
            return string(notUtf8);
        }
        if (mode == SymbolMode.Undecodable) {
            // A string head whose offset points far past the end of the return data.
            assembly {
                mstore(0, 0xffffffff)
                mstore(32, 0x5b7265645d)
                return(0, 64)
            }
        }
        return super.symbol();
    }
}
