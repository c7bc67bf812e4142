"""The resource-server check: forged, expired, misdirected and revoked tokens are refused."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from litestar import Litestar
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import ClientRegistry
from bank.auth.errors import InvalidToken
from bank.auth.keys import ActiveKey, SigningKeys
from bank.auth.models import ClientStatus, RevokedAccessToken, SigningKey, TokenFamily
from bank.auth.principals import AUDIENCES, PrincipalType
from bank.auth.tokens import mint_access_token, validate_access_token
from bank.identity.models import Account
from tests.bank.auth.factories import ISSUER, add_app_client, add_client


async def _key(app: Litestar, session: AsyncSession) -> ActiveKey:
    keys: SigningKeys = app.state.signing_keys
    return await keys.active(session)


@dataclass(frozen=True)
class SignedInApp:
    """The residents' app with one live session (TokenFamily) whose id resident tokens carry."""

    client_id: str
    session_id: str


def _mint(
    key: ActiveKey, principal: PrincipalType, client: str | SignedInApp, **changes: Any
) -> str:
    scopes = changes.pop("scopes", ["records:read", "partner:data"])
    client_id, session_id = (
        (client.client_id, client.session_id) if isinstance(client, SignedInApp) else (client, None)
    )
    token, _ = mint_access_token(
        key,
        issuer=changes.pop("issuer", ISSUER),
        principal_type=principal,
        subject=changes.pop("subject", "resident-7f3a"),
        client_id=client_id,
        scopes=scopes,
        now=changes.pop("now", int(time.time())),
        ttl_s=changes.pop("ttl_s", 600),
        session_id=changes.pop("session_id", session_id),
    )
    return token


def _resign(key: ECKey | OctKey, header: dict[str, Any], claims: dict[str, Any], alg: str) -> str:
    return jwt.encode(header, claims, key, algorithms=[alg])


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def _call(api: httpx.AsyncClient, token: str, path: str = "/v1/test/me") -> httpx.Response:
    return await api.get(path, headers={"Authorization": f"Bearer {token}"})


def _refused(response: httpx.Response, status: int = 401) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    return challenge


