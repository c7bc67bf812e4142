"""The PKCS#11 provider on a real SoftHSM2 token: keys that never leave it, sessions that survive
threads and restarts, errors that never quote the PIN, and the key store working on top of it."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import AttributeSensitive, KeyUnextractable
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.pkcs11_provider import BLIND_INDEX_LABEL, Pkcs11KeyProvider, kek_label
from bank.crypto.provider import KeyProviderError
from bank.crypto.sealing import Binding, open_sealed, seal
from tests.bank.crypto.softhsm import SoftHsm

AAD = b"data-key:6f1c8a52-0000-4000-8000-000000000001:1"
_NO_USE = (Attribute.WRAP, Attribute.UNWRAP, Attribute.VERIFY, Attribute.DERIVE)


def _only_key(session: pkcs11.Session, label: str) -> pkcs11.SecretKey:
    found = list(
        session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})
    )
    assert len(found) == 1
    key = found[0]
    assert isinstance(key, pkcs11.SecretKey)
    return key


def test_keks_are_sensitive_token_keys_for_encryption_only(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    provider.wrap(b"k" * 32, aad=AAD)
    provider.new_kek_version()
    with softhsm.session(provider) as session:
        for version in (1, 2):
            kek = _only_key(session, kek_label(version))
            assert kek[Attribute.KEY_TYPE] == KeyType.AES
            assert kek[Attribute.VALUE_LEN] == 32
            assert kek[Attribute.TOKEN] is True
            assert kek[Attribute.PRIVATE] is True
            assert kek[Attribute.SENSITIVE] is True
            assert kek[Attribute.ALWAYS_SENSITIVE] is True
            assert kek[Attribute.EXTRACTABLE] is False
            assert kek[Attribute.NEVER_EXTRACTABLE] is True
            assert kek[Attribute.ENCRYPT] is True
            assert kek[Attribute.DECRYPT] is True
            assert not any(kek[attribute] for attribute in (*_NO_USE, Attribute.SIGN))
            with pytest.raises(AttributeSensitive):
                kek[Attribute.VALUE]


def test_a_kek_cannot_be_wrapped_out_of_the_token(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    provider.current_kek_version()
    with softhsm.session(provider) as session:
        kek = _only_key(session, kek_label(1))
        exporter = session.generate_key(
            KeyType.AES, 256, capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP
        )  # a session key an attacker with the PIN could make
        with pytest.raises(KeyUnextractable):
            exporter.wrap_key(kek, mechanism=Mechanism.AES_KEY_WRAP)  # type: ignore[attr-defined]


def test_the_blind_index_key_only_signs(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    provider.blind_index("transit.card", b"JE80")
    with softhsm.session(provider) as session:
        key = _only_key(session, BLIND_INDEX_LABEL)
        assert key[Attribute.KEY_TYPE] == KeyType.GENERIC_SECRET
        assert key[Attribute.VALUE_LEN] == 32
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SIGN] is True
        assert not any(
            key[attribute] for attribute in (*_NO_USE, Attribute.ENCRYPT, Attribute.DECRYPT)
        )


def test_keys_outlive_the_session_that_made_them(softhsm: SoftHsm) -> None:
    first = softhsm.provider()
    wrapped = first.wrap(b"k" * 32, aad=AAD)
    index = first.blind_index("insurer.member", b"12345678")
    first.close()
    again = softhsm.provider()
    assert again.unwrap(wrapped, aad=AAD) == b"k" * 32
    assert again.blind_index("insurer.member", b"12345678") == index
    assert again.kek_versions() == [1]


def test_one_session_serves_many_threads(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    wrapped = provider.wrap(b"k" * 32, aad=AAD)
    index = provider.blind_index("transit.card", b"JE80")
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                assert provider.unwrap(wrapped, aad=AAD) == b"k" * 32
                assert provider.blind_index("transit.card", b"JE80") == index
                again = provider.wrap(b"n" * 32, aad=AAD)
                assert provider.unwrap(again, aad=AAD) == b"n" * 32
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# python-pkcs11 0.10 leaves a search whose C_FindObjectsInit failed marked active, and its
# __del__ then reports the dead session once more: noise on stderr, not a failure of ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_session_is_opened_again_after_the_module_restarts(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    wrapped = provider.wrap(b"k" * 32, aad=AAD)
    pkcs11.lib(str(softhsm.module)).reinitialize()  # every session handle is now invalid
    assert provider.unwrap(wrapped, aad=AAD) == b"k" * 32


def test_a_wrong_pin_is_refused_without_quoting_it(softhsm: SoftHsm) -> None:
    wrong = "9" * 12
    provider = softhsm.provider(pin=wrong)
    with pytest.raises(KeyProviderError, match="refused the PIN") as raised:
        provider.kek_versions()
    assert wrong not in str(raised.value)
    assert softhsm.pin.get_secret_value() not in str(raised.value)
    # The right PIN still works afterwards.
    assert softhsm.provider().current_kek_version() == 1


def test_a_missing_token_or_module_is_a_clear_error(softhsm: SoftHsm, tmp_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="no PKCS#11 token labelled 'absent'"):
        softhsm.provider(label="absent").kek_versions()
    missing = Pkcs11KeyProvider(tmp_path / "nowhere.so", softhsm.label, softhsm.pin)
    with pytest.raises(KeyProviderError, match="cannot load the PKCS#11 module"):
        missing.current_kek_version()


def test_the_repr_never_shows_the_pin() -> None:
    provider = Pkcs11KeyProvider(Path("/usr/lib/x.so"), "bank", SecretStr("246813579"))
    assert "246813579" not in repr(provider)
    assert repr(provider) == "Pkcs11KeyProvider(module='/usr/lib/x.so', token='bank')"


async def test_the_key_store_seals_and_opens_with_keys_wrapped_in_the_hsm(
    db_session: AsyncSession, softhsm: SoftHsm
) -> None:
    provider = softhsm.provider()
    keystore = KeyStore(provider)
    resident = uuid.uuid4()
    binding, natural_key = Binding(resident, "steps", 1), "2026-11-01|healthkit"
    key = await keystore.for_sealing(db_session, resident, 1)
    sealed = seal(key, binding, natural_key, 1, b"8123")
    row = await db_session.scalar(select(DataKey).where(DataKey.resident_id == resident))
    assert row is not None
    assert row.kek_version == 1
    assert len(row.wrapped_key) == 12 + 32 + 16
    # A new provider, as in another process: the key comes back from the token only.
    provider.close()
    reopened = KeyStore(softhsm.provider())
    opening = await reopened.for_opening(db_session, resident)
    assert open_sealed(opening, binding, natural_key, 1, sealed) == b"8123"
    assert await reopened.blind_index("transit.card", "JE80") == await keystore.blind_index(
        "transit.card", "JE80"
    )
