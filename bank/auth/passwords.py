"""Password policy and argon2id hashing for resident and operator accounts."""

from __future__ import annotations

import gzip
import os
import unicodedata
from functools import cache, partial
from importlib.resources import files

from anyio import CapacityLimiter
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from bank.errors import DomainError, ProblemType
from bank.threads import ThreadBound

MIN_LENGTH = 12
MAX_LENGTH = 256
# Shorter local parts ("bob", "ann") occur inside too many honest passphrases to refuse them.
_MIN_EMAIL_LOCAL_PART = 4

# RFC 9106's second recommended option (argon2id, t=3, m=64 MiB, p=4): the first one needs
# 2 GiB per hash, which a sign-in endpoint cannot afford under concurrent load.
_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


class WeakPassword(DomainError):
    """A new password breaks the policy. The detail names the rule, never the password."""

    problem = ProblemType(
        code="weak-password",
        status=422,
        title="Password too weak",
        description=(
            f"The new password must be {MIN_LENGTH} to {MAX_LENGTH} characters long, must not be a "
            "commonly used password or a single repeated character, and must not contain the "
            "name part of your email address."
        ),
        title_ja="パスワードが弱すぎます",
        description_ja=(
            f"新しいパスワードは {MIN_LENGTH}〜{MAX_LENGTH} 文字で、よく使われるパスワードや同じ"
            "文字の繰り返しではなく、メールアドレスの @ より前の部分を含まないものにしてください。"
        ),
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True only if `password` matches; a mismatch or an unreadable hash is simply False."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters and should be replaced at sign-in."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        # A hash we cannot even parse is certainly not one made with the current parameters.
        return True


@cache
def _dummy_hash() -> str:
    return hash_password("no account has this password; it only burns time")


def dummy_verify(password: str = "") -> bool:
    """Spend one verification's worth of time, then return False.

    Call it when the email matches no account, so the response time does not reveal which
    emails are registered.
    """
    verify_password(_dummy_hash(), password)
    return False


# -- off the event loop -------------------------------------------------------------------------
# One argon2id hash is ~0.1 s of CPU and 64 MiB: on the event loop it would stall every other
# request of the process. Requests hash in worker threads (argon2 releases the GIL), at most
# `BANK_PASSWORD_HASH_THREADS` at once, which also bounds the memory a burst of sign-ins can take.

_HASHING = ThreadBound(os.cpu_count() or 1)


def configure_hashing(threads: int | None) -> None:
    """Set how many hashes may run at once (BANK_PASSWORD_HASH_THREADS; None: one per core)."""
    _HASHING.resize(threads or os.cpu_count() or 1)


def hashing_limiter() -> CapacityLimiter:
    """The running loop's limiter every password hash and verification goes through."""
    return _HASHING.limiter()


async def hash_password_async(password: str) -> str:
    return await _HASHING.run(partial(hash_password, password))


async def verify_password_async(stored_hash: str, password: str) -> bool:
    """`verify_password` in the bounded thread pool (sign-in: this is what a request waits on)."""
    return await _HASHING.run(partial(verify_password, stored_hash, password))


async def dummy_verify_async(password: str = "") -> bool:
    return await _HASHING.run(partial(dummy_verify, password))


@cache
def _common_passwords() -> frozenset[str]:
    data = (files("bank.auth") / "data" / "common-passwords.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(folded for line in lines if (folded := line.strip().casefold()))


def _is_common(folded: str) -> bool:
    common = _common_passwords()
    # " password1234 " or "pass word 1234" is as guessable as the listed entry itself.
    candidates = {folded, folded.strip(), "".join(folded.split())}
    return not common.isdisjoint(candidates)


def check_new_password(password: str, *, email: str | None = None) -> None:
    """Raise `WeakPassword` unless `password` may be set as a new password.

    Messages are fixed strings: they must never echo the password (nor the email, which is PII)
    because details end up in responses and logs.
    """
    # NFKC first so full-width or compatibility forms cannot dodge the rules, and so the length
    # counts what the user sees (code points), which keeps Japanese passphrases fair.
    normalized = unicodedata.normalize("NFKC", password)
    if len(normalized) < MIN_LENGTH:
        raise WeakPassword(
            f"The password is too short: use at least {MIN_LENGTH} characters.",
            ja=f"パスワードが短すぎます。{MIN_LENGTH} 文字以上にしてください。",
            rule="too-short",
            min_length=MIN_LENGTH,
        )
    if len(normalized) > MAX_LENGTH:
        raise WeakPassword(
            f"The password is too long: use at most {MAX_LENGTH} characters.",
            ja=f"パスワードが長すぎます。{MAX_LENGTH} 文字以下にしてください。",
            rule="too-long",
            max_length=MAX_LENGTH,
        )
    if len(set(normalized)) == 1:
        raise WeakPassword(
            "The password is a single repeated character; choose a passphrase.",
            ja="同じ文字の繰り返しはパスワードに使えません。",
            rule="repeated-character",
        )
    folded = normalized.casefold()
    if email is not None:
        local_part = unicodedata.normalize("NFKC", email).rpartition("@")[0].strip().casefold()
        if len(local_part) >= _MIN_EMAIL_LOCAL_PART and local_part in folded:
            raise WeakPassword(
                "The password contains the name part of your email address; choose another.",
                ja="パスワードにメールアドレスの @ より前の部分が含まれています。",
                rule="contains-email",
            )
    if _is_common(folded):
        raise WeakPassword(
            "The password is on a list of commonly used passwords; choose another.",
            ja="よく使われるパスワードの一覧にあるパスワードです。別のものにしてください。",
            rule="common",
        )
