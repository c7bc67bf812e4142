"""Alembic environment: async engine, one advisory lock so concurrent replicas migrate once."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from bank.migrations.models import METADATA


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # procrastinate's tables come from its own pinned SQL, not from our models.
    return not (name or "").startswith("procrastinate_")


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # Our schemas: the records (default) and the key store, backed up separately.
    return type_ != "schema" or name in {None, "keystore"}


# Any value works as long as every process uses the same one.
_MIGRATION_LOCK_KEY = 0x62616E6B  # "bank"


def _run(connection: Connection) -> None:
    # All migrations run in one transaction (PostgreSQL DDL is transactional); the lock is held
    # until it commits, so a second replica waits and then finds nothing left to do.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    context.configure(
        connection=connection,
        target_metadata=list(METADATA),  # every package's tables
        compare_type=True,
        include_object=_include_object,
        include_schemas=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = create_async_engine(context.config.attributes["url"], poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_with_own_engine())