@pytest.fixture
async def resident_app(db_session: AsyncSession) -> SignedInApp:
    client_id = await add_app_client(db_session)
    account = Account(
        kind="resident", email_index=secrets.token_hex(16), email_sealed=b"-", password_hash="!"
    )
    db_session.add(account)
    await db_session.flush()
    family = TokenFamily(
        id=secrets.token_urlsafe(16),
        account_id=account.id,
        client_id=client_id,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    db_session.add(family)
    await db_session.flush()
    return SignedInApp(client_id, family.id)


async def test_valid_resident_token_is_admitted(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    token = _mint(await _key(app, db_session), PrincipalType.RESIDENT, resident_app)
    response = await _call(api, token)
    assert response.status_code == 200
    assert response.json() == {"subject": "resident-7f3a"}


async def test_a_resident_token_naming_no_session_is_refused(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    token = _mint(key, PrincipalType.RESIDENT, resident_app, session_id=None)
    assert "invalid_token" in _refused(await _call(api, token))
    unknown = _mint(key, PrincipalType.RESIDENT, resident_app, session_id="no-such-session")
    assert "invalid_token" in _refused(await _call(api, unknown))


async def test_missing_token_asks_for_one(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/test/me")
    assert _refused(response) == 'Bearer realm="city-bank"'
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "bearer a b", "Token abc"])
async def test_other_schemes_are_refused(api: httpx.AsyncClient, header: str) -> None:
    response = await api.get("/v1/test/me", headers={"Authorization": header})
    assert 'error="invalid_token"' in _refused(response)


async def test_alg_none_is_refused(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    good = _mint(await _key(app, db_session), PrincipalType.RESIDENT, resident_app)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt","kid":"x"}').rstrip(b"=")
    forged = f"{header.decode()}.{good.split('.')[1]}."
    assert 'error="invalid_token"' in _refused(await _call(api, forged))


async def test_hs256_signed_with_the_public_key_is_refused(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    good = _mint(key, PrincipalType.RESIDENT, resident_app)
    public_as_secret = OctKey.import_key(json.dumps(key.key.as_dict(private=False)).encode())
    forged = _resign(
        public_as_secret,
        {"alg": "HS256", "typ": "at+jwt", "kid": key.kid},
        _claims(good),
        "HS256",
    )
    _refused(await _call(api, forged))


async def test_token_signed_by_an_unknown_key_is_refused(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    rogue = ECKey.generate_key("P-256")
    claims = _claims(_mint(key, PrincipalType.RESIDENT, resident_app))
    for kid in (key.kid, "unknown-kid"):  # a known kid with the wrong key, and an unknown kid
        forged = _resign(rogue, {"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, "ES256")
        _refused(await _call(api, forged))


async def test_plain_jwt_type_is_refused(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    claims = _claims(_mint(key, PrincipalType.RESIDENT, resident_app))
    forged = _resign(key.key, {"alg": "ES256", "typ": "JWT", "kid": key.kid}, claims, "ES256")
    _refused(await _call(api, forged))


@pytest.mark.parametrize(
    "change",
    [
        {"issuer": "https://evil.example"},
        {"now": int(time.time()) - 3600},  # expired
        {"now": int(time.time()) + 3600},  # not valid yet (nbf and iat in the future)
    ],
)
async def test_wrong_issuer_expired_and_future_tokens_are_refused(
    app: Litestar,
    api: httpx.AsyncClient,
    db_session: AsyncSession,
    resident_app: SignedInApp,
    change: dict[str, Any],
) -> None:
    token = _mint(await _key(app, db_session), PrincipalType.RESIDENT, resident_app, **change)
    _refused(await _call(api, token))


async def test_audience_must_match_principal_type(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    claims = _claims(_mint(key, PrincipalType.RESIDENT, resident_app))
    claims["aud"] = AUDIENCES[PrincipalType.PARTNER]
    forged = _resign(key.key, {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, "ES256")
    _refused(await _call(api, forged))


async def test_resident_token_on_partner_route_and_partner_token_on_resident_route(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    partner_id, _ = await add_client(db_session)
    resident_token = _mint(key, PrincipalType.RESIDENT, resident_app)
    partner_token = _mint(key, PrincipalType.PARTNER, partner_id)
    _refused(await _call(api, resident_token, "/v1/test/partner-data"))
    _refused(await _call(api, partner_token, "/v1/test/me"))
    assert (await _call(api, partner_token, "/v1/test/partner-data")).status_code == 200


async def test_missing_scope_is_403_insufficient_scope(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    key = await _key(app, db_session)
    token = _mint(key, PrincipalType.RESIDENT, resident_app, scopes=["account"])
    challenge = _refused(await _call(api, token), status=403)
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="records:read"' in challenge


async def test_revoked_access_token_is_refused(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    token = _mint(await _key(app, db_session), PrincipalType.RESIDENT, resident_app)
    assert (await _call(api, token)).status_code == 200
    db_session.add(
        RevokedAccessToken(
            jti=_claims(token)["jti"], expires_at=datetime.now(UTC) + timedelta(minutes=10)
        )
    )
    await db_session.commit()
    _refused(await _call(api, token))


async def test_rotation_keeps_old_tokens_valid_and_publishes_both_keys(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession, resident_app: SignedInApp
) -> None:
    keys: SigningKeys = app.state.signing_keys
    old = await keys.active(db_session)
    old_token = _mint(old, PrincipalType.RESIDENT, resident_app)
    new_kid = await keys.rotate()
    new = await keys.active(db_session)
    assert new.kid == new_kid != old.kid

    published = {key["kid"] for key in (await api.get("/oauth/jwks")).json()["keys"]}
    assert {old.kid, new.kid} <= published
    assert (await _call(api, old_token)).status_code == 200
    assert (await _call(api, _mint(new, PrincipalType.RESIDENT, resident_app))).status_code == 200

    # Once every token of the old key has expired, it is no longer published.
    await db_session.execute(
        update(SigningKey)
        .where(SigningKey.kid == old.kid)
        .values(retired_at=datetime.now(UTC) - timedelta(hours=1))
    )
    await db_session.commit()
    published = {key["kid"] for key in await keys.published(db_session)}
    assert old.kid not in published
    assert new.kid in published


async def test_jwks_publishes_public_keys_only(api: httpx.AsyncClient) -> None:
    body = (await api.get("/oauth/jwks")).json()
    assert body["keys"]
    for key in body["keys"]:
        assert key["kty"] == "EC"
        assert key["alg"] == "ES256"
        assert "d" not in key


_SIGNER = ActiveKey(kid="k1", key=ECKey.generate_key("P-256", parameters={"kid": "k1"}))
_GOOD = _mint(_SIGNER, PrincipalType.RESIDENT, "app-1")


@given(
    position=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=33, max_codepoint=126),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_altered_token_is_refused_cleanly(position: int, replacement: str) -> None:
    index = position % len(_GOOD)
    altered = _GOOD[:index] + replacement + _GOOD[index + 1 :]
    if altered == _GOOD:
        return
    try:
        principal = validate_access_token(
            altered, key_for=lambda _: _SIGNER.key, issuer=ISSUER, now=int(time.time())
        )
    except InvalidToken:
        return
    # Base64url has a few spare bits in its last character: only those may survive.
    assert index == len(_GOOD) - 1 or altered.split(".")[:2] == _GOOD.split(".")[:2]
    assert principal.client_id == "app-1"


async def test_token_from_the_second_of_a_suspension_stays_revoked_after_reactivation(
    app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    partner_id, _ = await add_client(db_session)
    registry = ClientRegistry(db_session)
    before = int(time.time())
    await registry.set_status(partner_id, ClientStatus.SUSPENDED)
    await registry.set_status(partner_id, ClientStatus.ACTIVE)
    key = await _key(app, db_session)
    # Issued in the same (whole) second as the suspension: iat cannot tell it from an earlier one.
    same_second = _mint(key, PrincipalType.PARTNER, partner_id, now=before)
    assert "invalid_token" in _refused(await _call(api, same_second, "/v1/test/partner-data"))
    later = _mint(key, PrincipalType.PARTNER, partner_id, now=before + 2)
    assert (await _call(api, later, "/v1/test/partner-data")).status_code == 200
