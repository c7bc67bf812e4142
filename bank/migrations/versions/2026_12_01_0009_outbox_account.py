"""Outgoing mail names its account, so that erasing the account deletes its unsent mail.

Revision ID: 2026_12_01_0009
Revises: 2026_11_23_0008
Created: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_12_01_0009"
down_revision: str | None = "2026_11_23_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: mail queued before this revision names no account (it is sent or purged soon).
    op.add_column("email_outbox", sa.Column("account_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_email_outbox_account_id_accounts"), "email_outbox", "accounts",
        ["account_id"], ["id"], ondelete="CASCADE",
    )  # fmt: skip
    op.create_index(op.f("ix_email_outbox_account_id"), "email_outbox", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_email_outbox_account_id"), table_name="email_outbox")
    op.drop_constraint(
        op.f("fk_email_outbox_account_id_accounts"), "email_outbox", type_="foreignkey"
    )
    op.drop_column("email_outbox", "account_id")
