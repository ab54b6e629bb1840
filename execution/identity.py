"""The searcher identity: the relay-signing key, kept in an encrypted keystore created once.

Builders pay refunds to the address that signs the X-Flashbots-Signature header (flashbots-docs
advanced/gas-fee-refunds.md: "the refund recipient is the signer used on the eth_sendBundle ...
request") and relays keep reputation per signing address, so the key must be the same in every
run: a random key per run would scatter refunds over addresses nobody tracks. :func:`load_or_create`
opens the keystore, or creates it when there is none: a fresh key, eth-account's Web3 Secret
Storage encryption, file mode 0600, written to a temporary file and linked into place (an
existing file is never replaced).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.types import MalformedError, norm_address
from execution.signer import SignerKeyError, decrypt_keystore


@dataclass(frozen=True, slots=True)
class SearcherIdentity:
    """The searcher key and where it lives; ``created`` when this call made the keystore."""

    account: LocalAccount
    path: Path
    created: bool

    @property
    def address(self) -> str:
        return self.account.address.lower()

    def __repr__(self) -> str:
        return f"SearcherIdentity(address={self.address}, path={self.path}, created={self.created})"


def keystore_address(path: Path) -> str | None:
    """The address a keystore file names in clear (no password needed), or None when there is
    no readable keystore there."""
    try:
        data = json.loads(path.read_text())
        return norm_address("0x" + str(data["address"]).removeprefix("0x"), "keystore address")
    except (OSError, ValueError, KeyError, TypeError, MalformedError):
        return None


def load_or_create(path: Path, password: str) -> SearcherIdentity:
    """The identity in the keystore at ``path``; a new one, saved there, when the file is absent."""
    if path.exists():
        return SearcherIdentity(Account.from_key(decrypt_keystore(path, password)), path, False)
    account = Account.create()
    save_keystore(path, account.key, password)
    return SearcherIdentity(account, path, True)


def save_keystore(path: Path, key: bytes, password: str) -> None:
    """Encrypt ``key`` into a new keystore file at ``path`` (mode 0600, written to a temporary
    file and linked into place); an existing file is never replaced."""
    keystore = Account.encrypt(key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(keystore, file)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        raise SignerKeyError(f"keystore {path}: the file exists; it is never overwritten") from None
    except OSError as error:
        raise SignerKeyError(f"keystore {path}: cannot create it: {error.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)
