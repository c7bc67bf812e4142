"""How account secrets are kept: blind indexes, sealed emails, peppered code hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid

from bank.crypto.keyring import LocalKeyring
from bank.errors import DomainError, ProblemType

# Deliberately plain: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class InvalidEmail(DomainError):
    problem = ProblemType(
        code="invalid-email",
        status=422,
        title="Invalid email address",
        description="The email address is not one the bank can send mail to.",
    )


def normalise_email(email: str) -> str:
    normalised = unicodedata.normalize("NFKC", email).strip().lower()
    if len(normalised) > 254 or not _EMAIL.match(normalised):
        raise InvalidEmail("Enter an email address such as taro@example.jp.")
    return normalised


def new_numeric_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class AccountSecrets:
    def __init__(self, keyring: LocalKeyring) -> None:
        self._keyring = keyring
        self._index_key = keyring.derive("blind-index:email")
        self._code_key = keyring.derive("pepper:one-time-codes")
        self._address_key = keyring.derive("blind-index:client-address")

    def __repr__(self) -> str:
        return "AccountSecrets(***)"

    def email_index(self, normalised_email: str) -> str:
        return hmac.new(self._index_key, normalised_email.encode(), hashlib.sha256).hexdigest()

    def address_index(self, client_address: str) -> str:
        # Throttling needs to recognise an address, not to store it.
        return hmac.new(self._address_key, client_address.encode(), hashlib.sha256).hexdigest()

    def seal_email(self, account_id: uuid.UUID, normalised_email: str) -> bytes:
        return self._keyring.seal(normalised_email.encode(), aad=f"email:{account_id}".encode())

    def open_email(self, account_id: uuid.UUID, sealed: bytes) -> str:
        return self._keyring.open(sealed, aad=f"email:{account_id}".encode()).decode()

    def code_hash(self, account_id: uuid.UUID, purpose: str, code: str) -> str:
        # Six digits are guessable offline from a plain hash; the keyed pepper prevents that.
        message = f"{account_id}:{purpose}:{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        return self._keyring.seal(plaintext, aad=aad.encode())

    def open(self, sealed: bytes, *, aad: str) -> bytes:
        return self._keyring.open(sealed, aad=aad.encode())
