"""client_credentials with private_key_jwt: the happy path through a real OAuth client library,
and every way a client assertion can be wrong."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey
from litestar import Litestar
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.auth.clients import ClientRegistry
from bank.auth.models import ClientKind, ClientStatus, OAuthClient, UsedAssertion
from tests.bank.auth.factories import (
    ISSUER,
    add_client,
    assertion,
    new_key,
    token_form,
)
from tests.conftest import serve


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib signs assertions valid for an hour; FAPI-minded servers (this one) accept
    minutes. A fresh claims dict per call also keeps each `jti` unique."""

    alg = "ES256"

    def sign(self, auth: Any, token_endpoint: str) -> str:
        signed: str = private_key_jwt_sign(
            auth.client_secret, auth.client_id, token_endpoint, self.alg, expires_in=60
        )
        return signed


async def _token(api: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await api.post("/oauth/token", data=form)


def _oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    return body


async def test_partner_gets_a_token_with_an_oauth_library_from_metadata(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    metadata = (await api.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == ISSUER
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]

    # authlib's client is built on httpx2; it reaches the app through httpx2's ASGI transport.
    transport = httpx2.ASGITransport(app=cast("Any", app))
    async with AsyncOAuth2Client(
        client_id=client_id,
        client_secret=key,
        token_endpoint_auth_method="private_key_jwt",
        scope="partner:data",
        transport=transport,
    ) as oauth:
        oauth.register_client_auth_method(ShortLivedPrivateKeyJWT(metadata["token_endpoint"]))
        token = await oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert 0 < token["expires_in"] <= 600
    assert token["scope"] == "partner:data"

    response = await api.get(
        "/v1/test/partner-data", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert response.status_code == 200
    assert response.json() == {"client_id": client_id, "type": "partner"}


@pytest.mark.parametrize("kind", ["EC", "RSA", "OKP"])
async def test_every_allowed_algorithm_authenticates(
    api: httpx.AsyncClient, db_session: AsyncSession, kind: str
) -> None:
    alg = {"EC": "ES256", "RSA": "PS256", "OKP": "EdDSA"}[kind]
    client_id, key = await add_client(db_session, key=new_key(kind))
    response = await _token(api, token_form(assertion(client_id, key, alg=alg)))
    assert response.status_code == 200, response.text


async def test_rs256_assertion_is_refused(api: httpx.AsyncClient, db_session: AsyncSession) -> None:
    client_id, key = await add_client(db_session, key=new_key("RSA"))
    response = await _token(api, token_form(assertion(client_id, key, alg="RS256")))
    _oauth_error(response, 401, "invalid_client")


async def test_replayed_assertion_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    once = assertion(client_id, key)
    assert (await _token(api, token_form(once))).status_code == 200
    _oauth_error(await _token(api, token_form(once)), 401, "invalid_client")


@pytest.mark.committing
async def test_one_assertion_sent_many_times_at_once_gets_one_token(
    committing_app: Litestar, engine: AsyncEngine
) -> None:
    """The `jti` is recorded while the token is minted; only the request whose record was new
    gets its token, however the requests interleave."""
    async with AsyncSession(engine) as session:
        client_id, key = await add_client(session)
        await session.commit()
    try:
        async with serve(committing_app) as api:
            form = token_form(assertion(client_id, key))
            answers = await asyncio.gather(*(_token(api, form) for _ in range(8)))
        assert sorted(a.status_code for a in answers) == [200] + [401] * 7
        assert all(a.json()["error"] == "invalid_client" for a in answers if a.status_code == 401)
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                delete(UsedAssertion).where(UsedAssertion.client_id == client_id)
            )
            await connection.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))


@pytest.mark.committing
async def test_jti_stays_used_even_when_the_token_request_fails(
    committing_app: Litestar, engine: AsyncEngine
) -> None:
    # Real commits: the request's transaction rolls back, the jti's own transaction must not.
    async with AsyncSession(engine) as session:
        client_id, key = await add_client(session)
        await session.commit()
    try:
        async with serve(committing_app) as api:
            signed = assertion(client_id, key, jti="jti-of-a-failed-request")
            failed = await _token(api, token_form(signed, scope="admin:clients"))
            _oauth_error(failed, 400, "invalid_scope")
            _oauth_error(await _token(api, token_form(signed)), 401, "invalid_client")
        async with AsyncSession(engine) as session:
            count = await session.scalar(
                select(func.count()).where(UsedAssertion.client_id == client_id)
            )
        assert count == 1
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                delete(UsedAssertion).where(UsedAssertion.client_id == client_id)
            )
            await connection.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))


async def test_assertion_signed_by_an_unregistered_key_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, _ = await add_client(db_session)
    intruder = new_key()
    response = await _token(api, token_form(assertion(client_id, intruder)))
    _oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "audience", ["https://elsewhere.example/token", f"{ISSUER}/oauth/token/", f"{ISSUER}/x"]
)
async def test_assertion_for_another_audience_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession, audience: str
) -> None:
    client_id, key = await add_client(db_session)
    response = await _token(api, token_form(assertion(client_id, key, audience=audience)))
    _oauth_error(response, 401, "invalid_client")


async def test_issuer_is_an_accepted_audience(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    response = await _token(api, token_form(assertion(client_id, key, audience=ISSUER)))
    assert response.status_code == 200


async def test_long_lived_assertion_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    response = await _token(api, token_form(assertion(client_id, key, lifetime_s=3600)))
    _oauth_error(response, 401, "invalid_client")


async def test_expired_assertion_within_skew_is_accepted_beyond_it_refused(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    within = assertion(client_id, key, lifetime_s=-30)
    assert (await _token(api, token_form(within))).status_code == 200
    beyond = assertion(client_id, key, lifetime_s=-120)
    _oauth_error(await _token(api, token_form(beyond)), 401, "invalid_client")


async def test_pending_and_suspended_clients_cannot_authenticate(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    pending_id, pending_key = await add_client(db_session, active=False)
    _oauth_error(
        await _token(api, token_form(assertion(pending_id, pending_key))), 401, "invalid_client"
    )


async def test_suspending_a_client_revokes_its_tokens_at_once(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    token = (await _token(api, token_form(assertion(client_id, key)))).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/v1/test/partner-data", headers=auth)).status_code == 200

    await ClientRegistry(db_session).set_status(client_id, ClientStatus.SUSPENDED)
    await db_session.commit()
    refused = await api.get("/v1/test/partner-data", headers=auth)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    _oauth_error(await _token(api, token_form(assertion(client_id, key))), 401, "invalid_client")


async def test_unregistered_scope_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session, scopes=("partner:data",))
    response = await _token(api, token_form(assertion(client_id, key), scope="partner:requests"))
    _oauth_error(response, 400, "invalid_scope")


async def test_shared_secret_methods_are_refused(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, _ = await add_client(db_session)
    response = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
    )
    _oauth_error(response, 401, "invalid_client")
    basic = await api.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "secret")
    )
    _oauth_error(basic, 401, "invalid_client")


async def test_data_source_gets_an_ingest_token_refused_on_partner_routes(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(
        db_session, kind=ClientKind.SOURCE, scopes=("ingest:transit",)
    )
    token = (await _token(api, token_form(assertion(client_id, key)))).json()["access_token"]
    response = await api.get("/v1/test/partner-data", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid-token"


async def test_token_endpoint_wants_a_form(api: httpx.AsyncClient) -> None:
    response = await api.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported-media-type"


def test_key_type_helper_makes_distinct_kids() -> None:
    assert isinstance(new_key(), ECKey)
    assert new_key().kid != new_key().kid
