"""The key store's table, in a history of its own (adopted where the main history made it).

Revision ID: 2026_12_07_k001
Revises:
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_12_07_k001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # IF NOT EXISTS: in the main database the main history's 0005 made this table already, with
    # exactly this shape; in a key store database of its own it is made here.
    op.execute("CREATE SCHEMA IF NOT EXISTS keystore")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS keystore.data_keys (
            resident_id UUID NOT NULL,
            version INTEGER NOT NULL,
            wrapped_key BYTEA NOT NULL,
            kek_version INTEGER NOT NULL,
            seals BIGINT NOT NULL,
            created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
            retired_at TIMESTAMP WITH TIME ZONE,
            CONSTRAINT pk_data_keys PRIMARY KEY (resident_id, version)
        )
        """
    )


def downgrade() -> None:
    # Nothing: the table may be the main history's (0005 drops it there), and dropping a key
    # store's table is crypto-shredding every resident, never a schema step.
    pass
