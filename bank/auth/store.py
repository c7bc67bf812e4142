"""The authorization server's storage: the request's session, plus one independent commit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bank.auth.jwks import JwksFetcher
from bank.auth.models import ClientKind, ClientStatus, OAuthClient, UsedAssertion
from bank.auth.server import OAuthStore, RegisteredClient


class DatabaseOAuthStore(OAuthStore):
    def __init__(
        self,
        session: AsyncSession,
        sessions: async_sessionmaker[AsyncSession],
        jwks_fetcher: JwksFetcher,
    ) -> None:
        self._session = session
        self._sessions = sessions
        self._jwks_fetcher = jwks_fetcher

    async def client(self, client_id: str) -> RegisteredClient | None:
        row = await self._session.scalar(
            select(OAuthClient).where(
                OAuthClient.client_id == client_id,
                OAuthClient.status == ClientStatus.ACTIVE.value,
            )
        )
        if row is None:
            return None
        return RegisteredClient(
            client_id=row.client_id,
            kind=ClientKind(row.kind),
            scopes=frozenset(row.scopes),
            redirect_uris=tuple(row.redirect_uris),
            jwks=row.jwks,
            jwks_uri=row.jwks_uri,
        )

    async def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        # Its own transaction: a `jti` stays used even if the token request then fails and the
        # request's transaction rolls back, so a captured assertion can never be replayed.
        async with self._sessions() as session:
            inserted = await session.scalar(
                insert(UsedAssertion)
                .values(client_id=client_id, jti=jti, expires_at=expires_at)
                .on_conflict_do_nothing()
                .returning(UsedAssertion.jti)
            )
            await session.commit()
        return inserted is not None

    async def client_keys(self, client: RegisteredClient) -> Mapping[str, Any]:
        if client.jwks is not None:
            return client.jwks
        if client.jwks_uri is not None:
            return await self._jwks_fetcher.fetch(client.jwks_uri)
        return {"keys": []}
