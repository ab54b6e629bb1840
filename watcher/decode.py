"""Decode pending router and pair calls into typed intents (:mod:`chain.intents`), fast, safely.

:class:`Decoder` knows routers by address (:class:`RouterKind`) and V2 pairs by a set or a
predicate. ``decode`` never raises: unknown targets and selectors return None and count as
*undecoded*; calldata that does not fit the method's ABI returns None and counts as *malformed*;
:class:`DecodeStats` keeps the counts and the last reason of each kind for a log line.

Calldata is read by word slicing, compiled once per method from its ABI signature. It is strict
like eth-abi's strict mode: every word must be present, addresses and small uints must have clean
high bytes, bools are 0 or 1, dynamic data must fit with zero padding. V3 packed paths must be
exactly token(20) (fee(3) token(20))+. The V2 router (abicoder v1) would silently mask dirty
address bits; we refuse them instead, which no honest wallet produces.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from chain.intents import AuxiliaryIntent, Intent, MulticallIntent, SwapIntent
from chain.types import MalformedError, PendingTx
from watcher import decode_v2, decode_v3
from watcher.decode_feeds import FEED_ROWS
from watcher.decode_v2 import Build, Row


class RouterKind(enum.Enum):
    """Which ABI a router address speaks (forks of a router share its kind)."""

    UNISWAP_V2_ROUTER = "uniswap-v2-router"
    UNISWAP_V3_SWAP_ROUTER = "uniswap-v3-swap-router"
    UNISWAP_V3_SWAP_ROUTER02 = "uniswap-v3-swap-router02"


MAINNET_ROUTERS: Mapping[str, RouterKind] = MappingProxyType(
    {
        "0x7a250d5630b4cf539739df2c5dacb4c659f2488d": RouterKind.UNISWAP_V2_ROUTER,  # Uniswap V2
        "0xd9e1ce17f2641f24ae83637ab66a2cca9c378b9f": RouterKind.UNISWAP_V2_ROUTER,  # SushiSwap
        "0xe592427a0aece92de3edee1f18e0157c05861564": RouterKind.UNISWAP_V3_SWAP_ROUTER,
        "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45": RouterKind.UNISWAP_V3_SWAP_ROUTER02,
    }
)

ZERO_ADDRESS = "0x" + "00" * 20
# SwapRouter02's "the router itself" recipient (swap-router-contracts libraries/Constants.sol).
ADDRESS_THIS = "0x" + "00" * 19 + "02"
# Nested multicalls work on chain but nobody needs many levels; the cap bounds recursion.
MAX_MULTICALL_DEPTH = 4


class _Unknown(Exception):
    """The target has no method with this selector."""


# ---------------------------------------------------------------------------------------------
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


def _split_top_level(types: str) -> list[str]:
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


_ELEMENTARY: dict[str, _AbiType] = {
    "uint256": _AbiType(1, False, _read_uint256),
    "address": _AbiType(1, False, _read_address),
    "bool": _AbiType(1, False, _read_bool),
    "bytes32": _AbiType(1, False, _read_bytes32),
    "bytes": _AbiType(1, True, _read_bytes),
    **{f"uint{bits}": _AbiType(1, False, _uint_reader(bits)) for bits in (8, 24, 32, 128, 160)},
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
        components = [_compile_type(t) for t in _split_top_level(abi_type[1:-1])]
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


def _compile_arguments(signature: str) -> Callable[[bytes], tuple[Any, ...]]:
    """Reader of a call's arguments (after the 4-byte selector) for ``name(type,...)``."""
    arguments = _split_top_level(signature[signature.index("(") + 1 : -1])
    sequence = _sequence_reader([_compile_type(t) for t in arguments])
    return lambda data: sequence(data, 4, 4)


# ---------------------------------------------------------------------------------------------
# Methods and multicalls.


@dataclass(frozen=True, slots=True)
class _Target:
    address: str
    methods: Mapping[bytes, _Method]
    # Recipients by which a swap keeps its output in the router (for a later unwrapWETH9).
    self_recipients: frozenset[str]


