"""Which `aud` a client assertion may name: the issuer and the token endpoint anywhere, and the URL
of the endpoint that receives it (what authlib's client signs by default), only there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.controllers import INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH
from tests.bank.auth.factories import ISSUER, add_client, assertion, token_form

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's own signer with the audience it picks by default (the URL of the request),
    only shorter-lived than its hour: the bank accepts assertions of at most 5 minutes."""

    alg = "ES256"

    def sign(self, auth: Any, token_endpoint: str) -> str:
        signed: str = private_key_jwt_sign(
            auth.client_secret, auth.client_id, token_endpoint, self.alg, expires_in=60
        )
        return signed


@pytest.fixture
async def partner(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession
) -> AsyncIterator[AsyncOAuth2Client]:
    """A partner using authlib's client with private_key_jwt at every endpoint, no fixed aud."""
    client_id, key = await add_client(db_session)
    async with AsyncOAuth2Client(
        client_id=client_id,
        client_secret=key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
        scope="partner:data",
        transport=httpx2.ASGITransport(app=cast("Any", app)),
    ) as oauth:
        oauth.register_client_auth_method(ShortLivedPrivateKeyJWT())
        yield oauth


async def test_authlib_defaults_work_at_token_introspection_and_revocation(
    partner: AsyncOAuth2Client,
) -> None:
    token = await partner.fetch_token(f"{ISSUER}{TOKEN_PATH}", grant_type="client_credentials")
    access_token = token["access_token"]

    introspected = await partner.introspect_token(f"{ISSUER}{INTROSPECT_PATH}", token=access_token)
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True

    revoked = await partner.revoke_token(f"{ISSUER}{REVOKE_PATH}", token=access_token)
    assert revoked.status_code == 200, revoked.text
    after = await partner.introspect_token(f"{ISSUER}{INTROSPECT_PATH}", token=access_token)
    assert after.status_code == 200, after.text
    assert after.json() == {"active": False}


def _form(client_id: str, signed: str, path: str) -> dict[str, str]:
    if path == TOKEN_PATH:
        return token_form(signed)
    return {
        "token": "not-a-token",
        "client_assertion_type": _ASSERTION_TYPE,
        "client_assertion": signed,
    }


@pytest.mark.parametrize("path", [TOKEN_PATH, REVOKE_PATH, INTROSPECT_PATH])
@pytest.mark.parametrize("audience", [ISSUER, f"{ISSUER}{TOKEN_PATH}"])
async def test_issuer_and_token_endpoint_are_accepted_everywhere(
    api: httpx.AsyncClient, db_session: AsyncSession, path: str, audience: str
) -> None:
    client_id, key = await add_client(db_session)
    signed = assertion(client_id, key, audience=audience)
    response = await api.post(path, data=_form(client_id, signed, path))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("audience_path", "path"),
    [
        (REVOKE_PATH, TOKEN_PATH),
        (REVOKE_PATH, INTROSPECT_PATH),
        (INTROSPECT_PATH, TOKEN_PATH),
        (INTROSPECT_PATH, REVOKE_PATH),
        ("/oauth/authorize", TOKEN_PATH),
        ("/oauth/jwks", INTROSPECT_PATH),
    ],
)
async def test_an_assertion_for_another_endpoint_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession, audience_path: str, path: str
) -> None:
    client_id, key = await add_client(db_session)
    signed = assertion(client_id, key, audience=f"{ISSUER}{audience_path}")
    response = await api.post(path, data=_form(client_id, signed, path))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
