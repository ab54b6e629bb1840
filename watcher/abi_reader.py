"""Calldata reading by ABI type, by word slicing: a reader is compiled once per signature.

Strict like eth-abi's strict mode: every word must be present, addresses and small uints must have
clean high bytes, bools are 0 or 1, dynamic data must fit with zero padding, and an offset may not
point into its own head. Anything else raises :class:`~chain.types.MalformedError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chain.abi_pack import split_top_level
from chain.types import MalformedError

# ABI reading by word slicing. A reader takes (calldata, base, pos): ``pos`` is where the value's
# head starts and ``base`` is the start of the enclosing tuple, which dynamic offsets count from.
# Bounds are checked per region, not per word: a sequence checks that its whole head is present
# and an array its whole element area, so elementary readers slice without checking.

_Reader = Callable[[bytes, int, int], Any]
_ZERO12 = bytes(12)


@dataclass(frozen=True, slots=True)
class _AbiType:
    head_words: int
    dynamic: bool
    read: _Reader


def _read_uint256(data: bytes, base: int, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 32], "big")


def _uint_reader(bits: int) -> _Reader:
    limit = 1 << bits

    def read(data: bytes, base: int, pos: int) -> int:
        value = int.from_bytes(data[pos : pos + 32], "big")
        if value >= limit:
            raise MalformedError(f"uint{bits} out of range at byte {pos}")
        return value

    return read


def _int_reader(bits: int) -> _Reader:
    """Two's complement, sign-extended to the word: anything else is malformed."""
    half = 1 << (bits - 1)

    def read(data: bytes, base: int, pos: int) -> int:
        value = int.from_bytes(data[pos : pos + 32], "big", signed=True)
        if not -half <= value < half:
            raise MalformedError(f"int{bits} out of range at byte {pos}")
        return value

    return read


def _read_address(data: bytes, base: int, pos: int) -> str:
    if data[pos : pos + 12] != _ZERO12:
        raise MalformedError(f"address with dirty high bytes at byte {pos}")
    return "0x" + data[pos + 12 : pos + 32].hex()


def _read_bool(data: bytes, base: int, pos: int) -> bool:
    value = int.from_bytes(data[pos : pos + 32], "big")
    if value > 1:
        raise MalformedError(f"bool not 0 or 1 at byte {pos}")
    return value == 1


def _read_bytes32(data: bytes, base: int, pos: int) -> bytes:
    return data[pos : pos + 32]


def _tail_start(data: bytes, base: int, pos: int) -> int:
    """Where the dynamic value whose offset sits at ``pos`` starts; its first word is present."""
    start = base + int.from_bytes(data[pos : pos + 32], "big")
    if start + 32 > len(data):
        raise MalformedError(f"offset at byte {pos} points past the end of calldata")
    return start


def _read_bytes(data: bytes, base: int, pos: int) -> bytes:
    start = _tail_start(data, base, pos) + 32
    end = start + int.from_bytes(data[start - 32 : start], "big")
    padded_end = start + (end - start + 31) // 32 * 32
    if padded_end > len(data):
        raise MalformedError(f"bytes at byte {start} run past the end of calldata")
    if data[end:padded_end].count(0) != padded_end - end:
        raise MalformedError(f"bytes at byte {start} have non-zero padding")
    return data[start:end]


def _check_pointers(data: bytes, base: int, head: int, head_end: int, positions: Any) -> None:
    """A pointer into the head it belongs to is invalid (as eth-abi's strict decoder says)."""
    for at in positions:
        if base + int.from_bytes(data[head + at : head + at + 32], "big") < head_end:
            raise MalformedError(f"offset at byte {head + at} points into its own head")


def _array_reader(element: _AbiType) -> _Reader:
    stride = 32 * element.head_words
    read_element = element.read
    dynamic = element.dynamic

    def read(data: bytes, base: int, pos: int) -> tuple[Any, ...]:
        start = _tail_start(data, base, pos) + 32
        count = int.from_bytes(data[start - 32 : start], "big")
        if start + count * stride > len(data):
            raise MalformedError(f"array of {count} at byte {start} runs past the end of calldata")
        if dynamic:
            _check_pointers(
                data, start, start, start + count * stride, range(0, count * stride, 32)
            )
        return tuple([read_element(data, start, start + stride * i) for i in range(count)])

    return read


def _sequence_reader(components: list[_AbiType]) -> _Reader:
    """Reads consecutive heads (a tuple's or the argument list's) into a tuple."""
    offsets: list[int] = []
    size = 0
    for component in components:
        offsets.append(size)
        size += 32 * component.head_words
    plan = tuple(zip(offsets, (c.read for c in components), strict=True))
    pointers = tuple(o for o, c in zip(offsets, components, strict=True) if c.dynamic)

    def read(data: bytes, base: int, pos: int) -> tuple[Any, ...]:
        if pos + size > len(data):
            raise MalformedError(
                f"truncated: {size}-byte head at byte {pos} of {len(data)}-byte calldata"
            )
        if pointers:
            _check_pointers(data, base, pos, pos + size, pointers)
        return tuple([read_one(data, base, pos + offset) for offset, read_one in plan])

    return read


_ELEMENTARY: dict[str, _AbiType] = {
    "uint256": _AbiType(1, False, _read_uint256),
    "address": _AbiType(1, False, _read_address),
    "bool": _AbiType(1, False, _read_bool),
    "bytes32": _AbiType(1, False, _read_bytes32),
    "bytes": _AbiType(1, True, _read_bytes),
    **{f"uint{bits}": _AbiType(1, False, _uint_reader(bits)) for bits in (8, 24, 32, 48, 128, 160)},
    **{f"int{bits}": _AbiType(1, False, _int_reader(bits)) for bits in (24, 192, 256)},
}


def _compile_type(abi_type: str) -> _AbiType:
    if abi_type.endswith("[]"):
        return _AbiType(1, True, _array_reader(_compile_type(abi_type[:-2])))
    if abi_type.endswith("]"):  # a fixed-size array of a static type, e.g. OCR2's bytes32[3]
        element, _, count = abi_type[:-1].rpartition("[")
        inner = _compile_type(element)
        if inner.dynamic or not count.isdigit():
            raise ValueError(f"ABI type {abi_type!r} is not supported by the decoder")
        return _AbiType(
            inner.head_words * int(count), False, _sequence_reader([inner] * int(count))
        )
    if abi_type.startswith("("):
        components = [_compile_type(t) for t in split_top_level(abi_type[1:-1])]
        sequence = _sequence_reader(components)
        if not any(c.dynamic for c in components):
            return _AbiType(sum(c.head_words for c in components), False, sequence)

        def read_dynamic_tuple(data: bytes, base: int, pos: int) -> tuple[Any, ...]:
            start = _tail_start(data, base, pos)
            return sequence(data, start, start)

        return _AbiType(1, True, read_dynamic_tuple)
    try:
        return _ELEMENTARY[abi_type]
    except KeyError:
        raise ValueError(f"ABI type {abi_type!r} is not supported by the decoder") from None


def compile_decoder(types: str, skip: int = 0) -> Callable[[bytes], tuple[Any, ...]]:
    """Reader of ``abi.decode(data[skip:], (type,...))`` for ``types`` = ``"type,..."``."""
    sequence = _sequence_reader([_compile_type(t) for t in split_top_level(types)])
    return lambda data: sequence(data, skip, skip)


def compile_arguments(signature: str) -> Callable[[bytes], tuple[Any, ...]]:
    """Reader of a call's arguments (after the 4-byte selector) for ``name(type,...)``."""
    return compile_decoder(signature[signature.index("(") + 1 : -1], 4)
