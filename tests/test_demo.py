"""`mevbot demo` on a fresh devnet ends by itself with landed bundles, profit, liquidations."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert data["realized_profit_wei"] > 0
    assert data["liquidations"] >= 1
    assert data["oracle_updates"] >= 1
    assert data["errors"] == 0, done.stderr[-3000:]
    assert data["pending_seen"] >= data["decoded"] > 0
    for stage in ("decode", "state", "strategy", "simulate", "sign", "submit", "wire_to_relay"):
        assert data["latency_ms"][stage]["n"] > 0
    assert "kind=log" in done.stderr, "--no-tui prints structured log lines"
