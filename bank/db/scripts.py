"""Run multi-statement SQL scripts from migrations (asyncpg prepares single statements only)."""

from __future__ import annotations

from pathlib import Path

from alembic import op
from sqlalchemy.util import await_only

SQL_DIR = Path(__file__).resolve().parent.parent / "migrations" / "sql"


def execute_sql_script(sql: str) -> None:
    """Execute `sql` with the simple query protocol on the migration's connection."""
    raw = op.get_bind().connection.driver_connection
    if raw is None:
        raise RuntimeError("migration connection is closed")
    await_only(raw.execute(sql))


def execute_sql_file(name: str) -> None:
    execute_sql_script((SQL_DIR / name).read_text(encoding="utf-8"))
