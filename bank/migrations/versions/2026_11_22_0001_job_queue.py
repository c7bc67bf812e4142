"""Job queue: procrastinate's schema, pinned to the version in the lock file.

Revision ID: 2026_11_22_0001
Revises:
Created: 2026-11-22

The SQL is a copy of procrastinate 3.10.0's `schema.sql`, so a fresh database always gets the same
schema whatever procrastinate is installed. A procrastinate upgrade adds a revision that applies
its shipped migration files (procrastinate/sql/migrations) in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from bank.db.scripts import execute_sql_file, execute_sql_script

revision: str = "2026_11_22_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    execute_sql_file("procrastinate_3_10_0.sql")


def downgrade() -> None:
    execute_sql_script(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DO $$
        DECLARE fn regprocedure;
        BEGIN
            FOR fn IN
                SELECT p.oid::regprocedure FROM pg_proc p
                WHERE p.proname LIKE 'procrastinate\\_%'
                  AND p.pronamespace = current_schema()::regnamespace
            LOOP
                EXECUTE 'DROP FUNCTION ' || fn || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
            procrastinate_job_status CASCADE;
        """
    )
