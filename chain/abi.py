"""ABI registry: encode calls, decode results and logs with eth-abi, from artifacts or signatures.

The hot path calls :meth:`Function.encode` / :meth:`Function.decode_output` and
:meth:`AbiRegistry.decode_log` directly: selectors, topic hashes and type lists are computed
once when an ABI is loaded, so a call costs one eth-abi encode or decode and nothing else.
Contract artifacts (compiled from ``anvil/contracts``) live in ``chain/artifacts``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import eth_abi
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from chain.abi_pack import packer
from chain.types import Log, MalformedError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def canonical_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of a JSON ABI parameter (tuples spelled out as ``(t1,t2)``)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


# Compiled once per type list: Function is a frozen value shared by many call sites.
_packer = cache(packer)


@dataclass(frozen=True, slots=True)
class Function:
    """One ABI function: selector, argument and result types."""

    name: str
    signature: str
    selector: bytes
    input_types: tuple[str, ...]
    input_names: tuple[str, ...]
    output_types: tuple[str, ...]

    @classmethod
    def from_abi(cls, entry: Mapping[str, Any]) -> Function:
        inputs = tuple(canonical_type(p) for p in entry.get("inputs", []))
        signature = f"{entry['name']}({','.join(inputs)})"
        return cls(
            name=entry["name"],
            signature=signature,
            selector=keccak(text=signature)[:4],
            input_types=inputs,
            input_names=tuple(p.get("name", "") for p in entry.get("inputs", [])),
            output_types=tuple(canonical_type(p) for p in entry.get("outputs", [])),
        )

    def encode(self, *args: Any) -> bytes:
        """Calldata: selector followed by the ABI-encoded arguments (packed by
        :mod:`chain.abi_pack` when it can, else by eth-abi, which also rejects bad values)."""
        pack = _packer(self.input_types)
        if pack is not None and (words := pack(args)) is not None:
            return self.selector + words
        return self.selector + eth_abi.encode(self.input_types, args)

    def decode_input(self, calldata: bytes) -> tuple[Any, ...]:
        if calldata[:4] != self.selector:
            raise MalformedError(f"{self.name}: selector 0x{calldata[:4].hex()} does not match")
        try:
            return tuple(eth_abi.decode(self.input_types, calldata[4:]))
        except (DecodingError, ValueError, OverflowError) as error:
            raise MalformedError(f"{self.name}: bad calldata: {error}") from None

    def decode_output(self, data: bytes) -> tuple[Any, ...]:
        try:
            return tuple(eth_abi.decode(self.output_types, data))
        except (DecodingError, ValueError, OverflowError) as error:
            raise MalformedError(f"{self.name}: bad return data: {error}") from None


@dataclass(frozen=True, slots=True)
class Event:
    """One ABI event: topic0 and how to split topics and data back into named fields."""

    name: str
    signature: str
    topic0: bytes
    names: tuple[str, ...]
    indexed: tuple[bool, ...]
    types: tuple[str, ...]
    data_types: tuple[str, ...]

    @classmethod
    def from_abi(cls, entry: Mapping[str, Any]) -> Event:
        params = entry.get("inputs", [])
        types = tuple(canonical_type(p) for p in params)
        signature = f"{entry['name']}({','.join(types)})"
        indexed = tuple(bool(p.get("indexed")) for p in params)
        return cls(
            name=entry["name"],
            signature=signature,
            topic0=keccak(text=signature),
            names=tuple(p.get("name", "") for p in params),
            indexed=indexed,
            types=types,
            data_types=tuple(t for t, ix in zip(types, indexed, strict=True) if not ix),
        )

    def decode(self, log: Log) -> dict[str, Any]:
        """Field values by name; :class:`MalformedError` when the log does not fit the event."""
        if log.topic0 != self.topic0:
            raise MalformedError(f"{self.name}: topic0 does not match")
        if len(log.topics) != 1 + sum(self.indexed):
            raise MalformedError(f"{self.name}: expected {1 + sum(self.indexed)} topics")
        try:
            data_values = iter(eth_abi.decode(self.data_types, log.data))
            topics = iter(log.topics[1:])
            values: dict[str, Any] = {}
            for name, kind, is_indexed in zip(self.names, self.types, self.indexed, strict=True):
                if is_indexed:
                    topic = next(topics)
                    # Dynamic indexed values are stored as their hash; keep the hash.
                    dynamic = kind in ("string", "bytes") or kind.endswith("]") or "(" in kind
                    values[name] = topic if dynamic else eth_abi.decode([kind], topic)[0]
                else:
                    values[name] = next(data_values)
            return values
        except (DecodingError, ValueError, OverflowError) as error:
            raise MalformedError(f"{self.name}: bad log data: {error}") from None


class Abi:
    """A contract's ABI: functions and events by name (overloads by full signature)."""

    def __init__(self, entries: Iterable[Mapping[str, Any]]) -> None:
        self.entries = list(entries)
        self.functions: dict[str, Function] = {}
        self.events: dict[str, Event] = {}
        overloaded: set[str] = set()
        for entry in self.entries:
            if entry.get("type") == "function":
                function = Function.from_abi(entry)
                self.functions[function.signature] = function
                if function.name in self.functions and function.name not in overloaded:
                    overloaded.add(function.name)
                    del self.functions[function.name]
                elif function.name not in overloaded:
                    self.functions[function.name] = function
            elif entry.get("type") == "event":
                event = Event.from_abi(entry)
                self.events[event.name] = event
        self.by_selector = {f.selector: f for f in self.functions.values()}

    @classmethod
    def from_signatures(cls, *signatures: str) -> Abi:
        """Build from human-readable signatures: ``"function f(uint256) returns (address)"`` or
        ``"event E(address indexed a, uint256 b)"`` (names optional; tuples not supported)."""
        return cls(_parse_signature(s) for s in signatures)

    def function(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(
                f"no function {name!r} (or it is overloaded: use its signature)"
            ) from None

    def event(self, name: str) -> Event:
        return self.events[name]


def _parse_params(text: str, allow_indexed: bool) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        param: dict[str, Any] = {"type": words[0], "name": ""}
        rest = words[1:]
        if allow_indexed and rest and rest[0] == "indexed":
            param["indexed"] = True
            rest = rest[1:]
        if rest:
            param["name"] = rest[0]
        params.append(param)
    return params


def _parse_signature(signature: str) -> dict[str, Any]:
    kind, _, rest = signature.strip().partition(" ")
    if kind not in ("function", "event"):
        raise ValueError(f"signature must start with 'function' or 'event': {signature!r}")
    name, _, rest = rest.partition("(")
    inputs, _, tail = rest.partition(")")
    entry: dict[str, Any] = {
        "type": kind,
        "name": name.strip(),
        "inputs": _parse_params(inputs, allow_indexed=kind == "event"),
    }
    if kind == "function":
        _, _, outputs = tail.partition("returns")
        outputs = outputs.strip().removeprefix("(").removesuffix(")")
        entry["outputs"] = _parse_params(outputs, allow_indexed=False)
    return entry


@dataclass(frozen=True, slots=True)
class Artifact:
    """A compiled contract: its ABI and creation bytecode."""

    name: str
    abi: Abi
    bytecode: bytes
    deployed_bytecode: bytes


@cache
def load_artifact(name: str) -> Artifact:
    """Load ``chain/artifacts/<name>.json`` (built by ``make contracts``)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no artifact {name!r} in {ARTIFACTS_DIR}: run `make contracts`")
    data = json.loads(path.read_text())
    return Artifact(
        name=name,
        abi=Abi(data["abi"]),
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
    )


@dataclass(frozen=True, slots=True)
class DecodedLog:
    """A log matched to an event of the registry."""

    event: str
    address: str
    values: dict[str, Any]
    log: Log


class AbiRegistry:
    """Events of several ABIs indexed by topic0, for decoding logs from any watched contract."""

    def __init__(self, abis: Iterable[Abi] = ()) -> None:
        self.events_by_topic: dict[bytes, Event] = {}
        for abi in abis:
            self.add(abi)

    def add(self, abi: Abi) -> None:
        for event in abi.events.values():
            self.events_by_topic.setdefault(event.topic0, event)

    def decode_log(self, log: Log) -> DecodedLog | None:
        """The decoded log, or None for an unknown topic0; malformed data raises MalformedError."""
        event = self.events_by_topic.get(log.topic0)
        if event is None:
            return None
        return DecodedLog(event.name, log.address, event.decode(log), log)
