"""ABI encoding without eth-abi's per-call machinery, for argument lists of simple types.

eth-abi builds and validates an encoder tree on every call (about 0.1 ms for an Executor call
of two hops); the hot path signs one such call per candidate. :func:`packer` compiles a type
list once into plain closures that write the same bytes: head/tail layout per the Solidity ABI
spec (https://docs.soliditylang.org/en/latest/abi-spec.html, "Formal Specification of the
Encoding"). Supported: ``uintN``, ``intN``, ``address``, ``bool``, ``bytesN``, static tuples of
those, and ``T[]`` of a static ``T``; other type lists get no packer.

A packer takes only values eth-abi would encode exactly as it does: ``int`` (not ``bool``) in
range, ``bool``, 20-byte ``bytes`` or an all-lower/all-upper hex address (a mixed-case one needs
its EIP-55 checksum verified), ``bytes`` up to N long for ``bytesN``, lists or tuples. For any
other value it returns None, and the caller lets eth-abi encode (and reject) the arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

# Encodes one value to its words, or None when eth-abi should judge the value instead.
Encode = Callable[[Any], bytes | None]

_WORD = 32
_ZERO_WORD = bytes(_WORD)
_TRUE_WORD = (1).to_bytes(_WORD, "big")
_PLAIN_ADDRESS = re.compile(r"0x(?:[0-9a-f]{40}|[0-9A-F]{40})\Z")


def _uint(bits: int) -> Encode:
    bound = 1 << bits

    def encode(value: Any) -> bytes | None:
        if type(value) is not int or not 0 <= value < bound:
            return None
        return value.to_bytes(_WORD, "big")

    return encode


def _int(bits: int) -> Encode:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def encode(value: Any) -> bytes | None:
        if type(value) is not int or not low <= value < high:
            return None
        return value.to_bytes(_WORD, "big", signed=True)

    return encode


def _address(value: Any) -> bytes | None:
    if type(value) is str:
        if not _PLAIN_ADDRESS.match(value):
            return None
        return bytes(12) + bytes.fromhex(value[2:])
    if type(value) is bytes and len(value) == 20:
        return bytes(12) + value
    return None


def _bool(value: Any) -> bytes | None:
    if value is True:
        return _TRUE_WORD
    if value is False:
        return _ZERO_WORD
    return None


def _fixed_bytes(size: int) -> Encode:
    def encode(value: Any) -> bytes | None:
        if type(value) is not bytes or len(value) > size:
            return None
        return value + bytes(_WORD - len(value))

    return encode


def split_top_level(types: str) -> list[str]:
    """The comma-separated types of a tuple's inside, nested tuples kept whole."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(types):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(types[start:i])
            start = i + 1
    if types:
        parts.append(types[start:])
    return parts


def _tuple(fields: list[Encode]) -> Encode:
    count = len(fields)

    def encode(value: Any) -> bytes | None:
        if type(value) not in (tuple, list) or len(value) != count:
            return None
        words = [field(item) for field, item in zip(fields, value, strict=True)]
        if None in words:
            return None
        return b"".join(words)  # type: ignore[arg-type]

    return encode


def _static(kind: str) -> Encode | None:
    """The encoder of a static type, or None for a type this module does not pack."""
    if kind.startswith("(") and kind.endswith(")"):
        fields = [_static(part) for part in split_top_level(kind[1:-1])]
        if any(field is None for field in fields):
            return None
        return _tuple(fields)  # type: ignore[arg-type]
    if kind == "address":
        return _address
    if kind == "bool":
        return _bool
    for prefix, build, limit in (("uint", _uint, 256), ("int", _int, 256), ("bytes", None, 32)):
        if kind.startswith(prefix) and kind[len(prefix) :].isdigit():
            size = int(kind[len(prefix) :])
            if build is None:
                return _fixed_bytes(size) if 1 <= size <= limit else None
            return build(size) if size % 8 == 0 and 8 <= size <= limit else None
    return None


def _array(item: Encode) -> Encode:
    def encode(value: Any) -> bytes | None:
        if type(value) not in (tuple, list):
            return None
        words = [item(element) for element in value]
        if None in words:
            return None
        return len(value).to_bytes(_WORD, "big") + b"".join(words)  # type: ignore[arg-type]

    return encode


def packer(types: Sequence[str]) -> Callable[[Sequence[Any]], bytes | None] | None:
    """The encoder of an argument list of ``types`` (None when a type is not supported); it
    returns None for values it leaves to eth-abi."""
    slots: list[tuple[bool, Encode]] = []  # (dynamic, encoder)
    for kind in types:
        if kind.endswith("[]"):
            item = _static(kind[:-2])
            if item is None:
                return None
            slots.append((True, _array(item)))
        else:
            encode = _static(kind)
            if encode is None:
                return None
            slots.append((False, encode))
    count = len(slots)

    def pack(args: Sequence[Any]) -> bytes | None:
        if len(args) != count:
            return None
        encoded = []
        for (_, encode), value in zip(slots, args, strict=True):
            words = encode(value)
            if words is None:
                return None
            encoded.append(words)
        static_size = sum(
            _WORD if dynamic else len(words)
            for (dynamic, _), words in zip(slots, encoded, strict=True)
        )
        heads, tails, offset = [], [], static_size
        for (dynamic, _), words in zip(slots, encoded, strict=True):
            if dynamic:
                heads.append(offset.to_bytes(_WORD, "big"))
                tails.append(words)
                offset += len(words)
            else:
                heads.append(words)
        return b"".join(heads) + b"".join(tails)

    return pack
