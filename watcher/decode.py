"""Decode pending router and pair calls into typed intents (:mod:`chain.intents`), fast, safely.

:class:`Decoder` knows routers by address (:class:`RouterKind`) and V2 pairs by a set or a
predicate. ``decode`` never raises: unknown targets and selectors return None and count as
*undecoded*; calldata that does not fit the method's ABI returns None and counts as *malformed*;
:class:`DecodeStats` keeps the counts and the last reason of each kind for a log line.

Calldata is read by :mod:`watcher.abi_reader`, compiled once per method from its signature: strict
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
from watcher import decode_universal, decode_v2, decode_v3
from watcher.abi_reader import compile_arguments
from watcher.decode_feeds import FEED_ROWS
from watcher.decode_v2 import Build, Row


class RouterKind(enum.Enum):
    """Which ABI a router address speaks (forks of a router share its kind)."""

    UNISWAP_V2_ROUTER = "uniswap-v2-router"
    UNISWAP_V3_SWAP_ROUTER = "uniswap-v3-swap-router"
    UNISWAP_V3_SWAP_ROUTER02 = "uniswap-v3-swap-router02"
    # The Universal Router's deployed versions (see watcher.decode_universal).
    UNIVERSAL_ROUTER_V1 = "universal-router-v1"
    UNIVERSAL_ROUTER_V1_2 = "universal-router-v1.2"
    UNIVERSAL_ROUTER_V2 = "universal-router-v2"
    UNIVERSAL_ROUTER_V2_1 = "universal-router-v2.1"
    UNIVERSAL_ROUTER_V2_1_1 = "universal-router-v2.1.1"


MAINNET_ROUTERS: Mapping[str, RouterKind] = MappingProxyType(
    {
        "0x7a250d5630b4cf539739df2c5dacb4c659f2488d": RouterKind.UNISWAP_V2_ROUTER,  # Uniswap V2
        "0xd9e1ce17f2641f24ae83637ab66a2cca9c378b9f": RouterKind.UNISWAP_V2_ROUTER,  # SushiSwap
        "0xe592427a0aece92de3edee1f18e0157c05861564": RouterKind.UNISWAP_V3_SWAP_ROUTER,
        "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45": RouterKind.UNISWAP_V3_SWAP_ROUTER02,
        # universal-router deploy-addresses/mainnet.json: UniversalRouterV1, ..V1_2_V2Support,
        # ..V2 and ..V2_1_1.
        "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b": RouterKind.UNIVERSAL_ROUTER_V1,
        "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad": RouterKind.UNIVERSAL_ROUTER_V1_2,
        "0x66a9893cc07d91d95644aedd05d03f95e1dba8af": RouterKind.UNIVERSAL_ROUTER_V2,
        "0x4c82d1fbfe28c977cbb58d8c7ff8fcf9f70a2cca": RouterKind.UNIVERSAL_ROUTER_V2_1_1,
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
            bytes.fromhex(selector): _Method(sig.split("(")[0], sig, compile_arguments(sig), build)
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
        **{
            kind: _method_table(decode_universal.rows(version))
            for kind, version in (
                (RouterKind.UNIVERSAL_ROUTER_V1, decode_universal.V1),
                (RouterKind.UNIVERSAL_ROUTER_V1_2, decode_universal.V1_2),
                (RouterKind.UNIVERSAL_ROUTER_V2, decode_universal.V2),
                (RouterKind.UNIVERSAL_ROUTER_V2_1, decode_universal.V2_1),
                (RouterKind.UNIVERSAL_ROUTER_V2_1_1, decode_universal.V2_1_1),
            )
        },
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
        # The Universal Router marks its own swaps' eth_out itself (decode_universal).
        **{kind: frozenset() for kind in RouterKind if kind.value.startswith("universal-router")},
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
