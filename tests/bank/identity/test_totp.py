"""TOTP rules (pure): drift window, no code accepted twice, secrets sealed to their account."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.crypto.keyring import KeyringError, LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets
from bank.identity.totp import (
    STEP_SECONDS,
    UnknownRole,
    new_totp_secret,
    open_totp_secret,
    provisioning_uri,
    scopes_for_roles,
    seal_totp_secret,
    verify_totp,
)

# TOTP secrets are the keyring's; the key store is never used (it would make its KEK here).
SECRETS = AccountSecrets(
    LocalKeyring(bytes(range(32))),
    KeyStore(LocalKeyProvider(Path(tempfile.gettempdir()) / "bank-totp-unused")),
)
EPOCH = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _operator(secret: str) -> Account:
    account_id = uuid.uuid4()
    return Account(
        id=account_id,
        kind="operator",
        totp_secret_sealed=seal_totp_secret(SECRETS, account_id, secret),
        totp_last_step=None,
    )


def _code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).at(at)


@given(offset_s=st.integers(min_value=0, max_value=10**7), drift=st.sampled_from([-1, 0, 1]))
def test_codes_of_the_current_and_adjacent_steps_are_accepted_once(
    offset_s: int, drift: int
) -> None:
    secret = new_totp_secret()
    account = _operator(secret)
    now = EPOCH + timedelta(seconds=offset_s)
    code = _code(secret, now + timedelta(seconds=drift * STEP_SECONDS))
    assert verify_totp(account, code, SECRETS, now=now)
    assert not verify_totp(account, code, SECRETS, now=now)  # replay refused


@given(drift=st.sampled_from([-3, -2, 2, 3]))
def test_codes_outside_the_drift_window_are_refused(drift: int) -> None:
    secret = new_totp_secret()
    account = _operator(secret)
    code = _code(secret, EPOCH + timedelta(seconds=drift * STEP_SECONDS))
    if code in {_code(secret, EPOCH + timedelta(seconds=d * STEP_SECONDS)) for d in (-1, 0, 1)}:
        return  # a one-in-a-million collision with a valid code
    assert not verify_totp(account, code, SECRETS, now=EPOCH)


def test_an_older_code_after_a_newer_one_is_refused() -> None:
    secret = new_totp_secret()
    account = _operator(secret)
    assert verify_totp(account, _code(secret, EPOCH), SECRETS, now=EPOCH)
    older = _code(secret, EPOCH - timedelta(seconds=STEP_SECONDS))
    assert not verify_totp(account, older, SECRETS, now=EPOCH)


@given(code=st.text(max_size=8))
def test_malformed_or_wrong_codes_are_refused(code: str) -> None:
    secret = new_totp_secret()
    account = _operator(secret)
    valid = {_code(secret, EPOCH + timedelta(seconds=d * STEP_SECONDS)) for d in (-1, 0, 1)}
    if code.strip() in valid:
        return
    assert not verify_totp(account, code, SECRETS, now=EPOCH)
    assert account.totp_last_step is None


def test_a_sealed_secret_opens_only_for_its_account() -> None:
    secret = new_totp_secret()
    account = _operator(secret)
    assert account.totp_secret_sealed is not None
    assert open_totp_secret(SECRETS, account.id, account.totp_secret_sealed) == secret
    with pytest.raises(KeyringError):
        open_totp_secret(SECRETS, uuid.uuid4(), account.totp_secret_sealed)


def test_provisioning_uri_names_the_bank() -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ops@city.example.jp")
    assert uri.startswith("otpauth://totp/City%20Information%20Bank:ops%40city.example.jp?")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri


def test_roles_map_to_scopes_and_unknown_roles_are_refused() -> None:
    assert scopes_for_roles(["client_admin", "ethics_committee"]) == {
        "admin:clients",
        "ethics:review",
    }
    with pytest.raises(UnknownRole):
        scopes_for_roles(["superuser"])
