"""Sign-in throttling: rules (pure) and their persistent, cross-process state.

Per account (keyed by the email's blind index, whether or not the account exists, so throttling
reveals nothing): every 5th failure in a row blocks sign-in for 15 minutes; the 20th locks the
account until its owner resets the password. Per client address: 30 failures in 15 minutes
block that address for 15 minutes; one-time codes (asked for, or guessed wrong) count the same way
on a key of their own. Failures are recorded in their own transaction, because the failed request
itself rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bank.db import Database
from bank.identity.models import SignInThrottle

ACCOUNT_BLOCK_EVERY = 5
ACCOUNT_LOCK_AFTER = 20
ACCOUNT_MEMORY = timedelta(hours=24)
ADDRESS_LIMIT = 30
ADDRESS_WINDOW = timedelta(minutes=15)
BLOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None = None


def is_blocked(state: ThrottleState | None, now: datetime) -> bool:
    return state is not None and state.locked_until is not None and now < state.locked_until


def after_account_failure(state: ThrottleState | None, now: datetime) -> ThrottleState:
    if state is None or now - state.window_started_at > ACCOUNT_MEMORY:
        state = ThrottleState(failures=0, window_started_at=now)
    failures = state.failures + 1
    locked_until = now + BLOCK_FOR if failures % ACCOUNT_BLOCK_EVERY == 0 else state.locked_until
    return ThrottleState(failures, state.window_started_at, locked_until)


def after_address_failure(state: ThrottleState | None, now: datetime) -> ThrottleState:
    if state is None or now - state.window_started_at > ADDRESS_WINDOW:
        state = ThrottleState(failures=0, window_started_at=now)
    failures = state.failures + 1
    locked_until = now + BLOCK_FOR if failures >= ADDRESS_LIMIT else state.locked_until
    return ThrottleState(failures, state.window_started_at, locked_until)


def must_lock_account(state: ThrottleState) -> bool:
    return state.failures >= ACCOUNT_LOCK_AFTER


class Throttles:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def blocked(self, keys: list[str], now: datetime) -> bool:
        async with self.database.sessions() as session:
            rows = await session.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys)))
            return any(is_blocked(_state(row), now) for row in rows)

    async def record_failure(
        self, *, account_key: str, address_key: str, now: datetime
    ) -> ThrottleState:
        """Count a failure on both keys (own transaction); returns the account key's state."""
        async with self.database.side_commit() as session:
            account_state = await _update(session, account_key, now, after_account_failure)
            await _update(session, address_key, now, after_address_failure)
        return account_state

    async def record(self, address_key: str, now: datetime) -> ThrottleState:
        """Count one event on an address key (own transaction): a reset code asked for or a
        wrong one-time code, which share `after_address_failure`'s limit."""
        async with self.database.side_commit() as session:
            return await _update(session, address_key, now, after_address_failure)

    async def clear(self, session: AsyncSession, account_key: str) -> None:
        """After a successful sign-in or reset (in the caller's transaction)."""
        await session.execute(delete(SignInThrottle).where(SignInThrottle.key == account_key))


def _state(row: SignInThrottle) -> ThrottleState:
    return ThrottleState(row.failures, row.window_started_at, row.locked_until)


Rule = Callable[[ThrottleState | None, datetime], ThrottleState]


async def _update(session: AsyncSession, key: str, now: datetime, rule: Rule) -> ThrottleState:
    # Insert-if-missing first, so two processes failing at once serialise on the row lock.
    await session.execute(
        insert(SignInThrottle)
        .values(key=key, failures=0, window_started_at=now)
        .on_conflict_do_nothing()
    )
    row = await session.scalar(
        select(SignInThrottle).where(SignInThrottle.key == key).with_for_update()
    )
    assert row is not None
    fresh = row.failures == 0 and row.locked_until is None
    new = rule(None if fresh else _state(row), now)
    row.failures, row.window_started_at, row.locked_until = (
        new.failures,
        new.window_started_at,
        new.locked_until,
    )
    await session.flush()
    return new
