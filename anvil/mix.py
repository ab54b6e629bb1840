"""The traffic mix: which share of the devnet's swaps goes through which router family.

Kept apart from :mod:`anvil.traffic` so that command lines can parse ``--mix`` without loading
the traffic generator.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# Router kinds by mix family.
FAMILIES = {
    "v2": ("uniswap-v2",),
    "v3": ("uniswap-v3", "uniswap-v3-02"),
    "universal": ("universal-router",),
}


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the swaps by router family: Router02 (``v2``), the V3 SwapRouter and
    SwapRouter02 (``v3``), the Universal Router (``universal``). The bot backruns V2 swaps
    through Router02; the rest is traffic it sees and, until it reads V3, counts as undecoded."""

    v2: float = 0.6
    v3: float = 0.25
    universal: float = 0.15

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``"v2=0.6,v3=0.3,universal=0.1"``; families left out get 0; ValueError, one line."""
        shares: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name.strip() not in FAMILIES:
                raise ValueError(f"unknown family {name.strip()!r}: use v2, v3, universal")
            try:
                shares[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"{name.strip()}={value!r} is not a number") from None
        if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
            raise ValueError("shares must be >= 0 and add up to more than 0")
        return cls(**{name: shares.get(name, 0.0) for name in FAMILIES})

    def __str__(self) -> str:
        return ",".join(f"{name}={getattr(self, name):g}" for name in FAMILIES)


def mix_argument(text: str) -> Mix:
    """argparse ``type=`` for ``--mix``."""
    try:
        return Mix.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


DEFAULT_MIX = Mix()
