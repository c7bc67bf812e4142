"""How account secrets are kept: blind indexes, sealed e-mail addresses, peppered code hashes.

A resident's address is sealed under that resident's own data key (`bank.crypto.sealing`, kind
`account-email`), so the erasure, which destroys the data key, leaves it unreadable in every copy
of the accounts table, backups included. An operator's address is sealed under the bank's master
keyring, like the bank's other secrets: operators are staff, not residents, and have no data key.
`accounts.email_sealed_under` says which key sealed a value. Residents' addresses sealed before
issue 12 say `keyring` and still open, until `bank accounts reseal-emails` (bank.identity.reseal)
seals them under the resident's data key. Sign-in never opens an address: it finds the account by
the blind index.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keyring import KeyringError, LocalKeyring
from bank.crypto.keystore import KeyErased, KeyStore, ResidentGone
from bank.crypto.sealing import Binding, RecordDoesNotOpen, SealingKey, open_sealed, seal
from bank.errors import DomainError, ProblemType
from bank.identity.models import Account

# Deliberately plain: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class InvalidEmail(DomainError):
    problem = ProblemType(
        code="invalid-email",
        status=422,
        title="Invalid email address",
        description="The email address is not one the bank can send mail to.",
        title_ja="メールアドレスが正しくありません",
        description_ja="情報銀行からメールを送れるメールアドレスではありません。",
    )


def normalise_email(email: str) -> str:
    normalised = unicodedata.normalize("NFKC", email).strip().lower()
    if len(normalised) > 254 or not _EMAIL.match(normalised):
        raise InvalidEmail("Enter an email address such as taro@example.jp.")
    return normalised


def new_numeric_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class SealedUnder(StrEnum):
    """Which key sealed an address (`accounts.email_sealed_under`) or a mail
    (`email_outbox.sealed_under`)."""

    KEYRING = "keyring"  # the bank's master keyring: operators, mail without a resident
    DATA_KEY = "data-key"  # the resident's own data key (bank.crypto.keystore)


# A resident's address: one value per account, at natural key "address" and revision 1. No
# address change exists yet; one would bind a revision column's value here instead of 1.
EMAIL_KIND = "account-email"
EMAIL_SCHEMA_VERSION = 1
EMAIL_NATURAL_KEY = "address"
EMAIL_REVISION = 1


def email_binding(account_id: uuid.UUID) -> Binding:
    return Binding(account_id, EMAIL_KIND, EMAIL_SCHEMA_VERSION)


@dataclass(frozen=True)
class SealedEmail:
    sealed: bytes
    under: SealedUnder

    def __repr__(self) -> str:
        return f"SealedEmail(under={self.under.value}, ***)"


class AddressDoesNotOpen(Exception):
    """The address cannot be read: the resident's data key is gone (erased, or a restored copy
    not yet reapplied), or the value does not open here (tampered or moved). The message names
    no value."""


class AccountSecrets:
    """The bank's keyed secrets about accounts: blind indexes and peppers from the master
    keyring; addresses sealed under each resident's data key (`keys`) or, for operators, the
    keyring."""

    def __init__(self, keyring: LocalKeyring, keys: KeyStore) -> None:
        self._keyring = keyring
        self.keys = keys
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

    async def seal_email(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        kind: str,
        normalised_email: str,
        *,
        has_key: bool = True,
    ) -> SealedEmail:
        """A resident's address under their data key (made here on first use: `has_key=False`
        for a new account saves a round); an operator's under the master keyring. Raises
        ResidentErased for a resident the erasure journal names."""
        if kind != "resident":
            return SealedEmail(
                self._seal_with_keyring(account_id, normalised_email), SealedUnder.KEYRING
            )
        key = await self.keys.for_sealing(session, account_id, 1, has_key=has_key)
        return SealedEmail(seal_email_with(key, account_id, normalised_email), SealedUnder.DATA_KEY)

    async def open_email(self, session: AsyncSession, account: Account) -> str:
        """The account's address, opened with the key that sealed it (AddressDoesNotOpen if it
        cannot be)."""
        if account.email_sealed_under == SealedUnder.KEYRING:
            return self.open_keyring_email(account.id, account.email_sealed)
        try:
            keys = await self.keys.for_opening(session, account.id)
            opened = open_sealed(
                keys, email_binding(account.id), EMAIL_NATURAL_KEY, EMAIL_REVISION,
                account.email_sealed,
            )  # fmt: skip
        except (KeyErased, ResidentGone, RecordDoesNotOpen) as exc:
            raise AddressDoesNotOpen(type(exc).__name__) from None
        return opened.decode()

    def open_keyring_email(self, account_id: uuid.UUID, sealed: bytes) -> str:
        """An address sealed under the master keyring: an operator's, or a resident's sealed
        before issue 12 (the reseal reads them with this)."""
        try:
            return self._keyring.open(sealed, aad=_keyring_email_aad(account_id)).decode()
        except KeyringError:
            raise AddressDoesNotOpen("KeyringError") from None

    def _seal_with_keyring(self, account_id: uuid.UUID, normalised_email: str) -> bytes:
        return self._keyring.seal(normalised_email.encode(), aad=_keyring_email_aad(account_id))

    def code_hash(self, account_id: uuid.UUID, purpose: str, code: str) -> str:
        # Six digits are guessable offline from a plain hash; the keyed pepper prevents that.
        message = f"{account_id}:{purpose}:{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        return self._keyring.seal(plaintext, aad=aad.encode())

    def open(self, sealed: bytes, *, aad: str) -> bytes:
        return self._keyring.open(sealed, aad=aad.encode())


def seal_email_with(key: SealingKey, account_id: uuid.UUID, normalised_email: str) -> bytes:
    """A resident's address sealed under `key` (their data key) at its one place."""
    return seal(
        key, email_binding(account_id), EMAIL_NATURAL_KEY, EMAIL_REVISION, normalised_email.encode()
    )


def _keyring_email_aad(account_id: uuid.UUID) -> bytes:
    return f"email:{account_id}".encode()
