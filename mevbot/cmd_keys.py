"""``mevbot keys new | import | address``: the bot's encrypted keystores (executor, searcher,
keeper).

The password comes from ``MEVBOT_KEYSTORE_PASSWORD`` or, in a terminal, a hidden prompt asked
twice. ``import`` reads the private key from a hidden prompt, or from standard input when that is
not a terminal (``mevbot keys import executor < key.txt``). Nothing prints a key: only the
address and the file, and the config line that points the bot at it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

PASSWORD_ENV = "MEVBOT_KEYSTORE_PASSWORD"
ROLES = ("executor", "searcher", "keeper")


class _KeysError(Exception):
    """A problem with what the user gave; one line, exit 2."""


def _fail(message: str) -> int:
    print(f"mevbot keys: {message}", file=sys.stderr)
    return 2


def default_path(role: str) -> Path:
    """Where ``keys new ROLE`` writes by default (the searcher's is the config's default)."""
    return Path(f"mevbot-{role}-keystore.json")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _password(confirm: bool) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        if not password:
            raise _KeysError(f"{PASSWORD_ENV} is empty; give the keystore a password")
        return password
    if not _interactive():
        raise _KeysError(f"set {PASSWORD_ENV} (no terminal to ask the password in)")
    password = getpass.getpass("keystore password: ")
    if not password:
        raise _KeysError("an empty password does not protect the key")
    if confirm and getpass.getpass("the same password again: ") != password:
        raise _KeysError("the two passwords differ; nothing written")
    return password


def _private_key() -> bytes:
    from execution.signer import LocalSigner, SignerKeyError

    text = getpass.getpass("private key (hidden): ") if _interactive() else sys.stdin.readline()
    try:
        LocalSigner(text.strip())  # the same checks and messages as every key the bot reads
    except SignerKeyError as error:
        raise _KeysError(f"import: {error}") from None
    return bytes.fromhex(text.strip().removeprefix("0x").removeprefix("0X"))


def _config_line(role: str, path: Path) -> str:
    return f'[keys] {role}_keystore = "{path}"'


def _write(role: str, path: Path, key: bytes | None) -> int:
    from eth_account import Account

    from execution.identity import keystore_address, save_keystore
    from execution.signer import SignerKeyError

    if path.exists():
        return _fail(f"{path} exists; it is never overwritten (choose another --out)")
    try:
        password = _password(confirm=True)
        secret = Account.create().key if key is None else key
        save_keystore(path, secret, password)
    except (_KeysError, SignerKeyError) as error:
        return _fail(str(error))
    print(f"{role} key {keystore_address(path)} written to {path} (encrypted); back the file up")
    print(f"point the bot at it: {_config_line(role, path)}, password in {PASSWORD_ENV}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    return _write(args.role, args.out or default_path(args.role), None)


def cmd_import(args: argparse.Namespace) -> int:
    try:
        key = _private_key()
    except _KeysError as error:
        return _fail(str(error))
    return _write(args.role, args.out or default_path(args.role), key)


def cmd_address(args: argparse.Namespace) -> int:
    from execution.identity import keystore_address

    address = keystore_address(args.keystore)
    if address is None:
        return _fail(f"{args.keystore} is not a readable keystore file")
    print(address)
    return 0


def register(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="create, import or show the bot's encrypted keystores",
        description=(
            "Encrypted keystores (Web3 Secret Storage, file mode 0600) for the executor owner, "
            "the searcher (relay signing) and the keeper key. The password comes from "
            f"{PASSWORD_ENV} or a hidden prompt; keys are never printed. A file that exists is "
            "never overwritten."
        ),
    )
    verbs = keys.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, handler, what in (
        ("new", cmd_new, "create a keystore holding a fresh key"),
        (
            "import",
            cmd_import,
            "encrypt an existing key (hidden prompt, or one line on standard input)",
        ),
    ):
        parser = verbs.add_parser(verb, help=what, description=what)
        parser.add_argument("role", choices=ROLES, help="whose key it is")
        parser.add_argument(
            "--out", type=Path, help="the keystore file (default: mevbot-ROLE-keystore.json)"
        )
        parser.set_defaults(handler=handler)
    address = verbs.add_parser("address", help="the address a keystore holds (no password needed)")
    address.add_argument("keystore", type=Path, help="the keystore file")
    address.set_defaults(handler=cmd_address)
