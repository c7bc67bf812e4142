"""The audit log: one append-only table of hash-chained entries per stream (bank.audit).

A trigger refuses UPDATE, DELETE and TRUNCATE, and fires even under session_replication_role =
replica (ENABLE ALWAYS): changing history takes an owner disabling it on purpose, and then the
hash chain still shows what changed (`bank audit verify`).

Revision ID: 2026_12_07_0011
Revises: 2026_12_06_0010
Created: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_12_07_0011"
down_revision: str | None = "2026_12_06_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal_type", sa.Text(), nullable=False),
        sa.Column("principal_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.CheckConstraint("seq >= 1", name="seq_positive"),
        sa.CheckConstraint("char_length(reason) <= 500", name="reason_bounded"),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="hash_hex"),
        sa.CheckConstraint("prev_hash ~ '^[0-9a-f]{64}$'", name="prev_hash_hex"),
        sa.PrimaryKeyConstraint("stream", "seq", name=op.f("pk_audit_entries")),
    )
    op.execute(
        """
        CREATE FUNCTION audit_entries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """CREATE TRIGGER audit_entries_append_only
           BEFORE UPDATE OR DELETE ON audit_entries
           FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change()"""
    )
    op.execute(
        """CREATE TRIGGER audit_entries_no_truncate
           BEFORE TRUNCATE ON audit_entries
           FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change()"""
    )
    op.execute("ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_append_only")
    op.execute("ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_truncate")


def downgrade() -> None:
    op.drop_table("audit_entries")
    op.execute("DROP FUNCTION audit_entries_refuse_change()")
