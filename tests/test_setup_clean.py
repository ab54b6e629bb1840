"""`make setup` leaves a fresh clone's tracked files as they were: npm, asked to install what the
committed lock pins, writes back exactly the committed lock (it used to add other platforms'
optional anvil packages to it, so `git status` showed a change after setup)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NPM_FILES = ("package.json", "package-lock.json", ".npmrc")


def test_npm_install_writes_back_the_committed_lock_unchanged(tmp_path: Path) -> None:
    for name in NPM_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    done = subprocess.run(
        ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    written = (tmp_path / "package-lock.json").read_bytes()
    assert written == (ROOT / "package-lock.json").read_bytes(), "npm rewrote the lock"
