"""Choose the KeyProvider the settings name: `local` key files (the default) or a PKCS#11 HSM."""

from __future__ import annotations

from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.pkcs11_provider import Pkcs11KeyProvider
from bank.crypto.provider import KeyProvider
from bank.settings import Settings


def key_provider_from_settings(settings: Settings) -> KeyProvider:
    """The configured provider; nothing is opened until its first use."""
    if settings.key_provider == "pkcs11":
        # The settings validator guarantees all three (BANK_PKCS11_*).
        assert settings.pkcs11_module is not None
        assert settings.pkcs11_token_label is not None
        assert settings.pkcs11_pin is not None
        return Pkcs11KeyProvider(
            settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_pin
        )
    return LocalKeyProvider(settings.data_dir / "keys" / "vault")
