"""Where the key store's rows live: beside the records, or in a database of their own.

By default the `keystore` schema of the main database holds the wrapped data keys, and every key
store statement runs in the caller's session: a first data key commits in one transaction with
the records it sealed, and an erasure's key deletion with its row deletions.

With `BANK_KEYSTORE_DATABASE_URL` the table lives in another database (another cluster, with its
own backups), so a base backup of the records cluster never holds a key. Two databases cannot
share a transaction, so the order of commits carries the guarantees instead:

- Sealing: the key store's transaction (new key or seal reservation) commits before the records
  it sealed are written. If the records' transaction then fails, a key (or a reserved count) is
  left with nothing sealed under it: harmless, the next push uses it. Never the reverse: no
  record is ever committed under a key that is not.
- Erasure: the erasure journal entry first, then the keys are destroyed (committed), then the
  rows. If the process dies in between, the rows that remain are ciphertext without keys, and
  the next reapply of the journal (start-up, `bank erasures reapply`) deletes them.
- Reads see committed keys only, which is all a committed record needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bank.db import Role, create_engine, make_session_factory
from bank.settings import Settings


class KeystoreDatabase:
    """The key store's sessions: the caller's own (shared) or its own engine's (separate)."""

    def __init__(self, engine: AsyncEngine | None = None) -> None:
        self._engine = engine
        self._writes: async_sessionmaker[AsyncSession] | None = None
        self._reads: async_sessionmaker[AsyncSession] | None = None
        if engine is not None:
            self._writes = make_session_factory(engine)
            autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._reads = make_session_factory(autocommit)

    @classmethod
    def from_settings(cls, settings: Settings, *, role: Role = "bank") -> KeystoreDatabase:
        url = settings.async_keystore_url()
        return cls(None if url is None else create_engine(url, settings, role=role))

    def __repr__(self) -> str:
        return f"KeystoreDatabase(separate={self.separate})"

    @property
    def separate(self) -> bool:
        return self._engine is not None

    def engine(self, records: AsyncEngine) -> AsyncEngine:
        """The engine the key store's table is reached on, given the records' engine."""
        return self._engine if self._engine is not None else records

    @asynccontextmanager
    async def writing(self, records: AsyncSession) -> AsyncIterator[AsyncSession]:
        """A session to change keys in: `records` itself when shared; else a transaction of the
        key store's own, committed when the block ends (rolled back if it raises)."""
        if self._writes is None:
            yield records
            return
        async with self._writes() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self, records: AsyncSession) -> AsyncIterator[AsyncSession]:
        """A session to read keys in: `records` itself when shared; else an autocommitting one
        (no BEGIN or COMMIT round trips on the read path)."""
        if self._reads is None:
            yield records
            return
        async with self._reads() as session:
            yield session

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
