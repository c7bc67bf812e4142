"""The app plus a partner-only test route, and tokens for every kind of caller."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar, get
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import ClientRegistry, Registration
from bank.auth.guards import CurrentPrincipal, requires
from bank.auth.keys import ActiveKey, SigningKeys
from bank.auth.models import ClientKind, ClientStatus
from bank.auth.principals import PrincipalType
from bank.auth.tokens import mint_access_token
from tests.bank.auth.factories import ISSUER
from tests.conftest import serve

OPERATOR_SUBJECT = "3f1c2a9e-8d4b-4c6a-9e1f-2b7d5a0c4e81"


@get("/v1/test/partner-data", guards=[requires(PrincipalType.PARTNER, "partner:data")])
async def partner_data(principal: CurrentPrincipal) -> dict[str, str]:
    return {"client_id": principal.client_id}


@pytest.fixture
async def api(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    app.register(partner_data)
    async with serve(app) as client:
        yield client


@dataclass(frozen=True)
class Tokens:
    """Mints access tokens with the app's own signing key."""

    key: ActiveKey
    console_id: str

    def bearer(
        self, principal_type: PrincipalType, client_id: str, scopes: list[str], subject: str
    ) -> dict[str, str]:
        token, _ = mint_access_token(
            self.key,
            issuer=ISSUER,
            principal_type=principal_type,
            subject=subject,
            client_id=client_id,
            scopes=scopes,
            now=int(time.time()),
            ttl_s=600,
        )
        return {"Authorization": f"Bearer {token}"}

    def operator(self, scopes: tuple[str, ...] = ("admin:clients",)) -> dict[str, str]:
        return self.bearer(PrincipalType.OPERATOR, self.console_id, list(scopes), OPERATOR_SUBJECT)


@pytest.fixture
async def tokens(app: Litestar, api: httpx.AsyncClient, db_session: AsyncSession) -> Tokens:
    registry = ClientRegistry(db_session)
    console = await registry.register(
        Registration(
            kind=ClientKind.OPERATOR_CONSOLE,
            name="Operators' console",
            scopes=("admin:clients", "admin:keys"),
            redirect_uris=("https://console.bank.example.jp/oauth/callback",),
        )
    )
    await registry.set_status(console.client_id, ClientStatus.ACTIVE)
    keys: SigningKeys = app.state.signing_keys  # set by the lifespan `api` started
    key = await keys.active(db_session)
    await db_session.commit()
    return Tokens(key=key, console_id=console.client_id)
