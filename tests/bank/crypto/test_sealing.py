"""Sealed values open only where they were sealed: owner, kind, natural key, schema version and
revision are all bound; format-1 values (no revision bound) open only at revision 1."""

from __future__ import annotations

import os
import struct
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from bank.crypto.sealing import (
    Binding,
    RecordDoesNotOpen,
    SealingKey,
    open_sealed,
    open_unbound_revision,
    seal,
    seal_many,
    sealed_format,
)


def _key(version: int = 1) -> SealingKey:
    return SealingKey(version, AESGCM(AESGCM.generate_key(bit_length=256)))


def _format_one(key: SealingKey, binding: Binding, natural_key: str, plaintext: bytes) -> bytes:
    """A value as sealing wrote it before revisions were bound (format byte 1): written out
    here, byte by byte, so the test does not lean on the code it checks."""
    nonce = os.urandom(12)
    aad = f"{binding.owner}|{binding.kind}|{natural_key}|v{binding.schema_version}".encode()
    return struct.pack(">BI", 1, key.version) + nonce + key.aead.encrypt(nonce, plaintext, aad)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["steps", "transit_tap", "checkup", "link", "export"]),
    natural_key=st.text(min_size=1, max_size=40),
    other_key=st.text(min_size=1, max_size=40),
    revision=st.integers(min_value=1, max_value=2**31 - 1),
    other_revision=st.integers(min_value=1, max_value=2**31 - 1),
    plaintext=st.binary(max_size=200),
)
def test_a_sealed_value_opens_only_in_its_own_place_and_revision(
    kind: str, natural_key: str, other_key: str, revision: int, other_revision: int,
    plaintext: bytes,
) -> None:  # fmt: skip
    resident, stranger = uuid.uuid4(), uuid.uuid4()
    key = _key()
    binding = Binding(resident, kind, 1)
    sealed = seal(key, binding, natural_key, revision, plaintext)
    keys = {1: key.aead}
    assert sealed_format(sealed) == 2
    assert open_sealed(keys, binding, natural_key, revision, sealed) == plaintext
    moved = [
        (Binding(stranger, kind, 1), natural_key, revision),
        (Binding(resident, kind + "x", 1), natural_key, revision),
        (Binding(resident, kind, 2), natural_key, revision),
    ]
    if other_key != natural_key:
        moved.append((binding, other_key, revision))
    if other_revision != revision:
        # An older (or any other) revision's ciphertext copied into this row does not open.
        moved.append((binding, natural_key, other_revision))
    for wrong_binding, wrong_key, wrong_revision in moved:
        with pytest.raises(RecordDoesNotOpen):
            open_sealed(keys, wrong_binding, wrong_key, wrong_revision, sealed)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(RecordDoesNotOpen):
        open_sealed(keys, binding, natural_key, revision, bytes(tampered))
    with pytest.raises(RecordDoesNotOpen):
        open_sealed({2: key.aead}, binding, natural_key, revision, sealed)  # no key version 1


@settings(max_examples=30, deadline=None)
@given(plaintexts=st.lists(st.binary(max_size=120), max_size=20))
def test_a_batch_seals_like_one_at_a_time_with_a_fresh_nonce_each(plaintexts: list[bytes]) -> None:
    binding = Binding(uuid.uuid4(), "steps", 1)
    key = _key(3)
    values = [
        (f"2026-11-{n:02d}|healthkit", n % 3 + 1, plaintext)
        for n, plaintext in enumerate(plaintexts, start=1)
    ]
    sealed = seal_many(key, binding, values)
    opened = {3: key.aead}
    assert [
        open_sealed(opened, binding, natural_key, revision, value)
        for (natural_key, revision, _), value in zip(values, sealed, strict=True)
    ] == plaintexts
    assert len({value[5:17] for value in sealed}) == len(sealed)  # nonces after the header
    for index in range(1, len(sealed)):  # a value does not open in its neighbour's place
        natural_key, revision, _ = values[index - 1]
        with pytest.raises(RecordDoesNotOpen):
            open_sealed(opened, binding, natural_key, revision, sealed[index])


@settings(max_examples=30, deadline=None)
@given(
    natural_key=st.text(min_size=1, max_size=30),
    revision=st.integers(min_value=2, max_value=1000),
    plaintext=st.binary(max_size=100),
)
def test_a_format_one_value_opens_at_revision_one_only(
    natural_key: str, revision: int, plaintext: bytes
) -> None:
    binding = Binding(uuid.uuid4(), "steps", 1)
    key = _key()
    old = _format_one(key, binding, natural_key, plaintext)
    keys = {1: key.aead}
    assert open_sealed(keys, binding, natural_key, 1, old) == plaintext
    # In a row at a later revision it could be an older revision's copy: refused ...
    with pytest.raises(RecordDoesNotOpen):
        open_sealed(keys, binding, natural_key, revision, old)
    # ... except by the reseal, which the operator runs once at the upgrade.
    assert open_unbound_revision(keys, binding, natural_key, old) == plaintext
    with pytest.raises(RecordDoesNotOpen):
        open_unbound_revision(keys, binding, natural_key + "x", old)
    with pytest.raises(RecordDoesNotOpen):  # a format-2 value is not reopened that way
        open_unbound_revision(keys, binding, natural_key, seal(key, binding, natural_key, 1, b""))
