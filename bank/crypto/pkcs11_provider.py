"""The HSM KeyProvider: KEKs and the blind-index key live on a PKCS#11 token and never leave it.

KEK version n is an AES-256 token object labelled `bank-kek-<n>` (sensitive, not extractable,
ENCRYPT/DECRYPT only); data keys are wrapped inside the HSM with CKM_AES_GCM, a random 96-bit IV
and the caller's associated data, and the blob is IV ‖ ciphertext ‖ tag, as in the local
provider. The blind-index key is a generic secret labelled `bank-blind-index` used only with
CKM_SHA256_HMAC, over the same purpose-separated message as the local provider. A version's start
time (KeyProvider.kek_started) is a private token data object, application `bank-kek-start`,
labelled like its key, whose value is the ISO-8601 time (the keys are not modifiable, and
CKA_START_DATE holds a day, not a time).

The erasure journal is one token data object (CKO_DATA) per entry: private, not modifiable,
application `bank-erasure-journal`, labelled `bank-erasure:<resident id>` (so that "is this
resident erased?" is one search), its value the entry's line (bank.crypto.erasure_journal).
Appending is C_CreateObject, which returns once the token has stored the object; nothing here
modifies or destroys one, so the journal is append-only from the bank's side.

python-pkcs11 calls C_Initialize without locking callbacks, which lets the module assume one
caller at a time: every call in this process is serialised by one lock, and the process keeps one
logged-in session per token, opened on first use and reopened once if the token drops it. That
lock is what makes the provider safe to call from the worker threads async code uses
(bank.crypto.provider_calls): two threads never use the shared session at once.

Keys are created on first use, and PKCS#11 has no "create if absent": two processes starting on
an empty token at the same moment can each create `bank-kek-1` or `bank-blind-index`. Duplicate
KEKs are harmless (unwrap tries every object with the label; GCM's tag tells which one sealed
it). Duplicate blind-index keys are resolved by taking the one with the lowest CKA_ID, so every
process converges on one key; provision the token from one process before starting several
(docs/vault.md).
"""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pkcs11
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    DeviceRemoved,
    MultipleTokensReturned,
    NoSuchToken,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    SessionClosed,
    SessionHandleInvalid,
    TokenNotPresent,
    TokenNotRecognised,
    UserAlreadyLoggedIn,
    UserNotLoggedIn,
)
from pydantic import SecretStr

from bank.crypto.erasure_journal import ErasureEntry, parse_lines
from bank.crypto.provider import KeyProviderError, WrappedKey

T = TypeVar("T")

_IV_BYTES = 12
_TAG_BYTES = 16
_KEK_LABEL = re.compile(r"^bank-kek-(\d+)$")
BLIND_INDEX_LABEL = "bank-blind-index"
JOURNAL_APPLICATION = "bank-erasure-journal"

# python-pkcs11 passes NULL to C_Initialize: the module may assume no concurrent calls at all,
# whatever the session, so this lock is process-wide.
_CALLS = threading.RLock()

# The session is gone (token reset, library re-initialised, logged out by another session of
# this process closing): reopen once and retry.
_SESSION_LOST = (
    SessionHandleInvalid,
    SessionClosed,
    UserNotLoggedIn,
    DeviceRemoved,
    TokenNotPresent,
    TokenNotRecognised,
)
_PIN_REFUSED = (PinIncorrect, PinInvalid, PinLenRange, PinLocked, PinExpired)

_NO_OTHER_USE = {
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}
_KEY_ATTRIBUTES = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: False,
}
KEK_TEMPLATE: dict[Attribute, Any] = {
    **_KEY_ATTRIBUTES,
    **_NO_OTHER_USE,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.SIGN: False,
}
BLIND_INDEX_TEMPLATE: dict[Attribute, Any] = {
    **_KEY_ATTRIBUTES,
    **_NO_OTHER_USE,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
    Attribute.SIGN: True,
}


@dataclass(frozen=True)
class _Login:
    session: pkcs11.Session
    pin_digest: bytes

    def __repr__(self) -> str:
        return "_Login(***)"


