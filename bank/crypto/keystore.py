"""Residents' data keys: generated here, wrapped by the KeyProvider, kept in the `keystore` schema.

The key store lives in its own PostgreSQL schema so it can be backed up on its own schedule and
left out of the records backups (`pg_dump --exclude-schema=keystore`): a stolen or restored
records dump never carries the keys that open it (docs/vault.md). Erasing a resident deletes
their key rows here, which makes every copy of their records, backups included, unreadable.

AES-GCM with random 96-bit nonces must not seal more than 2^32 messages under one key (NIST SP
800-38D §8.3). Each key counts the seals it has been handed out for, reserved per batch with one
UPDATE, and a key that reaches `MAX_SEALS_PER_KEY` (far below 2^32) is retired for sealing: the
next batch gets a new version. Old versions keep opening what they sealed.

No data key is ever made, and no seal reserved, for a resident the provider's erasure journal
names (ResidentErased): after a backup is restored the erased resident's account (and, from a
full backup, their keys) may be back until the journal is reapplied, and a new key would let
fresh data of theirs be sealed (issue 12). The check shares the provider round the key's wrap or
unwrap makes anyway.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.keystore_database import KeystoreDatabase
from bank.crypto.provider import KeyProvider, WrappedKey
from bank.crypto.provider_calls import ProviderCalls
from bank.crypto.providers import key_provider_from_settings
from bank.crypto.sealing import OpeningKeys, SealingKey
from bank.db import Role
from bank.db.base import Base
from bank.db.driver import DriverQuery
from bank.errors import DomainError, ProblemType
from bank.settings import Settings

KEYSTORE_SCHEMA = "keystore"
_TABLE = f"{KEYSTORE_SCHEMA}.data_keys"
MAX_SEALS_PER_KEY = 2**30


class DataKey(Base):
    __tablename__ = "data_keys"
    __table_args__ = {"schema": KEYSTORE_SCHEMA}  # noqa: RUF012 - SQLAlchemy's API

    resident_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_version: Mapped[int] = mapped_column(Integer)
    seals: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set when the key reached its seal budget: it still opens, it no longer seals.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Built once (bank.db.bulk says why). The first key: a dict of parameters named like the
# columns are its values ("raw": not an ORM bulk insert).
_FIRST_KEY = (
    insert(DataKey)
    .on_conflict_do_nothing(index_elements=["resident_id", "version"])
    .returning(DataKey.version)
    .execution_options(dml_strategy="raw")
)
# Count `count` seals on the resident's sealing key if its budget allows.
_RESERVE = (
    update(DataKey)
    .where(
        DataKey.resident_id == bindparam("resident"),
        DataKey.retired_at.is_(None),
        DataKey.seals + bindparam("count", type_=BigInteger()) <= bindparam("max_seals"),
    )
    .values(seals=DataKey.seals + bindparam("count", type_=BigInteger()))
    .returning(DataKey.version, DataKey.wrapped_key, DataKey.kek_version)
    .execution_options(synchronize_session=False)
)

# Every read of personal data runs it: on the driver (bank.db.driver).
_KEYS_OF = DriverQuery(
    select(DataKey.resident_id, DataKey.version, DataKey.wrapped_key, DataKey.kek_version).where(
        DataKey.resident_id == any_(cast(bindparam("residents"), ARRAY(Uuid())))
    )
)


class ResidentGone(DomainError):
    problem = ProblemType(
        code="account-gone",
        status=401,
        title="The account no longer exists",
        description="The account was erased while this request was under way; nothing was stored.",
        title_ja="アカウントはもうありません",
        description_ja="このリクエストの処理中にアカウントが削除されました。何も保存していません。",
    )


class ResidentErased(ResidentGone):
    """The erasure journal names the resident: no data key is ever made for them again (a
    restored backup may still hold their account until the journal is reapplied)."""


class KeyErased(Exception):
    """The resident's data key is gone (erasure): their records can never be opened again."""


class KeysLeftBehind(Exception):
    """The key store has a database of its own, but the records database still holds data
    keys: started so, every resident would read as erased and new keys would clash with the old
    ones. Move them first (deploy/README.md, "Moving the key store to a database of its own")."""


def data_key_aad(resident_id: uuid.UUID, version: int) -> bytes:
    """What a wrapped data key is bound to: its resident and its version."""
    return f"data-key:{resident_id}:{version}".encode()