# (target, method name, tx value, decoded arguments, multicall depth) -> intent
_TargetBuild = Callable[[_Target, str, int, tuple[Any, ...], int], Intent]


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    signature: str
    read: Callable[[bytes], tuple[Any, ...]]
    build: _TargetBuild


def _lookup(target: _Target, data: bytes) -> _Method:
    method = target.methods.get(data[:4])
    if method is None:
        raise _Unknown(f"selector 0x{data[:4].hex()} unknown at {target.address}")
    return method


def _decode_inner(target: _Target, index: int, data: bytes, value: int, depth: int) -> Intent:
    try:
        method = _lookup(target, data)
        return method.build(target, method.name, value, method.read(data), depth)
    except _Unknown:
        return AuxiliaryIntent(target.address, "0x" + data[:4].hex())
    except MalformedError as error:
        raise MalformedError(f"multicall call {index}: {error.reason}") from None


def _multicall(head: str | None) -> _TargetBuild:
    """``multicall([deadline | previousBlockhash,] bytes[] data)``: inner calls are decoded against
    the same router and share the tx value. A swap that leaves its output in the router, in a
    multicall that unwraps WETH, pays out ETH."""

    def build(
        target: _Target, method: str, value: int, args: tuple[Any, ...], depth: int
    ) -> MulticallIntent:
        if depth >= MAX_MULTICALL_DEPTH:
            raise MalformedError(f"multicall nested deeper than {MAX_MULTICALL_DEPTH}")
        calls = [
            _decode_inner(target, i, data, value, depth + 1) for i, data in enumerate(args[-1])
        ]
        if any(
            isinstance(c, AuxiliaryIntent) and c.method.startswith("unwrapWETH9") for c in calls
        ):
            calls = [
                replace(c, eth_out=True)
                if isinstance(c, SwapIntent) and c.recipient in target.self_recipients
                else c
                for c in calls
            ]
        return MulticallIntent(
            router=target.address,
            method=method,
            deadline=args[0] if head == "deadline" else None,
            previous_blockhash="0x" + args[0].hex() if head == "blockhash" else None,
            value=value,
            calls=tuple(calls),
        )

    return build


def _plain(build: Build) -> _TargetBuild:
    """Adapts a row builder, which needs only the router's address."""
    return lambda target, method, value, args, depth: build(target.address, method, value, args)


def _method_table(
    rows: tuple[Row, ...], multicalls: tuple[tuple[str, str, str | None], ...] = ()
) -> Mapping[bytes, _Method]:
    methods = [(selector, sig, _plain(build)) for selector, sig, build in rows]
    methods += [(selector, sig, _multicall(head)) for selector, sig, head in multicalls]
    return MappingProxyType(
        {
            bytes.fromhex(selector): _Method(sig.split("(")[0], sig, _compile_arguments(sig), build)
            for selector, sig, build in methods
        }
    )


_MULTICALL = ("ac9650d8", "multicall(bytes[])", None)

METHOD_TABLES: Mapping[RouterKind, Mapping[bytes, _Method]] = MappingProxyType(
    {
        RouterKind.UNISWAP_V2_ROUTER: _method_table(decode_v2.ROUTER02_ROWS),
        RouterKind.UNISWAP_V3_SWAP_ROUTER: _method_table(decode_v3.SWAP_ROUTER_ROWS, (_MULTICALL,)),
        RouterKind.UNISWAP_V3_SWAP_ROUTER02: _method_table(
            decode_v3.SWAP_ROUTER02_ROWS,
            (
                _MULTICALL,
                ("5ae401dc", "multicall(uint256,bytes[])", "deadline"),
                ("1f0464d1", "multicall(bytes32,bytes[])", "blockhash"),
            ),
        ),
    }
)
PAIR_METHODS: Mapping[bytes, _Method] = _method_table(decode_v2.PAIR_ROWS)
FEED_METHODS: Mapping[bytes, _Method] = _method_table(FEED_ROWS)

