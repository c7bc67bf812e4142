"""The bank's local key-encryption key: AES-256-GCM over the bank's own secrets.

It wraps secrets the bank must keep but must not store in clear next to the data (the private
halves of token-signing keys). The key comes from BANK_MASTER_KEY (production: a Secret or an
HSM-backed provider once the vault lands) or from a 0600 key file created on first start.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bank.settings import Settings

_KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"


class KeyringError(Exception):
    """The key is missing, malformed, or a sealed value does not open under it."""


class LocalKeyring:
    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise KeyringError("the master key must be exactly 32 bytes")
        self._key = key
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "LocalKeyring(***)"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalKeyring:
        if settings.master_key is not None:
            try:
                key = base64.b64decode(settings.master_key.get_secret_value(), validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError("BANK_MASTER_KEY is not valid base64") from None
            return cls(key)
        return cls(_load_or_create(settings.data_dir / "keys" / "master.key"))

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (blind index, code pepper), independent of the others."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
            self._key
        )

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and bind to `aad` (what the secret is), so sealed values cannot be swapped."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, *, aad: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise KeyringError("not a sealed value of this keyring")
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except Exception:  # noqa: BLE001 - InvalidTag and friends: one answer, no detail
            raise KeyringError("sealed value does not open under this key") from None


def _load_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # Write a complete temporary file, then link it into place: link fails if the name
        # exists, so when several processes start at once exactly one key wins and nobody
        # ever reads a half-written file.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(_KEY_BYTES))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_bytes()
    if len(key) != _KEY_BYTES:
        raise KeyringError(f"{path} is not a 32-byte key file")
    return key
