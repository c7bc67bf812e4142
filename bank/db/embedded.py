"""An embedded PostgreSQL (from the `pgserver` wheel) for machines without a database server.

Used by `bank serve` when BANK_DATABASE_URL is unset and by the test suite when
BANK_TEST_DATABASE_URL is unset. It listens on a Unix socket inside the data directory only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from bank.logs import get_logger

log = get_logger("bank.db.embedded")

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "bank") -> Iterator[str]:
    """Start (or join) the server in `data_dir/postgres`; yield a libpq URL; stop it on exit."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"not a plain database name: {database!r}")
    # Imported here: it is only needed when no server URL is configured.
    from pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    try:
        # `database` matched _IDENTIFIER above, so quoting it here is safe.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        url: str = server.get_uri(database)
        log.info("db.embedded_started", data_dir=str(data_dir), database=database)
        yield url
    finally:
        server.cleanup()
        log.info("db.embedded_stopped")
