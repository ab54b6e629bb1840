"""The ``X-Flashbots-Signature`` header: create it for a request body and verify it.

A header is ``<checksum address>:0x<r||s||v hex>`` where the signature is EIP-191 ``personal_sign``
over the 66 ASCII characters ``"0x" + keccak256(body).hex()`` (not over the 32 raw bytes). The
checks in :func:`verify_flashbots_signature` are those of flashbots/go-utils ``signature.Verify``:
separator present, ``0x``-prefixed hex, 65 bytes, v in {0, 1, 27, 28}, canonical (low-s)
signature, recovered address equal to the header's address ignoring case.

Signing goes straight to libsecp256k1 through coincurve (about 4x faster than eth-account's
``sign_message``, which wraps the same library); both give identical RFC 6979 signatures.
"""

from __future__ import annotations

import coincurve
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

HEADER = "X-Flashbots-Signature"

_EIP191_PREFIX_66 = b"\x19Ethereum Signed Message:\n66"
_SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class SignatureError(ValueError):
    """A header that does not prove the named address signed the body; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid flashbots signature: {reason}")
        self.reason = reason


def _signed_digest(body: bytes) -> bytes:
    """The EIP-191 digest of the text ``0x<keccak(body) hex>`` (what relays recover against)."""
    return keccak(_EIP191_PREFIX_66 + b"0x" + keccak(body).hex().encode("ascii"))


class FlashbotsSigner:
    """Signs request bodies with one searcher key, prepared once so each signature is cheap.

    The key never appears in ``repr``/``str``: only the address does.
    """

    __slots__ = ("_key", "address")

    def __init__(self, account: LocalAccount) -> None:
        self._key = coincurve.PrivateKey(bytes(account.key))
        self.address: str = to_checksum_address(account.address)

    def sign(self, body: bytes) -> str:
        """The header value for exactly these body bytes."""
        signature = self._key.sign_recoverable(_signed_digest(body), hasher=None)
        # v as 27/28, as go-utils Signer, ethers, cast and MetaMask emit it.
        return f"{self.address}:0x{signature[:64].hex()}{signature[64] + 27:02x}"

    def __repr__(self) -> str:
        return f"FlashbotsSigner(address={self.address})"


def flashbots_signature(body: bytes, account: LocalAccount | FlashbotsSigner) -> str:
    """The header value for ``body`` (reuse a :class:`FlashbotsSigner` on hot paths)."""
    signer = account if isinstance(account, FlashbotsSigner) else FlashbotsSigner(account)
    return signer.sign(body)


def verify_flashbots_signature(body: bytes, header: str) -> str:
    """The lowercase address that signed ``body``, or :class:`SignatureError` saying why not."""
    if not header:
        raise SignatureError("no signature provided")
    claimed, separator, signature_hex = header.partition(":")
    if not separator:
        raise SignatureError("missing separator")
    if not signature_hex.startswith(("0x", "0X")):
        raise SignatureError("signature is not 0x-prefixed hex")
    try:
        signature = bytearray(bytes.fromhex(signature_hex[2:]))
    except ValueError:
        raise SignatureError("signature is not hex") from None
    if len(signature) != 65:
        raise SignatureError(f"signature is {len(signature)} bytes, expected 65")
    if signature[64] >= 27:
        signature[64] -= 27
    if signature[64] > 1:
        raise SignatureError("invalid recovery id")
    if int.from_bytes(signature[32:64], "big") > _SECP256K1_HALF_ORDER:
        raise SignatureError("non-canonical signature (high s)")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            bytes(signature), _signed_digest(body), hasher=None
        )
    except ValueError:
        raise SignatureError("signature does not recover a public key") from None
    recovered = "0x" + keccak(public_key.format(compressed=False)[1:])[-20:].hex()
    if recovered != claimed.lower():
        raise SignatureError("signing address mismatch")
    return recovered
