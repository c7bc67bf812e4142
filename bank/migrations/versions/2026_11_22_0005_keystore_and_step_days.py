"""The key store schema (residents' wrapped data keys) and the steps records.

Revision ID: 2026_11_22_0005
Revises: 2026_11_22_0004
Created: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_22_0005"
down_revision: str | None = "2026_11_22_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Its own schema: records backups exclude it (pg_dump --exclude-schema=keystore).
    op.execute("CREATE SCHEMA IF NOT EXISTS keystore")
    op.create_table(
        "data_keys",
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("seals", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("resident_id", "version", name=op.f("pk_data_keys")),
        schema="keystore",
    )
    op.create_table(
        "step_days",
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["accounts.id"],
            name=op.f("fk_step_days_resident_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", "day", "source", name=op.f("pk_step_days")),
    )
    op.create_table(
        "step_day_revisions",
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column(
            "replaced_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["accounts.id"],
            name=op.f("fk_step_day_revisions_resident_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "resident_id", "day", "source", "revision", name=op.f("pk_step_day_revisions")
        ),
    )


def downgrade() -> None:
    op.drop_table("step_day_revisions")
    op.drop_table("step_days")
    op.drop_table("data_keys", schema="keystore")
    # The key store's own history (bank/migrations/keystore) versions itself in this schema.
    op.execute("DROP TABLE IF EXISTS keystore.alembic_version")
    op.execute("DROP SCHEMA IF EXISTS keystore")
