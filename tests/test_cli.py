"""The command line itself: ``mevbot --version`` and the logging options of ``run`` and ``demo``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

CLI = [sys.executable, "-m", "mevbot.cli"]
ROOT = Path(__file__).resolve().parent.parent


def test_version_prints_the_package_version():
    done = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=False)
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (done.returncode, done.stdout, done.stderr) == (0, f"mevbot {expected}\n", "")


def test_the_long_running_commands_take_the_log_options_and_refuse_unknown_values():
    for command in ("run", "demo"):
        done = subprocess.run(
            [*CLI, command, "--help"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, command
        assert "--log-level {debug,info,warning,error}" in done.stdout, command
        assert "--log-format {logfmt,json}" in done.stdout, command
    done = subprocess.run(
        [*CLI, "run", "--config", "x.toml", "--log-level", "loud"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --log-level: invalid choice: 'loud'" in done.stderr
