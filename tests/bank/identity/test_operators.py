"""Operators sign in to the console with a password and a TOTP code; their tokens carry only
the scopes their roles give; residents cannot use the console and the console needs the code."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pyotp
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from litestar import Litestar, get
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.auth.clients import ClientRegistry, Registration
from bank.auth.guards import CurrentPrincipal, requires
from bank.auth.models import ClientKind, ClientStatus
from bank.auth.principals import PrincipalType
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.providers import key_provider_from_settings
from bank.identity.accounts import create_account
from bank.identity.protect import AccountSecrets
from bank.identity.totp import new_totp_secret, seal_totp_secret
from bank.settings import Settings
from tests.bank.identity.flows import (
    PASSWORD,
    client_from,
    committed,
    new_address,
    new_email,
    post_form,
    query_of,
    sign_up_and_verify,
)
from tests.conftest import serve

CONSOLE_REDIRECT = "https://console.city-bank.example.jp/callback"


@get("/v1/test/admin-clients", guards=[requires(PrincipalType.OPERATOR, "admin:clients")])
async def admin_clients(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"subject": principal.subject, "scopes": sorted(principal.scopes)}


@pytest.fixture
async def api(committing_app: Litestar) -> Any:
    committing_app.register(admin_clients)
    # From an address of its own: see tests/bank/identity/conftest.py.
    async with serve(committing_app), client_from(committing_app, new_address()) as client:
        yield client


@pytest.fixture
async def console(engine: AsyncEngine) -> str:
    async def register(session: AsyncSession) -> str:
        registry = ClientRegistry(session)
        client = await registry.register(
            Registration(
                kind=ClientKind.OPERATOR_CONSOLE,
                name="Operators' console",
                scopes=("admin:clients", "admin:keys", "ethics:review"),
                redirect_uris=(CONSOLE_REDIRECT,),
            )
        )
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        return client.client_id

    return await committed(engine, register)


@pytest.fixture
async def operator(engine: AsyncEngine, settings: Settings) -> tuple[str, str]:
    """An operator with the client_admin role; returns (email, TOTP secret)."""
    email, secret, account_id = new_email(), new_totp_secret(), uuid.uuid4()
    account_secrets = AccountSecrets(
        LocalKeyring.from_settings(settings), KeyStore(key_provider_from_settings(settings))
    )

    async def add(session: AsyncSession) -> None:
        await create_account(
            session,
            account_secrets,
            kind="operator",
            email=email,
            password=PASSWORD,
            roles=("client_admin",),
            totp_secret_sealed=seal_totp_secret(account_secrets, account_id, secret),
            verified_at=datetime.now(UTC),
            account_id=account_id,
        )

    await committed(engine, add)
    return email, secret


def _authorize_params(client_id: str, verifier: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CONSOLE_REDIRECT,
        "scope": "admin:clients ethics:review",
        "state": "console-state",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }


async def test_operator_signs_in_with_totp_and_gets_role_scopes_only(
    api: httpx.AsyncClient, console: str, operator: tuple[str, str]
) -> None:
    email, secret = operator
    verifier = secrets.token_urlsafe(48)
    params = _authorize_params(console, verifier)
    first = await api.get("/oauth/authorize", params=params)
    return_to = query_of(first.headers["location"])["return_to"]

    signed = await post_form(
        api, "/signin", {"email": email, "password": PASSWORD, "return_to": return_to}
    )
    assert signed.status_code == 303
    assert signed.headers["location"].startswith("/signin/totp?")
    # Password alone is not enough for the console.
    assert (
        (await api.get("/oauth/authorize", params=params))
        .headers["location"]
        .startswith("/signin?")
    )

    totp_page = signed.headers["location"]
    wrong = await post_form(
        api, "/signin/totp", {"code": "000000", "return_to": return_to}, page=totp_page
    )
    assert wrong.status_code == 401
    code = pyotp.TOTP(secret).now()
    passed = await post_form(
        api, "/signin/totp", {"code": code, "return_to": return_to}, page=totp_page
    )
    assert passed.status_code == 303
    assert passed.headers["location"] == return_to
    replayed = await post_form(
        api, "/signin/totp", {"code": code, "return_to": return_to}, page=totp_page
    )
    assert replayed.status_code == 401  # the same code never works twice

    back = await api.get(passed.headers["location"])
    assert back.status_code == 303
    answer = query_of(back.headers["location"])
    token = await api.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": console,
            "code": answer["code"],
            "redirect_uri": CONSOLE_REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["scope"] == "admin:clients"  # ethics:review was asked for, not granted
    response = await api.get(
        "/v1/test/admin-clients", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["scopes"] == ["admin:clients"]


async def test_residents_cannot_use_the_console(
    api: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine, console: str
) -> None:
    await sign_up_and_verify(api, engine, committing_app, new_email())  # signed in as resident
    response = await api.get(
        "/oauth/authorize", params=_authorize_params(console, secrets.token_urlsafe(48))
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?")  # asks for an operator
