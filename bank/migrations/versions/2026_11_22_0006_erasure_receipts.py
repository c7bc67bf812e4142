"""Erasure receipts: what remains of an erased resident.

Revision ID: 2026_11_22_0006
Revises: 2026_11_22_0005
Created: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_22_0006"
down_revision: str | None = "2026_11_22_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasure_receipts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column(
            "erased_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("records_deleted", sa.Integer(), nullable=False),
        sa.Column("keys_destroyed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_receipts")),
    )
    op.create_index(
        op.f("ix_erasure_receipts_resident_id"), "erasure_receipts", ["resident_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_erasure_receipts_resident_id"), table_name="erasure_receipts")
    op.drop_table("erasure_receipts")
