"""The nightly purge removes only rows whose usefulness has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bank.app import JOB_APP
from bank.auth.maintenance import PURGE_STATEMENTS
from bank.auth.models import RevokedAccessToken, UsedAssertion


async def test_purge_deletes_expired_rows_and_keeps_live_ones(db_session: AsyncSession) -> None:
    now = datetime.now(UTC)
    db_session.add_all(
        [
            UsedAssertion(client_id="c", jti="expired-jti", expires_at=now - timedelta(seconds=1)),
            UsedAssertion(client_id="c", jti="live-jti", expires_at=now + timedelta(minutes=5)),
            RevokedAccessToken(jti="expired-at", expires_at=now - timedelta(minutes=1)),
            RevokedAccessToken(jti="live-at", expires_at=now + timedelta(minutes=9)),
        ]
    )
    await db_session.flush()
    for statement in PURGE_STATEMENTS:
        await db_session.execute(text(statement))
    assertions = set(await db_session.scalars(select(UsedAssertion.jti)))
    revoked = set(await db_session.scalars(select(RevokedAccessToken.jti)))
    assert "expired-jti" not in assertions
    assert "live-jti" in assertions
    assert "expired-at" not in revoked
    assert "live-at" in revoked


def test_purge_is_scheduled_nightly() -> None:
    task = JOB_APP.tasks["auth:purge_expired"]
    assert task.queue == "maintenance"
    assert any(p.task is task for p in JOB_APP.periodic_registry.periodic_tasks.values())