# One logged-in session per token and process, shared by every provider on it: PKCS#11 login
# state belongs to the application, so a provider closing its own session would log out the
# others' (and their searches would silently see only public objects).
_LOGINS: dict[tuple[str, str], _Login] = {}
# PINs are compared by a keyed digest: the table keeps neither a copy of a PIN nor a plain hash
# that a short PIN could be guessed back from.
_PIN_KEY = secrets.token_bytes(32)


class _Key(Protocol):
    """The parts of a python-pkcs11 secret key object used here (its classes are built at
    run time from capability mixins, so the static types do not carry these methods)."""

    def __getitem__(self, attribute: Attribute) -> Any: ...

    def encrypt(
        self, data: bytes, *, mechanism: Mechanism, mechanism_param: GCMParams
    ) -> bytes: ...

    def decrypt(
        self, data: bytes, *, mechanism: Mechanism, mechanism_param: GCMParams
    ) -> bytes: ...

    def sign(self, data: bytes, *, mechanism: Mechanism) -> bytes: ...

    def destroy(self) -> None: ...


def kek_label(version: int) -> str:
    return f"bank-kek-{version}"


START_APPLICATION = "bank-kek-start"


def _start_template(version: int | None = None) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {
        Attribute.CLASS: ObjectClass.DATA,
        Attribute.APPLICATION: START_APPLICATION,
    }
    if version is not None:
        template[Attribute.LABEL] = kek_label(version)
    return template


def erasure_label(resident_id: uuid.UUID) -> str:
    return f"bank-erasure:{resident_id}"


def _journal_template(label: str | None = None) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {
        Attribute.CLASS: ObjectClass.DATA,
        Attribute.APPLICATION: JOURNAL_APPLICATION,
    }
    if label is not None:
        template[Attribute.LABEL] = label
    return template


def _secret_keys(
    session: pkcs11.Session, *, label: str | None = None, key_type: KeyType | None = None
) -> list[_Key]:
    template: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.SECRET_KEY}
    if label is not None:
        template[Attribute.LABEL] = label
    if key_type is not None:
        template[Attribute.KEY_TYPE] = key_type
    # list(): a search left open would hold the session's find operation.
    return [cast("_Key", found) for found in list(session.get_objects(template))]


def _parse_start(value: bytes) -> datetime | None:
    try:
        at = datetime.fromisoformat(value.decode())
    except (UnicodeDecodeError, ValueError):
        raise KeyProviderError("a KEK start object does not hold a time") from None
    return at if at.tzinfo is not None else None


