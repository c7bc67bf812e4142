"""The authorization server's storage: the request's session, plus one independent commit."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, Uuid, column, select, table, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.cache import AuthCache
from bank.auth.endpoints import TokenView
from bank.auth.errors import InvalidToken
from bank.auth.grants import CODE_LIFETIME_S, GrantUser, IssuedCode, LiveRefreshToken
from bank.auth.guards import authenticate
from bank.auth.jwks import JwksFetcher
from bank.auth.keys import SigningKeys
from bank.auth.models import (
    AuthorizationCode,
    ClientKind,
    ClientStatus,
    OAuthClient,
    RefreshToken,
    RevokedAccessToken,
    TokenFamily,
)
from bank.auth.server import OAuthStore, RegisteredClient
from bank.crypto.tokens import hash_token, new_token
from bank.db import Database
from bank.logs import get_logger

log = get_logger("bank.auth")

# A resident stays signed in to the app for 30 days of inactivity, 90 days at most.
REFRESH_TOKEN_IDLE = timedelta(days=30)
FAMILY_LIFETIME = timedelta(days=90)

# The account a code or refresh token was issued to, read in the same statement: identity's
# table, named here as auth's foreign keys name it ("accounts.id"), because identity builds on
# auth and not the other way round (docs/architecture.md). Only what a grant decides on.
_accounts = table("accounts", column("id", Uuid), column("kind", Text), column("status", Text))


# Committed asynchronously (synchronous_commit off for this one statement's transaction): the
# WAL flush a durable commit waits for was ~0.7 ms, most of a token request. What a crash of the
# database can cost is the last fraction of a second of used `jti`s: an assertion used in that
# instant, captured, could be replayed until it expires (5 minutes at most). Nothing else the bank
# writes is committed this way. Run on the driver's connection (Database.driver_connection).
_REMEMBER_ASSERTION = """
    WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
    INSERT INTO used_client_assertions (client_id, jti, expires_at)
    SELECT $1::text, $2::text, $3::timestamptz FROM async_commit
    ON CONFLICT DO NOTHING
    RETURNING jti
