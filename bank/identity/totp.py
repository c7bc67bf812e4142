"""Operators' second factor: TOTP (RFC 6238) with pyotp, and the scopes each operator role holds.

Codes are accepted for the current 30-second step or one step either side (clock drift), and
never twice: the last accepted step is remembered, so a code seen over a shoulder or replayed
from a log is useless (RFC 6238 §5.2). Secrets are sealed to their account.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterable
from datetime import datetime

import pyotp

from bank.errors import DomainError, ProblemType
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets

ISSUER_NAME = "City Information Bank"
STEP_SECONDS = 30
DRIFT_STEPS = 1

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "client_admin": frozenset({"admin:clients"}),
    "key_admin": frozenset({"admin:keys"}),
    "ethics_committee": frozenset({"ethics:review"}),
}


class UnknownRole(DomainError):
    problem = ProblemType(
        code="unknown-operator-role",
        status=422,
        title="Unknown operator role",
        description="Operator roles are " + ", ".join(sorted(ROLE_SCOPES)) + ".",
        title_ja="運用者のロールが不明です",
        description_ja="運用者のロールは " + "、".join(sorted(ROLE_SCOPES)) + " です。",
    )


def scopes_for_roles(roles: Iterable[str]) -> frozenset[str]:
    scopes: set[str] = set()
    for role in roles:
        if role not in ROLE_SCOPES:
            raise UnknownRole(
                f"Unknown role {role!r}; use one of {', '.join(sorted(ROLE_SCOPES))}."
            )
        scopes |= ROLE_SCOPES[role]
    return frozenset(scopes)


def new_totp_secret() -> str:
    return pyotp.random_base32(length=32)  # 160 bits, RFC 4226's recommendation


def _aad(account_id: uuid.UUID) -> str:
    return f"totp:{account_id}"


def seal_totp_secret(secrets: AccountSecrets, account_id: uuid.UUID, secret: str) -> bytes:
    return secrets.seal(secret.encode(), aad=_aad(account_id))


def open_totp_secret(secrets: AccountSecrets, account_id: uuid.UUID, sealed: bytes) -> str:
    return secrets.open(sealed, aad=_aad(account_id)).decode()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER_NAME
    )


def verify_totp(account: Account, code: str, secrets: AccountSecrets, *, now: datetime) -> bool:
    """True for a fresh valid code; records its step on the account (the caller commits)."""
    code = code.strip()
    if account.totp_secret_sealed is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(
        open_totp_secret(secrets, account.id, account.totp_secret_sealed), interval=STEP_SECONDS
    )
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if account.totp_last_step is not None and step <= account.totp_last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            account.totp_last_step = step
            return True
    return False
