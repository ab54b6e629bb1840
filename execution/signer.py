"""Local EIP-1559 signing: the executor key signs type-2 transactions in ~0.1 ms.

The type-2 payload is RLP-encoded here and its keccak digest signed with libsecp256k1
(coincurve), which gives the same bytes as ``eth_account.Account.sign_transaction`` (RFC 6979
deterministic nonces, low-s) at a fraction of its cost: eth-account spends most of its 0.5 ms
validating and normalising a dict. The private key lives only inside a coincurve object: it is
never part of a repr, str, log line or exception message. Keys come from an environment variable
or an encrypted keystore file whose password is in an environment variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import coincurve
from eth_account import Account
from eth_hash.auto import keccak

from chain.types import SignedTx, norm_address

AccessList = Sequence[tuple[str, Sequence[str]]]

_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_TYPE_2 = b"\x02"


class SignerKeyError(ValueError):
    """A key could not be loaded; the message says why and never contains the key."""


def _rlp_length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(length_bytes),)) + length_bytes


def rlp_bytes(item: bytes) -> bytes:
    """RLP of a byte string."""
    if len(item) == 1 and item[0] < 0x80:
        return item
    return _rlp_length_prefix(len(item), 0x80) + item


def rlp_int(value: int) -> bytes:
    """RLP of a non-negative integer (big-endian, no leading zeros; 0 is the empty string)."""
    if value < 0:
        raise ValueError("RLP integers are non-negative")
    if value == 0:
        return b"\x80"
    if value < 0x80:
        return bytes((value,))
    return rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def rlp_list(encoded_items: Sequence[bytes]) -> bytes:
    """RLP of a list whose items are already RLP-encoded."""
    body = b"".join(encoded_items)
    return _rlp_length_prefix(len(body), 0xC0) + body


def _address_bytes(address: str, what: str) -> bytes:
    return bytes.fromhex(norm_address(address, what)[2:])


def _encode_access_list(access_list: AccessList) -> bytes:
    entries = []
    for address, storage_keys in access_list:
        keys = []
        for key in storage_keys:
            raw = bytes.fromhex(key.removeprefix("0x").removeprefix("0X"))
            if len(raw) != 32:
                raise ValueError(f"access list storage key is not 32 bytes: {key!r:.80}")
            keys.append(rlp_bytes(raw))
        entries.append(
            rlp_list((rlp_bytes(_address_bytes(address, "access list")), rlp_list(keys)))
        )
    return rlp_list(entries)


class LocalSigner:
    """Signs EIP-1559 transactions with one private key held in memory."""

    __slots__ = ("_key", "address")

    def __init__(self, private_key: str | bytes) -> None:
        self._key = _private_key(private_key)
        public = self._key.public_key.format(compressed=False)[1:]
        self.address = "0x" + keccak(public)[-20:].hex()

    @classmethod
    def from_env(cls, variable: str, environ: dict[str, str] | None = None) -> LocalSigner:
        """The key in environment variable ``variable`` (hex, with or without ``0x``)."""
        env = os.environ if environ is None else environ
        value = env.get(variable)
        if not value:
            raise SignerKeyError(f"environment variable {variable} is not set or empty")
        try:
            return cls(value.strip())
        except SignerKeyError as error:
            raise SignerKeyError(f"environment variable {variable}: {error}") from None

    @classmethod
    def from_keystore(
        cls, path: str | Path, password_variable: str, environ: dict[str, str] | None = None
    ) -> LocalSigner:
        """Decrypt an eth-account (Web3 Secret Storage) keystore file; the password is read from
        the environment variable ``password_variable``, never taken as a literal argument."""
        env = os.environ if environ is None else environ
        password = env.get(password_variable)
        if password is None:
            raise SignerKeyError(f"environment variable {password_variable} is not set")
        key = decrypt_keystore(path, password)
        return cls(key)

    def __repr__(self) -> str:
        return f"LocalSigner(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("LocalSigner cannot be pickled (it holds a private key)")

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        """(y_parity, r, s) of a 32-byte digest."""
        signature = self._key.sign_recoverable(digest, hasher=None)
        return (
            signature[64],
            int.from_bytes(signature[:32], "big"),
            int.from_bytes(signature[32:64], "big"),
        )

    def sign_eip1559(
        self,
        *,
        chain_id: int,
        nonce: int,
        to: str | None,
        data: bytes,
        value: int,
        gas: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        access_list: AccessList = (),
    ) -> SignedTx:
        """A signed type-2 transaction (``to=None`` creates a contract)."""
        if max_priority_fee_per_gas > max_fee_per_gas:
            raise ValueError("max_priority_fee_per_gas exceeds max_fee_per_gas")
        fields = [
            rlp_int(chain_id),
            rlp_int(nonce),
            rlp_int(max_priority_fee_per_gas),
            rlp_int(max_fee_per_gas),
            rlp_int(gas),
            rlp_bytes(b"" if to is None else _address_bytes(to, "to")),
            rlp_int(value),
            rlp_bytes(data),
            _encode_access_list(access_list),
        ]
        y_parity, r, s = self.sign_digest(keccak(_TYPE_2 + rlp_list(fields)))
        fields += (rlp_int(y_parity), rlp_int(r), rlp_int(s))
        raw = _TYPE_2 + rlp_list(fields)
        return SignedTx(raw=raw, hash="0x" + keccak(raw).hex(), sender=self.address, nonce=nonce)


def decrypt_keystore(path: str | Path, password: str) -> bytes:
    """The private key in an eth-account (Web3 Secret Storage) keystore file; errors say what is
    wrong with the file, never anything of the key or password."""
    try:
        keystore = json.loads(Path(path).read_text())
    except OSError as error:
        raise SignerKeyError(f"keystore {path}: {error.strerror}") from None
    except ValueError:
        raise SignerKeyError(f"keystore {path}: not JSON") from None
    try:
        return bytes(Account.decrypt(keystore, password))
    except ValueError as error:
        # eth-account's messages ("MAC mismatch", missing fields) carry no secret.
        raise SignerKeyError(f"keystore {path}: cannot decrypt: {error}") from None
    except (KeyError, TypeError):
        raise SignerKeyError(f"keystore {path}: not a keystore file") from None


def _private_key(private_key: str | bytes) -> coincurve.PrivateKey:
    if isinstance(private_key, str):
        text = private_key.removeprefix("0x").removeprefix("0X")
        if len(text) != 64:
            raise SignerKeyError(
                f"a private key is 32 bytes (64 hex digits), got {len(text)} digits"
            )
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise SignerKeyError("the private key is not hex") from None
    elif isinstance(private_key, bytes | bytearray):
        secret = bytes(private_key)
        if len(secret) != 32:
            raise SignerKeyError(f"a private key is 32 bytes, got {len(secret)}")
    else:
        raise SignerKeyError(
            f"a private key is hex text or bytes, not {type(private_key).__name__}"
        )
    if not 0 < int.from_bytes(secret, "big") < _SECP256K1_ORDER:
        raise SignerKeyError("the private key is out of the secp256k1 range")
    return coincurve.PrivateKey(secret)
