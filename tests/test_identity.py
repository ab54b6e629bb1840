"""The searcher identity: created once in an encrypted keystore, the same key in every run, a
warning when the signing key is not the keystore's, a clear error when neither is available."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from eth_account import Account

from execution.identity import keystore_address, load_or_create
from execution.signer import SignerKeyError
from mevbot.config import ConfigError, load_config
from mevbot.resolve import resolve_keys

EXECUTOR_KEY = "0x" + "4f" * 32
PASSWORD = "correct horse battery staple"


def test_the_keystore_is_created_once_and_opened_after(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "searcher.json"
    first = load_or_create(path, PASSWORD)
    assert first.created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore_address(path) == first.address
    again = load_or_create(path, PASSWORD)
    assert (again.created, again.address) == (False, first.address)
    assert first.account.key.hex() not in path.read_text() + repr(first)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(SignerKeyError, match="cannot decrypt"):
        load_or_create(path, "wrong")


def _config(tmp_path: Path, keystore: Path):
    config = tmp_path / "sepolia.toml"
    config.write_text(f'network = "sepolia"\n[keys]\nsearcher_keystore = "{keystore}"\n')
    return load_config(config, environ={})


def test_without_a_searcher_key_the_keystore_identity_is_used_every_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keystore = tmp_path / "searcher.json"
    config = _config(tmp_path, keystore)
    environ = {"MEVBOT_EXECUTOR_KEY": EXECUTOR_KEY, "MEVBOT_KEYSTORE_PASSWORD": PASSWORD}
    with caplog.at_level(logging.WARNING, logger="mevbot.resolve"):
        first = resolve_keys(config, environ=environ)
        second = resolve_keys(config, environ=environ)
    assert first.searcher.address == second.searcher.address
    created = [r.getMessage() for r in caplog.records]
    assert created == [
        f"created the searcher identity {first.searcher.address.lower()} in {keystore}: "
        "builders pay refunds to it, back the file up"
    ]


def test_a_searcher_key_other_than_the_keystores_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keystore = tmp_path / "searcher.json"
    kept = load_or_create(keystore, PASSWORD).address
    other = Account.create()
    environ = {"MEVBOT_EXECUTOR_KEY": EXECUTOR_KEY, "MEVBOT_SEARCHER_KEY": other.key.hex()}
    with caplog.at_level(logging.WARNING, logger="mevbot.resolve"):
        keys = resolve_keys(_config(tmp_path, keystore), environ=environ)
    assert keys.searcher.address == other.address
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"searcher identity changed: {other.address.lower()} signs")
    assert f"refunds for {kept} keep going there" in warning
    assert other.key.hex() not in warning


def test_no_searcher_key_and_no_password_is_one_clear_error(tmp_path: Path) -> None:
    keystore = tmp_path / "searcher.json"
    with pytest.raises(ConfigError) as caught:
        resolve_keys(_config(tmp_path, keystore), environ={"MEVBOT_EXECUTOR_KEY": EXECUTOR_KEY})
    assert str(caught.value) == (
        "keys: set MEVBOT_SEARCHER_KEY, or MEVBOT_KEYSTORE_PASSWORD to open (or create once) "
        f"the searcher keystore {keystore}"
    )
    assert not keystore.exists()
