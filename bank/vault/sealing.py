"""How a record is sealed: AES-256-GCM under the resident's data key, bound to where it belongs.

Layout: format byte, data-key version (4 bytes), 96-bit random nonce, ciphertext and tag. The
associated data names the resident, the record kind, the record's natural key and the payload's
schema version, so a ciphertext copied to another row, kind or resident does not open.
"""

from __future__ import annotations

import secrets
import struct
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bank.vault.keystore import SealingKey

_FORMAT = b"\x01"
_HEADER = struct.Struct(">cI")
_NONCE_BYTES = 12


class RecordDoesNotOpen(Exception):
    """Tampered, moved to another row, or sealed under a key that no longer exists."""


def record_aad(resident_id: uuid.UUID, kind: str, natural_key: str, schema_version: int) -> bytes:
    return f"{resident_id}|{kind}|{natural_key}|v{schema_version}".encode()


def seal(key: SealingKey, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _HEADER.pack(_FORMAT, key.version) + nonce + key.aead.encrypt(nonce, plaintext, aad)


def open_sealed(keys: dict[int, AESGCM], sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < _HEADER.size + _NONCE_BYTES + 16:
        raise RecordDoesNotOpen("not a sealed record")
    form, version = _HEADER.unpack_from(sealed)
    aead = keys.get(version)
    if form != _FORMAT or aead is None:
        raise RecordDoesNotOpen("no key for this record")
    nonce = sealed[_HEADER.size : _HEADER.size + _NONCE_BYTES]
    try:
        return aead.decrypt(nonce, sealed[_HEADER.size + _NONCE_BYTES :], aad)
    except InvalidTag:
        raise RecordDoesNotOpen("the record does not open here") from None
