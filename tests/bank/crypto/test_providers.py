"""BANK_KEY_PROVIDER picks the provider; pkcs11 without module, token or PIN fails at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.pkcs11_provider import Pkcs11KeyProvider
from bank.crypto.providers import key_provider_from_settings
from bank.settings import SettingsError, load_settings
from tests.bank.crypto.softhsm import SoftHsm


def test_local_key_files_are_the_default(tmp_path: Path) -> None:
    provider = key_provider_from_settings(load_settings(data_dir=tmp_path))
    assert isinstance(provider, LocalKeyProvider)
    assert provider.current_kek_version() == 1
    assert (tmp_path / "keys" / "vault" / "kek-1.key").stat().st_mode & 0o777 == 0o600


def test_pkcs11_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_KEY_PROVIDER", "pkcs11")
    monkeypatch.setenv("BANK_PKCS11_TOKEN_LABEL", "bank")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "BANK_KEY_PROVIDER=pkcs11 also needs BANK_PKCS11_MODULE, BANK_PKCS11_PIN" in message
    monkeypatch.setenv("BANK_PKCS11_PIN", "")
    with pytest.raises(SettingsError, match="BANK_PKCS11_PIN"):
        load_settings()


def test_pkcs11_module_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BANK_KEY_PROVIDER", "pkcs11")
    monkeypatch.setenv("BANK_PKCS11_MODULE", str(tmp_path / "missing.so"))
    monkeypatch.setenv("BANK_PKCS11_TOKEN_LABEL", "bank")
    monkeypatch.setenv("BANK_PKCS11_PIN", "7391-4682")
    with pytest.raises(SettingsError, match="no PKCS#11 module at") as raised:
        load_settings()
    assert "7391-4682" not in str(raised.value)


def test_pkcs11_settings_make_an_hsm_provider(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_KEY_PROVIDER", "pkcs11")
    monkeypatch.setenv("BANK_PKCS11_MODULE", str(softhsm.module))
    monkeypatch.setenv("BANK_PKCS11_TOKEN_LABEL", softhsm.label)
    monkeypatch.setenv("BANK_PKCS11_PIN", softhsm.pin.get_secret_value())
    settings = load_settings()
    assert softhsm.pin.get_secret_value() not in repr(settings)
    provider = key_provider_from_settings(settings)
    assert isinstance(provider, Pkcs11KeyProvider)
    try:
        wrapped = provider.wrap(b"k" * 32, aad=b"a")
        assert provider.unwrap(wrapped, aad=b"a") == b"k" * 32
        assert softhsm.provider().kek_versions() == [1]  # the key is on the configured token
    finally:
        provider.close()