# Recipients the router replaces by its own address (besides the address itself).
_SELF_SENTINELS: Mapping[RouterKind, frozenset[str]] = MappingProxyType(
    {
        RouterKind.UNISWAP_V2_ROUTER: frozenset(),
        RouterKind.UNISWAP_V3_SWAP_ROUTER: frozenset({ZERO_ADDRESS}),
        RouterKind.UNISWAP_V3_SWAP_ROUTER02: frozenset({ADDRESS_THIS}),
    }
)

# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class DecodeStats:
    """What the decoder saw; ``by_method`` counts decoded top-level calls by method name."""

    decoded: int = 0
    undecoded: int = 0
    malformed: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    last_undecoded: str = ""
    last_malformed: str = ""

    def log_line(self) -> str:
        return (
            f"decoded={self.decoded} undecoded={self.undecoded} malformed={self.malformed}"
            f" last_undecoded={self.last_undecoded!r} last_malformed={self.last_malformed!r}"
        )


def _predicate(addresses: Collection[str] | Callable[[str], bool]) -> Callable[[str], bool]:
    if callable(addresses):
        return addresses
    return frozenset(a.lower() for a in addresses).__contains__


class Decoder:
    """Turns (to, calldata, value) into an :data:`~chain.intents.Intent`, or None.

    ``routers`` maps router addresses to their kind (default: the mainnet Uniswap/Sushi routers);
    ``pairs`` is a set of V2 pair addresses or a predicate, consulted for non-router targets,
    and so is ``feeds`` for price feeds (whose updates decode into
    :class:`~chain.intents.OracleUpdateIntent`).
    """

    def __init__(
        self,
        routers: Mapping[str, RouterKind] = MAINNET_ROUTERS,
        pairs: Collection[str] | Callable[[str], bool] = frozenset(),
        feeds: Collection[str] | Callable[[str], bool] = frozenset(),
    ) -> None:
        self._targets: dict[str, _Target] = {}
        for address, kind in routers.items():
            lowered = address.lower()
            self._targets[lowered] = _Target(
                lowered, METHOD_TABLES[kind], _SELF_SENTINELS[kind] | {lowered}
            )
        self._is_pair = _predicate(pairs)
        self._is_feed = _predicate(feeds)
        self.stats = DecodeStats()

    def decode(self, to: str | None, input: bytes, value: int = 0) -> Intent | None:
        """The intent of a call to ``to`` with calldata ``input`` and ``value`` wei; None (and
        counted in :attr:`stats`) when the target or selector is unknown or the calldata is
        malformed. Never raises."""
        stats = self.stats
        try:
            if to is None:
                raise _Unknown("contract creation")
            address = to.lower()
            target = self._targets.get(address)
            if target is None:
                if self._is_pair(address):
                    target = _Target(address, PAIR_METHODS, frozenset())
                elif self._is_feed(address):
                    target = _Target(address, FEED_METHODS, frozenset())
                else:
                    raise _Unknown(f"unknown target {address}")
            method = _lookup(target, input)
            intent = method.build(target, method.name, value, method.read(input), 0)
        except _Unknown as unknown:
            stats.undecoded += 1
            stats.last_undecoded = unknown.args[0]
            return None
        except MalformedError as malformed:
            stats.malformed += 1
            stats.last_malformed = malformed.reason
            return None
        except Exception as error:
            # Calldata is hostile input: whatever slipped past the checks above must not take the
            # watcher down; the exception's type in the reason makes such a gap visible in logs.
            stats.malformed += 1
            stats.last_malformed = f"{type(error).__name__}: {error}"[:200]
            return None
        stats.decoded += 1
        stats.by_method[method.name] += 1
        return intent

    def decode_tx(self, tx: PendingTx) -> Intent | None:
        return self.decode(tx.to, tx.input, tx.value)
