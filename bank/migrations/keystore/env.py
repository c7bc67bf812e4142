"""Alembic environment of the key store's own history: the `keystore` schema, wherever it lives.

The key store's table may live in a database of its own (`BANK_KEYSTORE_DATABASE_URL`), so its
schema has a history of its own, recorded in `keystore.alembic_version`, and is migrated against
the key store's database (by default the main one). The main history's revision 0005 created the
table before it could move; this history's first revision adopts it where it exists.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from bank.crypto.keystore import KEYSTORE_SCHEMA, DataKey

_MIGRATION_LOCK_KEY = 0x6B657973  # "keys": concurrent replicas migrate the key store once


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return type_ != "schema" or name == KEYSTORE_SCHEMA


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    # The version table lives in the schema it versions: it must exist before Alembic reads it.
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {KEYSTORE_SCHEMA}"))
    context.configure(
        connection=connection,
        target_metadata=DataKey.metadata,
        version_table_schema=KEYSTORE_SCHEMA,
        include_schemas=True,
        include_name=_include_name,
        include_object=lambda obj, name, type_, reflected, compare_to: (
            type_ != "table" or getattr(obj, "schema", None) == KEYSTORE_SCHEMA
        ),
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
