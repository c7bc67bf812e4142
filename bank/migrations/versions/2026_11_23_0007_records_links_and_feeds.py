"""Sealed records from data sources (transit taps, checkups), residents' card and insurer links,
and each data source's feeds.

Revision ID: 2026_11_23_0007
Revises: 2026_11_22_0006
Created: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_23_0007"
down_revision: str | None = "2026_11_22_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "oauth_clients",
        sa.Column("feeds", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("natural_key", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("source_client", sa.Text(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('transit_tap', 'checkup')", name=op.f("ck_records_kind")),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["accounts.id"], name=op.f("fk_records_resident_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", "kind", "natural_key", name=op.f("pk_records")),
    )  # fmt: skip
    op.create_index("ix_records_resident_kind_day", "records", ["resident_id", "kind", "day"])
    op.create_table(
        "links",
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('transit_card', 'insurer_member')", name=op.f("ck_links_kind")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["accounts.id"], name=op.f("fk_links_resident_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", "id", name=op.f("pk_links")),
    )  # fmt: skip
    op.create_index("uq_links_kind_blind_index", "links", ["kind", "blind_index"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_links_kind_blind_index", table_name="links")
    op.drop_table("links")
    op.drop_index("ix_records_resident_kind_day", table_name="records")
    op.drop_table("records")
    op.drop_column("oauth_clients", "feeds")
