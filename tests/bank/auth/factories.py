"""Small helpers to register clients and sign client assertions in tests."""

from __future__ import annotations

import secrets
import time
from datetime import date
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import Certification, ClientRegistry, Registration
from bank.auth.models import ClientKind, ClientStatus

ISSUER = "http://127.0.0.1:8000"
TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
CORPORATE_NUMBER = "7000012050002"  # 国税庁's own 法人番号: a valid check digit
PMARK = Certification(name="Pマーク", number="17000123", expires_on=date(2099, 3, 31))


def new_key(kind: str = "EC") -> ECKey | RSAKey | OKPKey:
    kid = secrets.token_hex(4)
    if kind == "RSA":
        return RSAKey.generate_key(2048, parameters={"kid": kid})
    if kind == "OKP":
        return OKPKey.generate_key("Ed25519", parameters={"kid": kid})
    return ECKey.generate_key("P-256", parameters={"kid": kid})


async def add_client(
    session: AsyncSession,
    *,
    kind: ClientKind = ClientKind.PARTNER,
    key: ECKey | RSAKey | OKPKey | None = None,
    scopes: tuple[str, ...] = ("partner:data",),
    active: bool = True,
    feeds: tuple[str, ...] = (),
) -> tuple[str, ECKey | RSAKey | OKPKey]:
    """A registered client whose key the caller holds (for real client assertions); a data
    source (`kind=ClientKind.SOURCE`) names the `feeds` it pushes."""
    key = key or new_key()
    registry = ClientRegistry(session)
    client = await registry.register(
        Registration(
            kind=kind,
            name="Sapporo Wellness KK",
            scopes=scopes,
            corporate_number=CORPORATE_NUMBER,
            contact_email="privacy-desk@wellness.example.jp",
            certifications=(PMARK,),
            jwks={"keys": [dict(key.as_dict(private=False))]},
            feeds=feeds,
        )
    )
    if active:
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
    return client.client_id, key


def assertion(
    client_id: str,
    key: ECKey | RSAKey | OKPKey,
    *,
    alg: str = "ES256",
    audience: str = TOKEN_ENDPOINT,
    lifetime_s: int = 60,
    jti: str | None = None,
    **overrides: Any,
) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime_s,
        "jti": jti or secrets.token_urlsafe(16),
        **overrides,
    }
    header = {"alg": alg, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[alg])


def token_form(client_assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
        **extra,
    }


async def add_app_client(
    session: AsyncSession, *, scopes: tuple[str, ...] = ("records:read", "account")
) -> str:
    """The residents' mobile app: a public client with a private-use redirect (RFC 8252)."""
    registry = ClientRegistry(session)
    client = await registry.register(
        Registration(
            kind=ClientKind.RESIDENT_APP,
            name="Sapporo Health app",
            scopes=scopes,
            redirect_uris=("jp.sapporo.bank.app:/oauth/callback",),
        )
    )
    await registry.set_status(client.client_id, ClientStatus.ACTIVE)
    return client.client_id
