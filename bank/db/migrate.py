"""Alembic, driven from code: one migration history for every package, at `bank/migrations`, and
one for the key store's table, at `bank/migrations/keystore`, which may live in a database of
its own (bank.crypto.keystore_database)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
KEYSTORE_MIGRATIONS_DIR = MIGRATIONS_DIR / "keystore"
_VERSIONS = text("SELECT version_num FROM alembic_version")
_KEYSTORE_VERSIONS = text("SELECT version_num FROM keystore.alembic_version")


def alembic_config(
    *, url: URL | None = None, connection: Connection | None = None, keystore: bool = False
) -> Config:
    """A Config that runs against `connection` if given, else opens its own engine on `url`;
    `keystore`: the key store's history instead of the main one."""
    config = Config()
    location = KEYSTORE_MIGRATIONS_DIR if keystore else MIGRATIONS_DIR
    config.set_main_option("script_location", str(location))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = url
    config.attributes["connection"] = connection
    return config


def heads(*, keystore: bool = False) -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config(keystore=keystore)).get_heads())


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(connection=connection), revision)


def upgrade_keystore(connection: Connection) -> None:
    """The key store's history to its head, on the key store's database (`connection`)."""
    command.upgrade(alembic_config(connection=connection, keystore=True), "head")


def upgrade_all(connection: Connection) -> None:
    """Both histories to their heads on one database, the key store beside the records: what
    `bank db upgrade` does when the key store has no database of its own."""
    upgrade(connection)
    upgrade_keystore(connection)


def downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection=connection), revision)


async def current_revisions(
    connection: AsyncConnection, *, keystore: bool = False
) -> frozenset[str]:
    """Revisions recorded in the database (of the key store's history if `keystore`); empty if
    it was never migrated."""
    query = _KEYSTORE_VERSIONS if keystore else _VERSIONS
    try:
        async with connection.begin_nested():
            result = await connection.execute(query)
    except ProgrammingError:
        return frozenset()
    return frozenset(result.scalars())
