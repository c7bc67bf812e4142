"""Authorization code + PKCE and refresh tokens for the residents' app, driven by authlib's
OAuth client from the metadata document; and every way a code or refresh token can be misused.

Requests commit for real: replay detection revokes a family in its own transaction while the
refused request rolls back, and the tests check that revocation stuck.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from litestar import Litestar, get
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.auth.guards import CurrentPrincipal, requires
from bank.auth.models import TokenFamily
from bank.auth.principals import PrincipalType
from tests.bank.auth.factories import add_app_client
from tests.bank.identity.flows import (
    PASSWORD,
    committed,
    new_email,
    query_of,
    sign_up_and_verify,
)
from tests.conftest import serve

REDIRECT_URI = "jp.sapporo.bank.app:/oauth/callback"


@get("/v1/test/my-records", guards=[requires(PrincipalType.RESIDENT, "records:read")])
async def my_records(principal: CurrentPrincipal) -> dict[str, str | None]:
    return {"subject": principal.subject, "sid": principal.session_id}


@pytest.fixture
async def api(committing_app: Litestar) -> Any:
    committing_app.register(my_records)
    async with serve(committing_app) as client:
        yield client


@pytest.fixture
async def app_client_id(engine: AsyncEngine) -> str:
    return await committed(engine, lambda s: add_app_client(s))


@pytest.fixture
async def signed_in(api: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine) -> str:
    """A verified resident whose browser (the `api` client's cookie jar) is signed in."""
    email = new_email()
    response = await sign_up_and_verify(api, engine, committing_app, email)
    assert response.status_code == 303
    return email


def _oauth(app: Litestar, client_id: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client_id,
        token_endpoint_auth_method="none",
        redirect_uri=REDIRECT_URI,
        scope="records:read account",
        code_challenge_method="S256",
        transport=httpx2.ASGITransport(app=cast("Any", app)),
    )


async def _authorize(api: httpx.AsyncClient, url: str) -> httpx.Response:
    """What the resident's browser does with the app's authorization URL."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    return await api.get(f"/{path}")


async def _code_flow(
    api: httpx.AsyncClient, app: Litestar, client_id: str
) -> tuple[AsyncOAuth2Client, dict[str, Any], str]:
    metadata = (await api.get("/.well-known/oauth-authorization-server")).json()
    oauth = _oauth(app, client_id)
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    redirect = await _authorize(api, url)
    assert redirect.status_code == 303, redirect.text
    location = redirect.headers["location"]
    assert location.startswith(REDIRECT_URI)
    params = query_of(location)
    assert params["state"] == state
    assert params["iss"] == metadata["issuer"]  # RFC 9207
    token = await oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    return oauth, token, location


async def _records(api: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await api.get("/v1/test/my-records", headers={"Authorization": f"Bearer {access_token}"})


async def _family_revoked(engine: AsyncEngine, sid: str) -> str | None:
    family = await committed(
        engine, lambda s: s.scalar(select(TokenFamily).where(TokenFamily.id == sid))
    )
    assert family is not None
    return family.revoked_reason


async def test_resident_app_signs_in_with_code_and_pkce_from_metadata(
    api: httpx.AsyncClient, committing_app: Litestar, app_client_id: str, signed_in: str
) -> None:
    oauth, token, _ = await _code_flow(api, committing_app, app_client_id)
    assert token["token_type"] == "Bearer"
    assert 0 < token["expires_in"] <= 600
    assert set(token["scope"].split()) == {"records:read", "account"}
    assert token["refresh_token"]
    response = await _records(api, token["access_token"])
    assert response.status_code == 200, response.text
    assert response.json()["sid"]
    await oauth.aclose()


async def test_unsigned_browser_is_sent_to_sign_in_and_back(
    api: httpx.AsyncClient, committing_app: Litestar, app_client_id: str
) -> None:
    oauth = _oauth(committing_app, app_client_id)
    url, _ = oauth.create_authorization_url(
        "http://127.0.0.1:8000/oauth/authorize", code_verifier=secrets.token_urlsafe(48)
    )
    response = await _authorize(api, url)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?return_to=%2Foauth%2Fauthorize%3F")
    page = await api.get(response.headers["location"])
    # The sign-in form may send the browser on to the app's registered redirect URI.
    assert "form-action 'self' jp.sapporo.bank.app:" in page.headers["content-security-policy"]


async def test_replayed_code_is_refused_and_revokes_what_it_issued(
    api: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    app_client_id: str,
    signed_in: str,
) -> None:
    oauth, token, location = await _code_flow(api, committing_app, app_client_id)
    sid = (await _records(api, token["access_token"])).json()["sid"]
    replay = await api.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": app_client_id,
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": "x" * 43,
        },
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert await _family_revoked(engine, sid) == "code_replayed"
    refused = await _records(api, token["access_token"])
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/invalid-token")
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    refresh = await api.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": app_client_id,
            "refresh_token": token["refresh_token"],
        },
    )
    assert refresh.json()["error"] == "invalid_grant"
    await oauth.aclose()


async def test_refresh_rotates_and_reuse_revokes_the_family(
    api: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    app_client_id: str,
    signed_in: str,
) -> None:
    oauth, first, _ = await _code_flow(api, committing_app, app_client_id)

    async def refresh(refresh_token: str) -> httpx.Response:
        return await api.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": app_client_id,
                "refresh_token": refresh_token,
            },
        )

    rotated = await refresh(first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    sid = (await _records(api, second["access_token"])).json()["sid"]

    reused = await refresh(first["refresh_token"])  # the rotated-out token, presented again
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert await _family_revoked(engine, sid) == "refresh_token_reused"
    # The legitimate holder's newest tokens die with the family.
    assert (await refresh(second["refresh_token"])).status_code == 400
    assert (await _records(api, second["access_token"])).status_code == 401
    await oauth.aclose()


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge_method": None}, "S256"),
        ({"scope": "records:read partner:data"}, "scope"),
    ],
)
async def test_authorization_requests_without_s256_pkce_are_refused(
    api: httpx.AsyncClient,
    app_client_id: str,
    signed_in: str,
    change: dict[str, str | None],
    description: str,
) -> None:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": app_client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "records:read",
        "state": "s-123",
        "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        **change,
    }
    response = await api.get(
        "/oauth/authorize", params={k: v for k, v in params.items() if v is not None}
    )
    assert response.status_code == 303
    back = query_of(response.headers["location"])
    assert back["error"] in {"invalid_request", "invalid_scope"}
    assert description in back.get("error_description", back["error"])
    assert back["state"] == "s-123"
    assert back["iss"] == "http://127.0.0.1:8000"
    assert "code" not in back


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI[:-1],  # one character shorter
        REDIRECT_URI + "x",
        REDIRECT_URI.replace("callback", "callbacK"),
        "https://evil.example/callback",
        None,
    ],
)
async def test_redirect_uri_must_match_exactly_and_errors_stay_on_the_bank(
    api: httpx.AsyncClient, app_client_id: str, signed_in: str, redirect_uri: str | None
) -> None:
    params = {
        "response_type": "code",
        "client_id": app_client_id,
        "scope": "records:read",
        "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
    }
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    response = await api.get("/oauth/authorize", params=params)
    assert response.status_code == 400  # a page on the bank, never a redirect to that URI
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


async def test_wrong_pkce_verifier_is_invalid_grant(
    api: httpx.AsyncClient, app_client_id: str, signed_in: str
) -> None:
    verifier = secrets.token_urlsafe(48)
    redirect = await api.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app_client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "records:read",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    code = query_of(redirect.headers["location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "client_id": app_client_id,
        "code": code,
        "redirect_uri": REDIRECT_URI,
    }
    missing = await api.post("/oauth/token", data=form)
    assert missing.json()["error"] == "invalid_request"
    wrong = await api.post("/oauth/token", data={**form, "code_verifier": "w" * 43})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert "access_token" not in wrong.json()


async def test_sign_out_and_revocation_end_the_session(
    api: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    app_client_id: str,
    signed_in: str,
) -> None:
    oauth, token, _ = await _code_flow(api, committing_app, app_client_id)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    introspected = await api.post(
        "/oauth/introspect", data={"client_id": app_client_id, "token": token["refresh_token"]}
    )
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == app_client_id

    signed_out = await api.post("/v1/me/sign-out", headers=headers)
    assert signed_out.status_code == 204
    assert (await _records(api, token["access_token"])).status_code == 401
    after = await api.post(
        "/oauth/introspect", data={"client_id": app_client_id, "token": token["refresh_token"]}
    )
    assert after.json() == {"active": False}

    # RFC 7009 revocation of a refresh token does the same for a second session.
    _, second, _ = await _code_flow(api, committing_app, app_client_id)
    revoked = await api.post(
        "/oauth/revoke",
        data={
            "client_id": app_client_id,
            "token": second["refresh_token"],
            "token_type_hint": "refresh_token",
        },
    )
    assert revoked.status_code == 200
    assert (await _records(api, second["access_token"])).status_code == 401
    await oauth.aclose()


async def test_introspection_tells_a_client_nothing_about_other_clients_tokens(
    api: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    app_client_id: str,
    signed_in: str,
) -> None:
    _, token, _ = await _code_flow(api, committing_app, app_client_id)
    other_app = await committed(engine, lambda s: add_app_client(s))
    for candidate in (token["access_token"], token["refresh_token"]):
        response = await api.post(
            "/oauth/introspect", data={"client_id": other_app, "token": candidate}
        )
        assert response.json() == {"active": False}
    own = await api.post(
        "/oauth/introspect", data={"client_id": app_client_id, "token": token["access_token"]}
    )
    body = own.json()
    assert body["active"] is True
    assert body["aud"] == "urn:city-bank:api:resident"
    assert body["scope"] == "account records:read"


async def test_password_change_ends_other_sessions_but_not_this_one(
    api: httpx.AsyncClient,
    committing_app: Litestar,
    app_client_id: str,
    signed_in: str,
) -> None:
    _, this, _ = await _code_flow(api, committing_app, app_client_id)
    _, other, _ = await _code_flow(api, committing_app, app_client_id)
    headers = {"Authorization": f"Bearer {this['access_token']}"}
    wrong = await api.put(
        "/v1/me/password",
        json={"current_password": "not it at all!!", "new_password": "another fine passphrase"},
        headers=headers,
    )
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    changed = await api.put(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "another fine passphrase"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    assert (await _records(api, this["access_token"])).status_code == 200
    assert (await _records(api, other["access_token"])).status_code == 401


async def test_logs_carry_no_secrets_or_personal_data(
    api: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    app_client_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email = new_email()
    await sign_up_and_verify(api, engine, committing_app, email)
    oauth, token, location = await _code_flow(api, committing_app, app_client_id)
    code = query_of(location)["code"]
    await api.post(  # a replay, which is logged as a warning
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": app_client_id,
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": "v" * 43,
        },
    )
    await oauth.aclose()
    logs = capsys.readouterr().out
    assert "auth.token_issued" in logs
    assert "auth.code_replayed" in logs
    for secret in (email, PASSWORD, code, token["access_token"], token["refresh_token"]):
        assert secret not in logs
