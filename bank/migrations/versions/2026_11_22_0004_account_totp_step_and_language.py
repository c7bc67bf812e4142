"""Accounts: last accepted TOTP step (no code accepted twice) and mail language.

Revision ID: 2026_11_22_0004
Revises: 2026_11_22_0003
Created: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_11_22_0004"
down_revision: str | None = "2026_11_22_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column("accounts", sa.Column("language", sa.Text(), server_default="ja", nullable=False))


def downgrade() -> None:
    op.drop_column("accounts", "language")
    op.drop_column("accounts", "totp_last_step")