class Pkcs11KeyProvider:
    name = "pkcs11"
    # Every call is a blocking C call into the module, a network round trip for a network HSM,
    # and may wait on `_CALLS` behind another thread's: async callers make it in a worker thread.
    blocking = True

    def __init__(self, module: Path, token_label: str, pin: SecretStr) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._token_key = (str(module), token_label)
        self._pin_digest = hmac.new(_PIN_KEY, pin.get_secret_value().encode(), "sha256").digest()

    def __repr__(self) -> str:
        return f"Pkcs11KeyProvider(module={str(self._module)!r}, token={self._token_label!r})"

    # Sessions -------------------------------------------------------------------------------

    def _open(self) -> pkcs11.Session:
        login = _LOGINS.get(self._token_key)
        if login is not None:
            if hmac.compare_digest(login.pin_digest, self._pin_digest):
                return login.session
            self._drop()  # logged in with another PIN: this provider's must be tried itself
        try:
            token = pkcs11.lib(str(self._module)).get_token(token_label=self._token_label)
        except NoSuchToken:
            raise KeyProviderError(f"no PKCS#11 token labelled {self._token_label!r}") from None
        except MultipleTokensReturned:
            raise KeyProviderError(
                f"several PKCS#11 tokens are labelled {self._token_label!r}"
            ) from None
        except PKCS11Error as exc:
            raise KeyProviderError(
                f"cannot load the PKCS#11 module {self._module} ({type(exc).__name__})"
            ) from None
        try:
            session = token.open(rw=True, user_pin=self._pin.get_secret_value())
        except UserAlreadyLoggedIn:
            # Something else in this process logged in to the token; a new session shares it.
            session = self._open_without_login(token)
        except _PIN_REFUSED as exc:
            raise KeyProviderError(
                f"the PKCS#11 token refused the PIN ({type(exc).__name__})"
            ) from None
        except PKCS11Error as exc:
            raise KeyProviderError(
                f"cannot open a PKCS#11 session ({type(exc).__name__})"
            ) from None
        _LOGINS[self._token_key] = _Login(session, self._pin_digest)
        return session

    @staticmethod
    def _open_without_login(token: pkcs11.Token) -> pkcs11.Session:
        try:
            return token.open(rw=True)
        except PKCS11Error as exc:
            raise KeyProviderError(
                f"cannot open a PKCS#11 session ({type(exc).__name__})"
            ) from None

    def _drop(self) -> None:
        login = _LOGINS.pop(self._token_key, None)
        if login is not None:
            with contextlib.suppress(PKCS11Error):
                login.session.close()

    def close(self) -> None:
        """Log out and close the session (the next call opens a new one)."""
        with _CALLS:
            self._drop()

    def _run(self, what: str, operation: Callable[[pkcs11.Session], T]) -> T:
        with _CALLS:
            try:
                try:
                    return operation(self._open())
                except _SESSION_LOST:
                    self._drop()
                    return operation(self._open())
            except PKCS11Error as exc:
                # Class name only: the module's messages are not ours to vouch for.
                raise KeyProviderError(f"PKCS#11 {what} failed ({type(exc).__name__})") from None

    # KEK versions ---------------------------------------------------------------------------

    @staticmethod
    def _versions(session: pkcs11.Session) -> list[int]:
        labels = {key[Attribute.LABEL] for key in _secret_keys(session, key_type=KeyType.AES)}
        found = (_KEK_LABEL.match(label) for label in labels)
        return sorted(int(match.group(1)) for match in found if match)

    @staticmethod
    def _generate_kek(session: pkcs11.Session, version: int) -> None:
        session.generate_key(
            KeyType.AES, 256, label=kek_label(version), store=True, template=KEK_TEMPLATE
        )

    def kek_versions(self) -> list[int]:
        return self._run("key listing", self._versions)

    def current_kek_version(self) -> int:
        """Asks the token every time: a version made by `bank keys rotate-kek` in another
        process is used from the next wrap on."""

        def current(session: pkcs11.Session) -> int:
            versions = self._versions(session)
            if versions:
                return versions[-1]
            self._generate_kek(session, 1)
            # The first version starts as it is made: no data key exists under another one.
            self._mark_started(session, 1, datetime.now(UTC))
            return 1

        return self._run("key listing", current)

    def new_kek_version(self) -> int:
        def create(session: pkcs11.Session) -> int:
            version = max(self._versions(session), default=0) + 1
            self._generate_kek(session, version)
            return version

        return self._run("key generation", create)

    def retire_kek_version(self, version: int) -> None:
        def retire(session: pkcs11.Session) -> None:
            versions = self._versions(session)
            if not versions or version >= versions[-1]:
                raise KeyProviderError("the current KEK version cannot be retired")
            for key in _secret_keys(session, label=kek_label(version)):
                key.destroy()
            for start in session.get_objects(_start_template(version)):
                start.destroy()

        self._run("key destruction", retire)

    def kek_started(self) -> dict[int, datetime | None]:
        def read(session: pkcs11.Session) -> dict[int, datetime | None]:
            started: dict[int, datetime | None] = dict.fromkeys(self._versions(session))
            for item in session.get_objects(_start_template()):
                match = _KEK_LABEL.match(item[Attribute.LABEL])
                if match and int(match.group(1)) in started:
                    at = _parse_start(bytes(cast("_Key", item)[Attribute.VALUE]))
                    started[int(match.group(1))] = at
            return started

        return self._run("key start listing", read)

    def mark_kek_started(self, version: int, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a KEK's start must be timezone-aware")
        self._run("key start record", lambda session: self._mark_started(session, version, at))

    def _mark_started(self, session: pkcs11.Session, version: int, at: datetime) -> None:
        if version not in self._versions(session):
            raise KeyProviderError(f"KEK version {version} is not available")
        # The key objects are not modifiable: the start is a data object of its own, replaced
        # whole (a crash in between leaves no start, read as unknown, which only delays).
        for old in session.get_objects(_start_template(version)):
            old.destroy()
        session.create_object(
            {
                **_start_template(version),
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.VALUE: at.astimezone(UTC).isoformat().encode(),
            }
        )

    # Wrapping -------------------------------------------------------------------------------

    def wrap(self, data_key: bytes, *, aad: bytes) -> WrappedKey:
        def wrap(session: pkcs11.Session) -> WrappedKey:
            versions = self._versions(session)
            if not versions:
                self._generate_kek(session, 1)
                versions = [1]
            version = versions[-1]
            keys = _secret_keys(session, label=kek_label(version))
            if not keys:  # retired between the listing and now: only by another process
                raise KeyProviderError(f"KEK version {version} is not available")
            iv = secrets.token_bytes(_IV_BYTES)
            sealed = keys[0].encrypt(
                data_key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad)
            )
            return WrappedKey(kek_version=version, blob=iv + sealed)

        return self._run("wrap", wrap)

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        iv, sealed = wrapped.blob[:_IV_BYTES], wrapped.blob[_IV_BYTES:]

        def unwrap(session: pkcs11.Session) -> bytes:
            keys = _secret_keys(session, label=kek_label(wrapped.kek_version))
            if not keys:
                raise KeyProviderError(f"KEK version {wrapped.kek_version} is not available")
            if len(iv) != _IV_BYTES or len(sealed) < _TAG_BYTES:
                raise KeyProviderError("the wrapped key does not unwrap")
            for key in keys:  # several only after a creation race; the tag picks the right one
                try:
                    return key.decrypt(
                        sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad)
                    )
                except _SESSION_LOST:
                    raise
                except PKCS11Error:
                    continue  # modules report a bad tag differently (SoftHSM: GeneralError)
            raise KeyProviderError("the wrapped key does not unwrap")

        return self._run("unwrap", unwrap)

    # Blind indexes --------------------------------------------------------------------------

    def blind_index(self, purpose: str, value: bytes) -> bytes:
        message = purpose.encode() + b"\x00" + value

        def index(session: pkcs11.Session) -> bytes:
            keys = _secret_keys(session, label=BLIND_INDEX_LABEL)
            if not keys:
                session.generate_key(
                    KeyType.GENERIC_SECRET,
                    256,
                    id=secrets.token_bytes(16),
                    label=BLIND_INDEX_LABEL,
                    store=True,
                    template=BLIND_INDEX_TEMPLATE,
                )
                keys = _secret_keys(session, label=BLIND_INDEX_LABEL)
            # After a creation race every process settles on the same key.
            key = min(keys, key=lambda candidate: bytes(candidate[Attribute.ID]))
            return key.sign(message, mechanism=Mechanism.SHA256_HMAC)

        return self._run("blind index", index)

    # Erasure journal -----------------------------------------------------------------------

    def journal_erasure(self, entry: ErasureEntry) -> None:
        def append(session: pkcs11.Session) -> None:
            session.create_object(
                {
                    **_journal_template(erasure_label(entry.resident_id)),
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.MODIFIABLE: False,
                    Attribute.VALUE: entry.line(),
                }
            )

        self._run("erasure journal append", append)

    def erasures(self) -> list[ErasureEntry]:
        def read(session: pkcs11.Session) -> list[bytes]:
            found = list(session.get_objects(_journal_template()))
            return [bytes(cast("_Key", item)[Attribute.VALUE]) for item in found]

        lines = self._run("erasure journal read", read)
        # Objects come in no defined order: oldest first by the time each entry carries.
        entries = parse_lines(line.rstrip(b"\n") for line in lines)
        return sorted(entries, key=lambda entry: entry.erased_at)

    def is_erased(self, resident_id: uuid.UUID) -> bool:
        def search(session: pkcs11.Session) -> bool:
            template = _journal_template(erasure_label(resident_id))
            return bool(list(session.get_objects(template)))

        return self._run("erasure journal search", search)
