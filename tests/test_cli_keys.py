"""`mevbot keys new | import | address` as a user runs them: encrypted keystores the bot then
opens, the password from the environment, never a key in the output, never a file overwritten."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from eth_account import Account

from mevbot.config import load_config
from mevbot.resolve import resolve_keys

CLI = [sys.executable, "-m", "mevbot.cli"]
PASSWORD = "correct horse battery staple"
KEY = "0x" + "4f" * 32


def _keys(*args: str, stdin: str = "", password: str | None = PASSWORD, cwd: Path | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEVBOT_")}
    if password is not None:
        env["MEVBOT_KEYSTORE_PASSWORD"] = password
    return subprocess.run(
        [*CLI, "keys", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


def test_new_writes_an_encrypted_keystore_the_bot_opens(tmp_path):
    done = _keys("new", "executor", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "mevbot-executor-keystore.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = _keys("address", str(path))
    address = shown.stdout.strip()
    assert shown.returncode == 0 and address.startswith("0x") and len(address) == 42
    assert f"executor key {address} written to mevbot-executor-keystore.json" in done.stdout
    assert '[keys] executor_keystore = "mevbot-executor-keystore.json"' in done.stdout
    searcher = tmp_path / "searcher.json"
    assert _keys("new", "searcher", "--out", str(searcher)).returncode == 0
    config = tmp_path / "sepolia.toml"
    config.write_text(
        f'network = "sepolia"\n[keys]\nexecutor_keystore = "{path}"\n'
        f'searcher_keystore = "{searcher}"\n'
    )
    keys = resolve_keys(
        load_config(config, environ={}), environ={"MEVBOT_KEYSTORE_PASSWORD": PASSWORD}
    )
    assert keys.executor.address == address
    assert keys.searcher.address.lower() == _keys("address", str(searcher)).stdout.strip()


def test_import_encrypts_the_given_key_and_never_prints_it(tmp_path):
    out = tmp_path / "keeper.json"
    done = _keys("import", "keeper", "--out", str(out), stdin=KEY + "\n")
    expected = Account.from_key(KEY).address.lower()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"keeper key {expected} written to {out} (encrypted)")
    assert KEY[2:] not in done.stdout + done.stderr + out.read_text()
    config = tmp_path / "sepolia.toml"
    config.write_text(f'network = "sepolia"\n[keys]\nkeeper_keystore = "{out}"\n')
    environ = {"MEVBOT_KEYSTORE_PASSWORD": PASSWORD, "MEVBOT_EXECUTOR_KEY": "0x" + "11" * 32}
    environ["MEVBOT_SEARCHER_KEY"] = "0x" + "22" * 32
    keys = resolve_keys(load_config(config, environ={}), environ=environ)
    assert keys.keeper is not None and keys.keeper.address == expected


def test_mistakes_are_one_line_and_exit_2(tmp_path):
    out = tmp_path / "executor.json"
    assert _keys("new", "executor", "--out", str(out)).returncode == 0
    before = out.read_text()
    again = _keys("new", "executor", "--out", str(out))
    assert (again.returncode, again.stderr) == (
        2,
        f"mevbot keys: {out} exists; it is never overwritten (choose another --out)\n",
    )
    assert out.read_text() == before
    bad = _keys("import", "executor", "--out", str(tmp_path / "x.json"), stdin="0x1234\n")
    assert bad.returncode == 2
    assert bad.stderr == (
        "mevbot keys: import: a private key is 32 bytes (64 hex digits), got 4 digits\n"
    )
    nopass = _keys("new", "keeper", "--out", str(tmp_path / "k.json"), password=None)
    assert nopass.returncode == 2
    assert nopass.stderr == (
        "mevbot keys: set MEVBOT_KEYSTORE_PASSWORD (no terminal to ask the password in)\n"
    )
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "k.json").exists()
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    shown = _keys("address", str(junk))
    assert (shown.returncode, shown.stderr) == (
        2,
        f"mevbot keys: {junk} is not a readable keystore file\n",
    )
