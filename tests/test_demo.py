"""`mevbot demo` on a fresh devnet ends by itself with landed bundles (some through V3 pools, the
executor starting with no WETH), profit, liquidations on Aave (backruns of the oracle keeper's
transmits and the keeper's own), oracle updates, and MEV-Share backruns with users refunded."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest


@pytest.mark.slow
def test_demo_lands_bundles_liquidates_and_updates_the_oracle(tmp_path):
    summary = tmp_path / "s.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mevbot.cli",
            "demo",
            "--blocks",
            "30",
            "--block-time",
            "0.5",
            "--no-tui",
            "--log-format",
            "json",
            "--summary",
            str(summary),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(summary.read_text())
    assert data["blocks"] >= 30
    assert data["bundles_landed"] >= 1
    venues = data["landed_by_venue"]
    assert venues.get("uniswap-v3", 0) + venues.get("mixed", 0) >= 1, "backruns through V3 pools"
    assert data["realized_profit_wei"] > 0
    # The WBTC borrower the private update breaks is the keeper's; the ETH borrowers are
    # backruns of the oracle keeper's pending transmits, or the keeper's when a backrun misses
    # its block (a loaded machine).
    assert data["keeper_liquidations"] >= 1
    assert data["liquidations"] == data["liquidation_backruns"] + data["keeper_liquidations"] >= 2
    assert data["keeper_oracle_updates"] >= 1
    assert data["oracle_updates"] > data["keeper_oracle_updates"]  # the private one too
    assert data["errors"] == 0, done.stderr[-3000:]
    # Half the swaps go privately to the MEV-Share node: backrun through it, users refunded.
    assert data["mevshare_backruns_landed"] >= 1
    assert data["refunds_paid_wei"] > 0
    assert data["pending_seen"] >= data["decoded"] > 0
    for stage in ("decode", "state", "strategy", "simulate", "sign", "submit", "wire_to_relay"):
        assert data["latency_ms"][stage]["n"] > 0
    # --no-tui --log-format json: one JSON object per line, an event for every verdict, bundle
    # sent and settled (profit in ETH) and keeper action.
    events = [json.loads(line) for line in done.stderr.splitlines()]
    by_kind: dict[str, list[dict]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], []).append(event)
    verdicts = {event["verdict"] for event in by_kind["opportunity"]}
    assert "sent" in verdicts and verdicts <= {"sent", "dropped", "simulated"}
    sent = [e for e in by_kind["opportunity"] if e["verdict"] == "sent"]
    assert len(sent) >= data["bundles_submitted"] and len(by_kind["bundle_sent"]) == len(sent)
    landed = by_kind["bundle_landed"]
    assert len(landed) >= data["bundles_landed"]
    assert all(Decimal(e["profit_eth"]) > 0 and e["included_block"] for e in landed)
    assert all(e["profit_eth"] is None for e in by_kind.get("bundle_missed", []))
    assert {e["job"] for e in by_kind["keeper_action"]} >= {"oracle-keeper"}
