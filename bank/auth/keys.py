"""Token-signing keys: ES256 pairs with rotating `kid`s, private halves sealed at rest.

The newest unretired key signs. `rotate` retires it and creates the next one; a retired key stays
published in the JWKS until every token it signed has expired, so resource servers and partners
holding a cached JWKS never see a valid token they cannot verify.

Keys are created in a transaction of their own, committed before the key is cached or used: a key
created inside a request's transaction that then rolled back would sign tokens no JWKS publishes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bank.auth.models import SigningKey
from bank.crypto.keyring import LocalKeyring

SIGNING_ALG = "ES256"
# Longest token lifetime plus tolerated clock skew: how long a retired key stays published.
PUBLISH_AFTER_RETIREMENT = timedelta(seconds=600 + 60)
_CACHE_SECONDS = 30.0
_MIN_RELOAD_SECONDS = 1.0
# Serialises creating and rotating keys across processes: two replicas starting on an empty
# database end up signing with the one key whichever committed first.
_KEY_CREATION_LOCK = select(func.pg_advisory_xact_lock(func.hashtextextended("signing_keys", 0)))


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    key: ECKey

    def __repr__(self) -> str:
        return f"ActiveKey(kid={self.kid!r}, key=***)"


def _aad(kid: str) -> bytes:
    return f"signing-key:{kid}".encode()


class SigningKeys:
    """Loads, creates and rotates signing keys; caches what it read for a few seconds."""

    def __init__(self, keyring: LocalKeyring, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._keyring = keyring
        self._sessions = sessions
        self._active: ActiveKey | None = None
        self._active_loaded_at = 0.0
        self._loading = asyncio.Lock()
        self._public: dict[str, ECKey] = {}
        self._public_loaded_at = 0.0

    async def active(self, session: AsyncSession | None = None) -> ActiveKey:
        """The key that signs now, creating (and committing) the first one on a new database.

        Read and created in a transaction of its own: the caller's `session` is not used (it is
        accepted so callers holding one need not care), and what is cached is always committed.
        """
        if self._active is not None and (self._fresh() or self._loading.locked()):
            # While one request reloads, the others sign with the key it had: committed,
            # published, and valid for as long as tokens live even if rotated meanwhile. So a
            # burst of requests at the cache's expiry takes one extra connection, not one each.
            return self._active
        async with self._loading:
            if self._active is not None and self._fresh():
                return self._active
            async with self._sessions() as own, own.begin():
                row = await self._newest_unretired(own)
                if row is None:
                    await own.execute(_KEY_CREATION_LOCK)
                    # Another process may have created it while this one waited for the lock.
                    row = await self._newest_unretired(own) or await self._create(own)
                kid, sealed = row.kid, row.private_jwk_sealed
            return self._cache(kid, sealed)

    async def rotate(self) -> str:
        """Retire the signing key and create its successor, committed; returns the new `kid`."""
        async with self._sessions() as own, own.begin():
            await own.execute(_KEY_CREATION_LOCK)
            await own.execute(
                update(SigningKey)
                .where(SigningKey.retired_at.is_(None))
                .values(retired_at=datetime.now(UTC))
            )
            row = await self._create(own)
            kid, sealed = row.kid, row.private_jwk_sealed
        self._cache(kid, sealed)
        self._public_loaded_at = 0.0
        return kid

    def _fresh(self) -> bool:
        return time.monotonic() - self._active_loaded_at < _CACHE_SECONDS

    def _cache(self, kid: str, sealed: bytes) -> ActiveKey:
        """Remember a committed key as the one that signs."""
        private = json.loads(self._keyring.open(sealed, aad=_aad(kid)))
        self._active = ActiveKey(kid=kid, key=ECKey.import_key(private))
        self._active_loaded_at = time.monotonic()
        return self._active

    async def published(self, session: AsyncSession) -> list[dict[str, Any]]:
        """Public JWKs to publish: the signing key and retired keys whose tokens may live."""
        cutoff = datetime.now(UTC) - PUBLISH_AFTER_RETIREMENT
        rows = await session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
            .order_by(SigningKey.created_at.desc())
        )
        return [dict(row.public_jwk) for row in rows]

    async def public_key(self, session: AsyncSession, kid: str) -> ECKey | None:
        """The published key with this `kid`. An unknown `kid` reloads the set, at most once a
        second, so tokens with made-up `kid`s cannot turn into a database query each."""
        cached = self.cached_public_key(kid)
        if cached is not None:
            return cached
        if time.monotonic() - self._public_loaded_at < _MIN_RELOAD_SECONDS:
            return None
        self._public = {jwk["kid"]: ECKey.import_key(jwk) for jwk in await self.published(session)}
        self._public_loaded_at = time.monotonic()
        return self._public.get(kid)

    def cached_public_key(self, kid: str) -> ECKey | None:
        """Without I/O: the key if the set was loaded recently (the validation fast path)."""
        if time.monotonic() - self._public_loaded_at >= _CACHE_SECONDS:
            return None
        return self._public.get(kid)

    async def _newest_unretired(self, session: AsyncSession) -> SigningKey | None:
        return await session.scalar(
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc())
            .limit(1)
        )

    async def _create(self, session: AsyncSession) -> SigningKey:
        kid = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(6)}"
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": SIGNING_ALG, "use": "sig"})
        private = json.dumps(key.as_dict(private=True)).encode()
        row = SigningKey(
            kid=kid,
            alg=SIGNING_ALG,
            public_jwk=dict(key.as_dict(private=False)),
            private_jwk_sealed=self._keyring.seal(private, aad=_aad(kid)),
        )
        session.add(row)
        await session.flush()
        return row
