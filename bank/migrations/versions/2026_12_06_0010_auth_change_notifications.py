"""Every change that can end a token's standing announces itself (NOTIFY bank_auth_changed).

Web processes cache client registrations and token standing (bank.auth.cache) and drop the cache
when this channel speaks, so a suspension, a revocation or a sign-out reaches every replica at
commit. Triggers, not application code, send it: no code path that revokes can forget to.

Revision ID: 2026_12_06_0010
Revises: 2026_12_01_0009
Created: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_12_06_0010"
down_revision: str | None = "2026_12_01_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level where any row change matters; row-level on token_families, which gains a row
# at every sign-in: only a revocation or a deletion (erasure, purge) changes a token's standing.
_TRIGGERS = (
    """CREATE TRIGGER oauth_clients_auth_changed
       AFTER INSERT OR UPDATE OR DELETE ON oauth_clients
       FOR EACH STATEMENT EXECUTE FUNCTION bank_auth_changed()""",
    """CREATE TRIGGER revoked_access_tokens_auth_changed
       AFTER INSERT OR DELETE ON revoked_access_tokens
       FOR EACH STATEMENT EXECUTE FUNCTION bank_auth_changed()""",
    """CREATE TRIGGER token_families_auth_revoked
       AFTER UPDATE OF revoked_at ON token_families
       FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
       EXECUTE FUNCTION bank_auth_changed()""",
    """CREATE TRIGGER token_families_auth_deleted
       AFTER DELETE ON token_families
       FOR EACH STATEMENT EXECUTE FUNCTION bank_auth_changed()""",
)


def upgrade() -> None:
    # One payload for every change: notifications with equal payloads in one transaction are
    # delivered once, at commit, and listeners drop their whole cache anyway.
    op.execute(
        """
        CREATE FUNCTION bank_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('bank_auth_changed', '');
            RETURN NULL;
        END
        $$
        """
    )
    for trigger in _TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    for table, name in (
        ("oauth_clients", "oauth_clients_auth_changed"),
        ("revoked_access_tokens", "revoked_access_tokens_auth_changed"),
        ("token_families", "token_families_auth_revoked"),
        ("token_families", "token_families_auth_deleted"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION bank_auth_changed()")