class KeyStore:
    """Every method takes the caller's (records) session; the key store's statements run in it
    or, with a database of the key store's own, in a session of that (bank.crypto.
    keystore_database says what each guarantees then)."""

    def __init__(
        self,
        provider: KeyProvider,
        *,
        max_seals: int = MAX_SEALS_PER_KEY,
        database: KeystoreDatabase | None = None,
    ) -> None:
        # Every provider call goes through here: off the event loop when the provider blocks.
        self._provider = ProviderCalls(provider)
        self._max_seals = max_seals
        self.database = database or KeystoreDatabase()

    async def dispose(self) -> None:
        """Close the key store's own database connections (none when it shares the records')."""
        await self.database.dispose()

    async def refuse_keys_left_behind(self, records: AsyncSession) -> None:
        """With a database of its own, KeysLeftBehind if the records database's `keystore`
        schema still holds a data key (a process must not start then); one query."""
        if not self.database.separate:
            return
        if await records.scalar(select(func.to_regclass(_TABLE))) is None:
            return  # a records database without the schema holds no keys
        if await records.scalar(select(DataKey.resident_id).limit(1)) is not None:
            raise KeysLeftBehind(
                "BANK_KEYSTORE_DATABASE_URL is set but the records database still holds data "
                "keys in keystore.data_keys: move them to the key store's database first "
                "(deploy/README.md, 'Moving the key store to a database of its own')."
            )

    async def for_sealing(
        self, session: AsyncSession, resident_id: uuid.UUID, count: int, *, has_key: bool = True
    ) -> SealingKey:
        """A key with `count` seals reserved for this resident (a new one on first use or when
        the current one's budget is spent). `has_key=False` (the caller saw no key) tries the
        first key before a reservation; either order is correct whatever the caller saw."""
        async with self.database.writing(session) as keys:
            if not has_key and (first := await self._first_key(keys, resident_id, count)):
                return first
            if reserved := await self._reserve(keys, resident_id, count):
                return reserved
            if has_key and (first := await self._first_key(keys, resident_id, count)):
                return first
            return await self._new_key(keys, resident_id, count)

    async def for_opening(self, session: AsyncSession, resident_id: uuid.UUID) -> OpeningKeys:
        """Every version of the resident's key, unwrapped (KeyErased if there are none)."""
        opened = await self.for_opening_many(session, [resident_id])
        if resident_id not in opened:
            raise KeyErased("The resident has no data key.")
        return opened[resident_id]

    async def for_opening_many(
        self, session: AsyncSession, residents: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, OpeningKeys]:
        """Every version of each resident's key, unwrapped, in one query and one provider round
        (one thread hop for an HSM); a resident without keys (erased, or never sealed) is
        absent."""
        async with self.database.reading(session) as keys:
            rows = await _KEYS_OF.fetch(keys, {"residents": list(residents)})
        unwrapped = await self._provider.unwrap_all([_wrapped(*row) for row in rows])
        opened: dict[uuid.UUID, dict[int, AESGCM]] = {}
        for (resident_id, version, _, _), key in zip(rows, unwrapped, strict=True):
            opened.setdefault(resident_id, {})[version] = AESGCM(key)
        return dict(opened)

    async def blind_index(self, purpose: str, value: str) -> bytes:
        """HMAC of a secret identifier (card or member number) under the provider's own key."""
        return (await self.blind_indexes(purpose, [value]))[0]

    async def blind_indexes(self, purpose: str, values: Sequence[str]) -> list[bytes]:
        """`blind_index` of each value, in order, in one provider round."""
        return await self._provider.blind_indexes(purpose, [value.encode() for value in values])

    async def journal_erasure(self, entry: ErasureEntry) -> None:
        """Append to the provider's erasure journal (durable when this returns)."""
        await self._provider.journal_erasure(entry)

    async def erasures(self) -> list[ErasureEntry]:
        """Every journalled erasure, oldest first."""
        return await self._provider.erasures()

    async def destroy(self, session: AsyncSession, resident_id: uuid.UUID) -> int:
        """Crypto-shredding: delete every version of the resident's key."""
        async with self.database.writing(session) as keys:
            deleted = await keys.execute(delete(DataKey).where(DataKey.resident_id == resident_id))
        return int(deleted.rowcount or 0)  # type: ignore[attr-defined]

    async def holders(
        self, session: AsyncSession, residents: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Which of `residents` have a data key (one query, one array parameter)."""
        if not residents:
            return set()
        async with self.database.reading(session) as keys:
            rows = await _KEYS_OF.fetch(keys, {"residents": list(residents)})
        return {row[0] for row in rows}

    async def _first_key(
        self, session: AsyncSession, resident_id: uuid.UUID, count: int
    ) -> SealingKey | None:
        """The resident's very first key in one statement; None if any version exists already
        (then `_new_key` decides, under the resident's key lock)."""
        key = secrets.token_bytes(32)
        wrapped = await self._wrap_new(resident_id, key, 1)
        inserted = await session.scalar(
            _FIRST_KEY,
            {
                "resident_id": resident_id,
                "version": 1,
                "wrapped_key": wrapped.blob,
                "kek_version": wrapped.kek_version,
                "seals": count,
            },
        )
        return SealingKey(1, AESGCM(key)) if inserted is not None else None

    async def _new_key(
        self, session: AsyncSession, resident_id: uuid.UUID, count: int
    ) -> SealingKey:
        # Serialise key creation per resident: two concurrent first pushes must not both
        # create version 1 (the insert below would conflict) or skip a version.
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(str(resident_id), 17)))
        )
        versions = (
            await session.execute(
                select(DataKey.version, DataKey.seals, DataKey.retired_at).where(
                    DataKey.resident_id == resident_id
                )
            )
        ).all()
        if any(row.retired_at is None and row.seals + count <= self._max_seals for row in versions):
            # Another transaction made one while we waited for the lock (reservations do not
            # take the lock, so its budget may be spent again by now: then make the next one).
            again = await self._reserve(session, resident_id, count)
            if again is not None:
                return again
        if any(row.retired_at is None for row in versions):
            await session.execute(
                update(DataKey)
                .where(DataKey.resident_id == resident_id, DataKey.retired_at.is_(None))
                .values(retired_at=datetime.now(UTC))
                .execution_options(synchronize_session=False)
            )
        version = max((row.version for row in versions), default=0) + 1
        key = secrets.token_bytes(32)
        wrapped = await self._wrap_new(resident_id, key, version)
        await session.execute(
            insert(DataKey).values(
                resident_id=resident_id,
                version=version,
                wrapped_key=wrapped.blob,
                kek_version=wrapped.kek_version,
                seals=count,
            )
        )
        return SealingKey(version, AESGCM(key))

    async def _wrap_new(self, resident_id: uuid.UUID, key: bytes, version: int) -> WrappedKey:
        """Wrap a new data key unless the resident is journalled as erased (one provider round:
        one thread hop for an HSM); ResidentErased if they are."""

        def wrap(provider: KeyProvider) -> WrappedKey | None:
            if provider.is_erased(resident_id):
                return None
            return provider.wrap(key, aad=data_key_aad(resident_id, version))

        wrapped = await self._provider.run(wrap)
        if wrapped is None:
            raise ResidentErased("The account was erased; no data key is made for it again.")
        return wrapped

    async def _reserve(
        self, session: AsyncSession, resident_id: uuid.UUID, count: int
    ) -> SealingKey | None:
        """Count `count` seals on the resident's sealing key if its budget allows (one UPDATE)."""
        reservation = {"resident": resident_id, "count": count, "max_seals": self._max_seals}
        row = (await session.execute(_RESERVE, reservation)).one_or_none()
        if row is None:
            return None
        return SealingKey(row.version, AESGCM(await self._unwrap_for_sealing(resident_id, *row)))

    async def _unwrap(
        self, resident_id: uuid.UUID, version: int, blob: bytes, kek_version: int
    ) -> bytes:
        # A KeyProviderError here is an operational fault (a KEK missing), not an erasure.
        wrapped = _wrapped(resident_id, version, blob, kek_version)
        return (await self._provider.unwrap_all([wrapped]))[0]

    async def _unwrap_for_sealing(
        self, resident_id: uuid.UUID, version: int, blob: bytes, kek_version: int
    ) -> bytes:
        """The sealing key, unless the resident is journalled as erased (a restored key store
        not yet reapplied): nothing new is sealed for them either. One provider round."""
        wrapped, aad = _wrapped(resident_id, version, blob, kek_version)

        def unwrap(provider: KeyProvider) -> bytes | None:
            if provider.is_erased(resident_id):
                return None
            return provider.unwrap(wrapped, aad=aad)

        key = await self._provider.run(unwrap)
        if key is None:
            raise ResidentErased("The account was erased; nothing is sealed for it again.")
        return key


def _wrapped(
    resident_id: uuid.UUID, version: int, blob: bytes, kek_version: int
) -> tuple[WrappedKey, bytes]:
    """A stored data key as the provider unwraps it: the wrapped key and its associated data."""
    return WrappedKey(kek_version=kek_version, blob=blob), data_key_aad(resident_id, version)


def keystore_from_settings(settings: Settings, *, role: Role = "bank") -> KeyStore:
    """The key store a process uses: its provider, and its own database if one is configured
    (then `dispose` it when done, or use `opened_keystore`)."""
    return KeyStore(
        key_provider_from_settings(settings),
        database=KeystoreDatabase.from_settings(settings, role=role),
    )


@asynccontextmanager
async def opened_keystore(
    settings: Settings, *, role: Role = "bank-cli"
) -> AsyncIterator[KeyStore]:
    """`keystore_from_settings`, disposed on exit: for a command's whole run."""
    keys = keystore_from_settings(settings, role=role)
    try:
        yield keys
    finally:
        await keys.dispose()
