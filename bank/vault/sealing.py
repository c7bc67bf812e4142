"""How a record is sealed: AES-256-GCM under the resident's data key, bound to where it belongs.

Layout: format byte, data-key version (4 bytes), 96-bit random nonce, ciphertext and tag. The
associated data names the resident, the record kind, the record's natural key and the payload's
schema version, so a ciphertext copied to another row, kind or resident does not open.
"""

from __future__ import annotations

import os
import secrets
import struct
import uuid
from collections.abc import Iterable, Sequence

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


def record_aads(
    resident_id: uuid.UUID, kind: str, natural_keys: Iterable[str], schema_version: int
) -> list[bytes]:
    """`record_aad` of each natural key, for a batch of one resident's records of one kind."""
    prefix, suffix = f"{resident_id}|{kind}|", f"|v{schema_version}"
    return [f"{prefix}{natural_key}{suffix}".encode() for natural_key in natural_keys]


def seal(key: SealingKey, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _HEADER.pack(_FORMAT, key.version) + nonce + key.aead.encrypt(nonce, plaintext, aad)


def seal_many(key: SealingKey, plaintexts: Sequence[bytes], aads: Sequence[bytes]) -> list[bytes]:
    """`seal` of each plaintext with its associated data: the same layout, a fresh random nonce
    each, all nonces drawn from the OS in one read (a batch of a year seals 365 records)."""
    if len(plaintexts) != len(aads):
        raise ValueError("seal_many needs one associated data per plaintext")
    header = _HEADER.pack(_FORMAT, key.version)
    nonces = os.urandom(_NONCE_BYTES * len(plaintexts))
    encrypt = key.aead.encrypt
    sealed: list[bytes] = []
    for start, plaintext, aad in zip(
        range(0, len(nonces), _NONCE_BYTES), plaintexts, aads, strict=True
    ):
        nonce = nonces[start : start + _NONCE_BYTES]
        sealed.append(header + nonce + encrypt(nonce, plaintext, aad))
    return sealed


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
