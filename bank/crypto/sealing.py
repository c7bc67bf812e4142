"""How a value is sealed: AES-256-GCM under its owner's data key, bound to where it belongs.

Layout: format byte, data-key version (4 bytes), 96-bit random nonce, ciphertext and tag.

The associated data is built here and nowhere else: it names the owner (a resident), the kind of
value, its natural key, its payload's schema version and its revision. So a ciphertext copied to
another row, kind or resident does not open, and neither does an older revision's ciphertext
copied into the current row (the row's revision is not the one it was sealed for).

Format 1 (sealed before revisions were bound) left the revision out. Such a value still opens,
but only in a row at revision 1: there is no older revision a revision-1 row could be a copy of.
A format-1 value in a row at a later revision is refused; `bank vault reseal` reseals format-1
values under format 2 (docs/vault.md, "Sealed format").
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_UNBOUND_REVISION = 1
FORMAT = 2
_HEADER = struct.Struct(">BI")
_NONCE_BYTES = 12
_TAG_BYTES = 16

# Every version of an owner's data key, unwrapped, by version (what opens their values).
OpeningKeys = Mapping[int, AESGCM]


class RecordDoesNotOpen(Exception):
    """Tampered, moved to another row, an older revision, or sealed under a key that is gone."""


@dataclass(frozen=True)
class SealingKey:
    """The owner's current data key: the version written into each value's header."""

    version: int
    aead: AESGCM

    def __repr__(self) -> str:
        return f"SealingKey(version={self.version}, ***)"


class Binding:
    """Where an owner's values of one kind belong; a value's natural key and revision complete
    its associated data. One binding serves a whole batch, so the common prefix is built once."""

    __slots__ = ("_prefix", "_unbound_suffix", "kind", "owner", "schema_version")

    def __init__(self, owner: uuid.UUID, kind: str, schema_version: int) -> None:
        self.owner = owner
        self.kind = kind
        self.schema_version = schema_version
        self._prefix = f"{owner}|{kind}|"
        self._unbound_suffix = f"|v{schema_version}"

    def associated_data(self, natural_key: str, revision: int) -> bytes:
        return f"{self._prefix}{natural_key}{self._unbound_suffix}|r{revision}".encode()

    def _unbound_revision_data(self, natural_key: str) -> bytes:
        """Format 1's associated data: the same, without the revision."""
        return f"{self._prefix}{natural_key}{self._unbound_suffix}".encode()


def seal(
    key: SealingKey, binding: Binding, natural_key: str, revision: int, plaintext: bytes
) -> bytes:
    return seal_many(key, binding, [(natural_key, revision, plaintext)])[0]


def seal_many(
    key: SealingKey, binding: Binding, values: Sequence[tuple[str, int, bytes]]
) -> list[bytes]:
    """Seal each (natural key, revision, plaintext): a fresh random nonce each, all nonces drawn
    from the OS in one read (a year's batch seals 365 values)."""
    header = _HEADER.pack(FORMAT, key.version)
    nonces = os.urandom(_NONCE_BYTES * len(values))
    encrypt = key.aead.encrypt
    sealed: list[bytes] = []
    for start, (natural_key, revision, plaintext) in zip(
        range(0, len(nonces), _NONCE_BYTES), values, strict=True
    ):
        nonce = nonces[start : start + _NONCE_BYTES]
        aad = binding.associated_data(natural_key, revision)
        sealed.append(header + nonce + encrypt(nonce, plaintext, aad))
    return sealed


def open_sealed(
    keys: OpeningKeys, binding: Binding, natural_key: str, revision: int, sealed: bytes
) -> bytes:
    """The plaintext of a value stored at (natural key, revision) of the binding, or
    RecordDoesNotOpen."""
    if len(sealed) < _HEADER.size + _NONCE_BYTES + _TAG_BYTES:
        raise RecordDoesNotOpen("not a sealed value")
    form, version = _HEADER.unpack_from(sealed)
    aead = keys.get(version)
    if aead is None:
        raise RecordDoesNotOpen("no key for this value")
    if form == FORMAT:
        aad = binding.associated_data(natural_key, revision)
    elif form == FORMAT_UNBOUND_REVISION and revision == 1:
        aad = binding._unbound_revision_data(natural_key)
    else:
        raise RecordDoesNotOpen("not a format this row can hold")
    nonce = sealed[_HEADER.size : _HEADER.size + _NONCE_BYTES]
    try:
        return aead.decrypt(nonce, sealed[_HEADER.size + _NONCE_BYTES :], aad)
    except InvalidTag:
        raise RecordDoesNotOpen("the value does not open here") from None


def sealed_format(sealed: bytes) -> int | None:
    """The format byte of a sealed value (None if too short to be one): reseal reads it."""
    return sealed[0] if len(sealed) >= _HEADER.size + _NONCE_BYTES + _TAG_BYTES else None


def open_unbound_revision(
    keys: OpeningKeys, binding: Binding, natural_key: str, sealed: bytes
) -> bytes:
    """Open a format-1 value whatever its row's revision: only `bank vault reseal` calls this,
    once, run by an operator who trusts the database as it is at the upgrade."""
    if sealed_format(sealed) != FORMAT_UNBOUND_REVISION:
        raise RecordDoesNotOpen("not a format-1 value")
    _, version = _HEADER.unpack_from(sealed)
    aead = keys.get(version)
    if aead is None:
        raise RecordDoesNotOpen("no key for this value")
    nonce = sealed[_HEADER.size : _HEADER.size + _NONCE_BYTES]
    try:
        return aead.decrypt(
            nonce,
            sealed[_HEADER.size + _NONCE_BYTES :],
            binding._unbound_revision_data(natural_key),
        )
    except InvalidTag:
        raise RecordDoesNotOpen("the value does not open here") from None
