"""Database access: one async engine per process, one session per request or job."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bank.settings import Settings


@dataclass(frozen=True)
class Database:
    """The session factories the app uses, and the engine it owns (if it owns one).

    `sessions` open the request's (or job's) transaction. `autocommit_sessions` are for reads
    and side writes that stand on their own: each statement commits by itself, with no BEGIN or
    COMMIT round trips. The access-token guard reads revocations there, and the token endpoint
    records used assertion `jti`s there, which must stay recorded even when the request fails.
    Handed only `sessions` (tests bind them to their own rolled-back transaction), both are the
    same factory.
    """

    sessions: async_sessionmaker[AsyncSession]
    engine: AsyncEngine | None = None
    autocommit: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def connect(cls, settings: Settings, *, role: Role = "bank") -> Database:
        """The one way a process reaches the database: the web app (`bank`), the job worker
        (`bank-worker`) and commands (`bank-cli`) get the same engine settings and session
        factories; `role` names the process in pg_stat_activity (application_name)."""
        engine = create_engine(settings.async_database_url(), settings, role=role)
        return cls(
            sessions=make_session_factory(engine),
            engine=engine,
            autocommit=make_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")),
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(
        cls, settings: Settings, *, role: Role = "bank-cli"
    ) -> AsyncIterator[Database]:
        """`connect`, disposed on exit: for a command's or a script's whole run."""
        database = cls.connect(settings, role=role)
        try:
            yield database
        finally:
            await database.dispose()

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction, as a request has: committed when the block ends, rolled back when it
        raises. Jobs and commands open theirs here; HTTP requests get theirs from
        bank.http.transaction (committed as the response starts). Services inside only flush."""
        async with self.sessions() as session, session.begin():
            yield session

    @property
    def autocommit_sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.autocommit or self.sessions

    @contextlib.asynccontextmanager
    async def side_commit(self) -> AsyncIterator[AsyncSession]:
        """A transaction of its own for writes that must stay even when the caller's rolls back:
        throttle counters, a locked account, a revoked token family. Committed on a clean exit,
        rolled back on an error; the caller's unit of work is neither seen nor touched.

        The one way to commit on the side. A single hot-path statement may instead use
        `driver_connection` (autocommitting, no BEGIN or COMMIT): the used assertion `jti`s do.
        Handed only `sessions` (tests), the session joins the test's connection and its commit
        releases a savepoint, so what it wrote is still rolled back with the test.
        """
        async with self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """The driver's own (asyncpg) connection, autocommitting, from the same pool.

        For the few hot-path statements where SQLAlchemy's execution costs more than the
        statement: the token endpoint's used-`jti` record took ~0.35 ms through a session and
        ~0.15 ms this way (benchmarks/oauth_tokens.py). Statements use asyncpg's `$n` parameters.
        Handed only `sessions` (tests), the connection is a session's, committed at the end.
        """
        if self.autocommit is not None:
            async with self.autocommit.kw["bind"].connect() as connection:
                yield (await connection.get_raw_connection()).driver_connection
            return
        async with self.sessions() as session:
            connection = await session.connection()
            yield (await connection.get_raw_connection()).driver_connection
            await session.commit()

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


# The application_name of each kind of process, as pg_stat_activity shows it.
Role = Literal["bank", "bank-worker", "bank-cli"]


def create_engine(url: URL, settings: Settings, *, role: Role = "bank") -> AsyncEngine:
    """Every engine of the bank: UTC, the statement timeout from the settings, its role's name."""
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No pre-ping: it is a round trip on every checkout (~0.5 ms of a request here). A
        # connection the server dropped fails its one request with 503 + Retry-After, and the
        # disconnect makes SQLAlchemy discard every pooled connection older than it.
        pool_pre_ping=False,
        pool_recycle=1800,  # stay under idle timeouts of proxies and PgBouncer in between
        connect_args={
            "server_settings": {
                "application_name": role,
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "timezone": "UTC",
            }
        },
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are serialised after the commit.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
