"""Which key sealed an account's address and an outgoing mail: a resident's data key or the keyring.

Every existing row was sealed under the master keyring, so both columns start as `keyring` (the
server default, which a process of the previous release also gets for what it inserts during the
upgrade). `bank accounts reseal-emails` then seals residents' addresses and mail under their own
data keys (docs/decisions.md, "Erasure and failing closed (issue 12)").

Revision ID: 2026_12_08_0012
Revises: 2026_12_07_0011
Created: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_12_08_0012"
down_revision: str | None = "2026_12_07_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("email_sealed_under", sa.Text(), server_default="keyring", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_accounts_email_sealed_under"),
        "accounts",
        "email_sealed_under IN ('keyring', 'data-key')",
    )
    op.create_check_constraint(
        op.f("ck_accounts_operator_email_keyring"),
        "accounts",
        "kind = 'resident' OR email_sealed_under = 'keyring'",
    )
    op.add_column(
        "email_outbox",
        sa.Column("sealed_under", sa.Text(), server_default="keyring", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_email_outbox_sealed_under"),
        "email_outbox",
        "sealed_under IN ('keyring', 'data-key')",
    )
    op.create_check_constraint(
        op.f("ck_email_outbox_data_key_has_account"),
        "email_outbox",
        "sealed_under = 'keyring' OR account_id IS NOT NULL",
    )


def downgrade() -> None:
    # A value sealed under a data key cannot be told apart from a keyring one without the
    # column: refuse rather than leave addresses that the previous release cannot open.
    bind = op.get_bind()
    resealed = bind.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM accounts WHERE email_sealed_under = 'data-key')"
            " + (SELECT count(*) FROM email_outbox WHERE sealed_under = 'data-key')"
        )
    ).scalar_one()
    if resealed:
        raise RuntimeError(
            f"{resealed} addresses or mails are sealed under residents' data keys; the previous"
            " release cannot open them"
        )
    op.drop_constraint(op.f("ck_email_outbox_data_key_has_account"), "email_outbox", type_="check")
    op.drop_constraint(op.f("ck_email_outbox_sealed_under"), "email_outbox", type_="check")
    op.drop_column("email_outbox", "sealed_under")
    op.drop_constraint(op.f("ck_accounts_operator_email_keyring"), "accounts", type_="check")
    op.drop_constraint(op.f("ck_accounts_email_sealed_under"), "accounts", type_="check")
    op.drop_column("accounts", "email_sealed_under")
