"""Residents' data exports: sealed ZIPs, downloadable for a day.

Revision ID: 2026_11_23_0008
Revises: 2026_11_23_0007
Created: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_23_0008"
down_revision: str | None = "2026_11_23_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("sealed_zip", sa.LargeBinary(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'ready')", name=op.f("ck_exports_status")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["accounts.id"], name=op.f("fk_exports_resident_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", "id", name=op.f("pk_exports")),
    )  # fmt: skip
    op.create_index(op.f("ix_exports_expires_at"), "exports", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_exports_expires_at"), table_name="exports")
    op.drop_table("exports")