"""


class DatabaseOAuthStore(OAuthStore):
    def __init__(
        self,
        session: AsyncSession,
        database: Database,
        jwks_fetcher: JwksFetcher,
        *,
        signing_keys: SigningKeys | None = None,
        issuer: str = "",
        cache: AuthCache | None = None,
    ) -> None:
        self._session = session
        # For reads of committed state and writes that must survive the request's rollback.
        self._database = database
        self._sessions = database.autocommit_sessions
        self._jwks_fetcher = jwks_fetcher
        self._signing_keys = signing_keys
        self._issuer = issuer
        self._cache = cache

    async def client(self, client_id: str) -> RegisteredClient | None:
        if self._cache is None:
            return await self._load_client(client_id)
        return await self._cache.get(("client", client_id), lambda: self._load_client(client_id))

    async def _load_client(self, client_id: str) -> RegisteredClient | None:
        # A read of committed state, outside the request's transaction: a client_credentials
        # request then never opens one (no BEGIN and COMMIT round trips).
        async with self._sessions() as session:
            row = await session.scalar(
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
        # A side commit (Database.side_commit's one-statement fast path, autocommitting: one
        # round trip): a `jti` stays used even if the token request then fails and rolls back,
        # so an assertion is never replayed.
        async with self._database.driver_connection() as connection:
            inserted = await connection.fetchval(_REMEMBER_ASSERTION, client_id, jti, expires_at)
        return inserted is not None

    async def client_keys(self, client: RegisteredClient) -> Mapping[str, Any]:
        if client.jwks is not None:
            return client.jwks
        if client.jwks_uri is not None:
            return await self._jwks_fetcher.fetch(client.jwks_uri)
        return {"keys": []}

    async def save_code(
        self,
        *,
        code: str,
        client_id: str,
        user: GrantUser,
        redirect_uri: str,
        scope: str,
        code_challenge: str,
        code_challenge_method: str,
    ) -> None:
        now = datetime.now(UTC)
        family = TokenFamily(
            id=new_token(16),
            account_id=user.account_id,
            client_id=client_id,
            expires_at=now + FAMILY_LIFETIME,
        )
        self._session.add(family)
        await self._session.flush()
        self._session.add(
            AuthorizationCode(
                code_hash=hash_token(code),
                family_id=family.id,
                client_id=client_id,
                account_id=user.account_id,
                redirect_uri=redirect_uri,
                scope=scope,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                expires_at=now + timedelta(seconds=CODE_LIFETIME_S),
            )
        )
        await self._session.flush()

    async def redeem_code(self, code: str, client_id: str) -> IssuedCode | None:
        now = datetime.now(UTC)
        # The row lock makes two concurrent redemptions take turns: the second sees `used_at`.
        row = (
            await self._session.execute(
                select(AuthorizationCode, TokenFamily, _accounts.c.kind, _accounts.c.status)
                .join(TokenFamily, TokenFamily.id == AuthorizationCode.family_id)
                .join(_accounts, _accounts.c.id == AuthorizationCode.account_id)
                .where(AuthorizationCode.code_hash == hash_token(code))
                .with_for_update(of=AuthorizationCode)
            )
        ).one_or_none()
        if row is None:
            return None
        stored, family, account_kind, account_status = row
        if stored.client_id != client_id:
            return None
        if stored.used_at is not None:
            await self._revoke_family(family.id, reason="code_replayed")
            log.warning("auth.code_replayed", client_id=client_id, sid=family.id)
            return None
        if stored.expires_at <= now or family.revoked_at is not None or account_status != "active":
            return None
        stored.used_at = now
        await self._session.flush()
        return IssuedCode(
            code_hash=stored.code_hash,
            client_id=stored.client_id,
            user=GrantUser(account_id=stored.account_id, kind=account_kind, family_id=family.id),
            redirect_uri=stored.redirect_uri,
            scope=stored.scope,
            code_challenge=stored.code_challenge,
            code_challenge_method=stored.code_challenge_method,
        )

    async def redeem_refresh_token(
        self, token: str, client_id: str | None
    ) -> LiveRefreshToken | None:
        now = datetime.now(UTC)
        row = (
            await self._session.execute(
                select(RefreshToken, TokenFamily, _accounts.c.kind, _accounts.c.status)
                .join(TokenFamily, TokenFamily.id == RefreshToken.family_id)
                .join(_accounts, _accounts.c.id == TokenFamily.account_id)
                .where(RefreshToken.token_hash == hash_token(token))
                .with_for_update(of=RefreshToken)
            )
        ).one_or_none()
        if row is None:
            return None
        stored, family, account_kind, account_status = row
        if family.client_id != client_id:
            return None
        if stored.used_at is not None:
            # A rotated token came back: whoever holds the family's tokens may be an attacker.
            await self._revoke_family(family.id, reason="refresh_token_reused")
            log.warning("auth.refresh_token_reused", client_id=client_id, sid=family.id)
            return None
        if (
            stored.expires_at <= now
            or family.revoked_at is not None
            or family.expires_at <= now
            or account_status != "active"
        ):
            return None
        stored.used_at = now
        await self._session.flush()
        return LiveRefreshToken(
            token_hash=stored.token_hash,
            client_id=family.client_id,
            user=GrantUser(account_id=family.account_id, kind=account_kind, family_id=family.id),
            scope=stored.scope,
        )

    async def save_refresh_token(self, token: str, *, family_id: str, scope: str) -> None:
        self._session.add(
            RefreshToken(
                token_hash=hash_token(token),
                family_id=family_id,
                scope=scope,
                expires_at=datetime.now(UTC) + REFRESH_TOKEN_IDLE,
            )
        )
        await self._session.flush()

    async def _revoke_family(self, family_id: str, *, reason: str) -> None:
        # Committed on its own: the request that detected the replay fails and rolls back.
        async with self._database.side_commit() as session:
            await session.execute(
                update(TokenFamily)
                .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
            )

    async def describe_token(self, token: str) -> TokenView | None:
        """An access token (JWT) or a refresh token, as introspection and revocation see it."""
        if token.count(".") == 2:
            return await self._describe_access_token(token)
        row = (
            await self._session.execute(
                select(RefreshToken, TokenFamily)
                .join(TokenFamily, TokenFamily.id == RefreshToken.family_id)
                .where(RefreshToken.token_hash == hash_token(token))
            )
        ).one_or_none()
        if row is None:
            return None
        stored, family = row
        now = datetime.now(UTC)
        active = (
            stored.used_at is None
            and stored.expires_at > now
            and family.revoked_at is None
            and family.expires_at > now
        )
        return TokenView(
            kind="refresh_token",
            client_id=family.client_id,
            active=active,
            token_id=family.id,
            expires_at=int(min(stored.expires_at, family.expires_at).timestamp()),
            claims={"sub": str(family.account_id), "scope": stored.scope, "sid": family.id},
        )

    async def _describe_access_token(self, token: str) -> TokenView | None:
        assert self._signing_keys is not None, "access tokens need the signing keys"
        try:
            principal = await authenticate(
                token,
                sessions=lambda: contextlib.nullcontext(self._session),
                keys=self._signing_keys,
                issuer=self._issuer,
                cache=self._cache,
            )
        except InvalidToken:
            return None  # forged, expired or revoked: nothing to describe
        claims: dict[str, Any] = {
            "sub": principal.subject,
            "scope": " ".join(sorted(principal.scopes)),
            "iat": principal.issued_at,
            "iss": self._issuer,
            "aud": principal.audience,
            "jti": principal.token_id,
            "ptype": principal.type.value,
        }
        if principal.session_id is not None:
            claims["sid"] = principal.session_id
        return TokenView(
            kind="access_token",
            client_id=principal.client_id,
            active=True,
            token_id=principal.token_id,
            expires_at=principal.expires_at,
            claims=claims,
        )

    async def revoke_token(self, token: TokenView) -> None:
        if token.kind == "refresh_token":
            await self._session.execute(
                update(TokenFamily)
                .where(TokenFamily.id == token.token_id, TokenFamily.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC), revoked_reason="revoked_by_client")
            )
        else:
            await self._session.execute(
                insert(RevokedAccessToken)
                .values(
                    jti=token.token_id,
                    expires_at=datetime.fromtimestamp(token.expires_at, UTC),
                )
                .on_conflict_do_nothing()
            )
        log.info("auth.token_revoked", client_id=token.client_id, kind=token.kind)
