"""The KeyProvider contract, run against both providers: local key files and a SoftHSM2 token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pkcs11 import Attribute, KeyType, ObjectClass

from bank.crypto.local_provider import LocalKeyProvider, write_new_key_file
from bank.crypto.pkcs11_provider import (
    BLIND_INDEX_LABEL,
    BLIND_INDEX_TEMPLATE,
    KEK_TEMPLATE,
    kek_label,
)
from bank.crypto.provider import KeyProvider, KeyProviderError, WrappedKey
from tests.bank.crypto.softhsm import SoftHsm

AAD = b"data-key:6f1c8a52-0000-4000-8000-000000000001:1"


@dataclass
class Subject:
    provider: KeyProvider
    twin: KeyProvider  # another instance on the same key store (another process, say)
    stranger: KeyProvider  # the same kind of provider with keys of its own
    plant_kek: Callable[[int, bytes], None]  # a KEK of known value as version n
    plant_blind_index_key: Callable[[bytes], None]
    never_shown: list[bytes]  # the PIN, where there is one


def _local(directory: Path) -> Subject:
    def plant_kek(version: int, key: bytes) -> None:
        path = directory / f"kek-{version}.key"
        write_new_key_file(path)
        path.write_bytes(key)

    def plant_blind_index_key(key: bytes) -> None:
        path = directory / "blind-index.key"
        write_new_key_file(path)
        path.write_bytes(key)

    return Subject(
        provider=LocalKeyProvider(directory),
        twin=LocalKeyProvider(directory),
        stranger=LocalKeyProvider(directory.parent / "stranger"),
        plant_kek=plant_kek,
        plant_blind_index_key=plant_blind_index_key,
        never_shown=[],
    )


def _pkcs11(hsm: SoftHsm) -> Subject:
    provider = hsm.provider()

    def plant(label: str, key_type: KeyType, template: dict[Attribute, object], key: bytes) -> None:
        with hsm.session(provider) as session:
            session.create_object(
                {
                    **template,
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: key_type,
                    Attribute.LABEL: label,
                    Attribute.VALUE: key,
                }
            )

    return Subject(
        provider=provider,
        twin=hsm.provider(),
        stranger=hsm.provider(label=hsm.labels[1]),
        plant_kek=lambda version, key: plant(kek_label(version), KeyType.AES, KEK_TEMPLATE, key),
        plant_blind_index_key=lambda key: plant(
            BLIND_INDEX_LABEL, KeyType.GENERIC_SECRET, BLIND_INDEX_TEMPLATE, key
        ),
        never_shown=[hsm.pin.get_secret_value().encode()],
    )


@pytest.fixture(params=["local", "pkcs11"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "local":
        return _local(tmp_path / "vault")
    return _pkcs11(request.getfixturevalue("softhsm"))


def test_a_wrapped_key_unwraps_only_with_its_own_aad(subject: Subject) -> None:
    data_key = secrets.token_bytes(32)
    wrapped = subject.provider.wrap(data_key, aad=AAD)
    assert wrapped.kek_version == 1
    assert len(wrapped.blob) == 12 + 32 + 16  # IV, key, tag
    assert data_key not in wrapped.blob
    assert subject.provider.unwrap(wrapped, aad=AAD) == data_key
    assert subject.twin.unwrap(wrapped, aad=AAD) == data_key
    for other in (AAD[:-1] + b"2", b"", AAD + b"\x00"):
        with pytest.raises(KeyProviderError, match="does not unwrap"):
            subject.provider.unwrap(wrapped, aad=other)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda blob: bytes([blob[0] ^ 1]) + blob[1:], id="iv"),
        pytest.param(lambda blob: blob[:20] + bytes([blob[20] ^ 0x80]) + blob[21:], id="key"),
        pytest.param(lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), id="tag"),
        pytest.param(lambda blob: blob[:-1], id="truncated"),
        pytest.param(lambda blob: blob[:12], id="iv-only"),
        pytest.param(lambda blob: blob + b"\x00", id="extended"),
    ],
)
def test_a_tampered_wrapped_key_does_not_unwrap(
    subject: Subject, tamper: Callable[[bytes], bytes]
) -> None:
    wrapped = subject.provider.wrap(secrets.token_bytes(32), aad=AAD)
    forged = WrappedKey(kek_version=wrapped.kek_version, blob=tamper(wrapped.blob))
    with pytest.raises(KeyProviderError, match="does not unwrap"):
        subject.provider.unwrap(forged, aad=AAD)


def test_a_key_from_another_provider_does_not_unwrap(subject: Subject) -> None:
    wrapped = subject.stranger.wrap(secrets.token_bytes(32), aad=AAD)
    with pytest.raises(KeyProviderError):
        subject.provider.unwrap(wrapped, aad=AAD)


def test_versions_ascend_and_new_keys_are_wrapped_under_the_newest(subject: Subject) -> None:
    provider = subject.provider
    assert provider.kek_versions() == []
    assert provider.current_kek_version() == 1  # made on first use
    old = provider.wrap(b"k" * 32, aad=AAD)
    assert [provider.new_kek_version(), provider.new_kek_version()] == [2, 3]
    assert provider.kek_versions() == [1, 2, 3]
    assert provider.current_kek_version() == 3
    new = provider.wrap(b"n" * 32, aad=AAD)
    assert (old.kek_version, new.kek_version) == (1, 3)
    assert provider.unwrap(old, aad=AAD) == b"k" * 32
    assert provider.unwrap(new, aad=AAD) == b"n" * 32
    with pytest.raises(KeyProviderError):  # the version is part of what is checked
        provider.unwrap(WrappedKey(kek_version=3, blob=old.blob), aad=AAD)


def test_the_current_version_is_never_stale(subject: Subject) -> None:
    """A web process keeps its provider for days; a rotation in another process must be seen
    by its very next wrap."""
    assert subject.provider.current_kek_version() == 1
    assert subject.twin.new_kek_version() == 2
    assert subject.provider.current_kek_version() == 2
    assert subject.provider.wrap(b"k" * 32, aad=AAD).kek_version == 2


def test_a_retired_version_no_longer_unwraps_and_the_current_one_cannot_be_retired(
    subject: Subject,
) -> None:
    provider = subject.provider
    old = provider.wrap(b"k" * 32, aad=AAD)
    provider.new_kek_version()
    kept = provider.wrap(b"n" * 32, aad=AAD)
    subject.twin.unwrap(old, aad=AAD)  # the twin has used (and may have cached) version 1
    provider.retire_kek_version(1)
    assert provider.kek_versions() == [2]
    for reader in (provider, subject.twin):
        with pytest.raises(KeyProviderError, match="version 1 is not available"):
            reader.unwrap(old, aad=AAD)
    with pytest.raises(KeyProviderError, match="cannot be retired"):
        provider.retire_kek_version(2)
    assert provider.kek_versions() == [2]
    assert provider.unwrap(kept, aad=AAD) == b"n" * 32


def test_blind_indexes_are_deterministic_per_purpose_and_key(subject: Subject) -> None:
    provider = subject.provider
    card = provider.blind_index("transit.card", b"JE80 1234 5678 9012")
    assert len(card) == 32
    assert card == provider.blind_index("transit.card", b"JE80 1234 5678 9012")
    assert card == subject.twin.blind_index("transit.card", b"JE80 1234 5678 9012")
    assert card != provider.blind_index("insurer.member", b"JE80 1234 5678 9012")
    assert card != provider.blind_index("transit.card", b"JE80 1234 5678 9013")
    assert card != subject.stranger.blind_index("transit.card", b"JE80 1234 5678 9012")
    # The separator keeps purpose and value apart: ("ab", "c") is not ("a", "bc").
    assert provider.blind_index("ab", b"c") != provider.blind_index("a", b"bc")


def test_both_providers_use_one_layout_for_blobs_and_blind_indexes(subject: Subject) -> None:
    """With keys of known value planted, the results can be checked independently: AES-256-GCM
    with the IV in front, HMAC-SHA256 over purpose, a zero byte and the value."""
    kek, blind = secrets.token_bytes(32), secrets.token_bytes(32)
    subject.plant_kek(1, kek)
    subject.plant_blind_index_key(blind)
    data_key = secrets.token_bytes(32)
    wrapped = subject.provider.wrap(data_key, aad=AAD)
    assert AESGCM(kek).decrypt(wrapped.blob[:12], wrapped.blob[12:], AAD) == data_key
    nonce = secrets.token_bytes(12)
    sealed_here = WrappedKey(kek_version=1, blob=nonce + AESGCM(kek).encrypt(nonce, b"x" * 32, AAD))
    assert subject.provider.unwrap(sealed_here, aad=AAD) == b"x" * 32
    expected = hmac.new(blind, b"transit.card\x00JE80", hashlib.sha256).digest()
    assert subject.provider.blind_index("transit.card", b"JE80") == expected


def _shown(secret: bytes) -> list[str]:
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]


def test_reprs_and_errors_never_carry_key_material(subject: Subject) -> None:
    kek, blind, data_key = (secrets.token_bytes(32) for _ in range(3))
    subject.plant_kek(1, kek)
    subject.plant_blind_index_key(blind)
    wrapped = subject.provider.wrap(data_key, aad=AAD)
    failures: list[KeyProviderError] = []
    attempts: list[Callable[[], object]] = [
        lambda: subject.provider.unwrap(wrapped, aad=b"other"),
        lambda: subject.provider.unwrap(WrappedKey(1, wrapped.blob[:-1]), aad=AAD),
        lambda: subject.provider.unwrap(WrappedKey(7, wrapped.blob), aad=AAD),
        lambda: subject.provider.retire_kek_version(1),
    ]
    for attempt in attempts:
        with pytest.raises(KeyProviderError) as raised:
            attempt()
        failures.append(raised.value)
    texts = [repr(subject.provider), repr(subject.twin), repr(wrapped), str(wrapped)]
    texts += [text for failure in failures for text in (str(failure), repr(failure))]
    for secret in [kek, blind, data_key, wrapped.blob, *subject.never_shown]:
        for form in _shown(secret):
            assert all(form not in text for text in texts), form
    assert "***" in repr(wrapped)
