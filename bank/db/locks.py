"""Per-resident locks: one transaction's writes for a resident serialised, their account held."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Text, Uuid, bindparam, column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

# The kernel names the one column it holds of identity's table, as auth does, rather than
# importing identity's model (a layer up).
_ACCOUNTS = table("accounts", column("id", Uuid()))


def resident_lock_statement(*also: ColumnElement[Any]) -> Select[Any]:
    """The lock's one round trip; `also` are columns a package reads in the same statement
    (bind parameter `resident` is the resident's id). Build it once, at import (bank.db.bulk
    says why)."""
    return select(
        func.pg_advisory_xact_lock(func.hashtextextended(bindparam("lock_key", type_=Text()), 0)),
        select(_ACCOUNTS.c.id)
        .where(_ACCOUNTS.c.id == bindparam("resident"))
        # read + key_share is FOR KEY SHARE (key_share alone is FOR NO KEY UPDATE, which two
        # topics' locks on one account would wait on each other for).
        .with_for_update(read=True, key_share=True)
        .scalar_subquery(),
        *also,
    )


_PLAIN = resident_lock_statement()


@dataclass(frozen=True)
class ResidentLock:
    # False when the account is gone: an erasure committed first, and writing would only break
    # its foreign key. An erasure that starts later waits for this transaction.
    account_exists: bool
    also: tuple[Any, ...]  # the values of the statement's `also` columns


async def lock_resident(
    session: AsyncSession,
    topic: str,
    resident_id: uuid.UUID,
    statement: Select[Any] = _PLAIN,
) -> ResidentLock:
    """Serialise this transaction's writes of `topic` for one resident (an advisory lock, held
    until commit or rollback) and hold the resident's account row against erasure (FOR KEY
    SHARE), in one round trip. Two topics, or two residents, never wait for each other.

    `statement` is `resident_lock_statement(...)` when the caller reads more in the same trip.
    """
    lock = {"lock_key": f"{topic}:{resident_id}", "resident": resident_id}
    row = (await session.execute(statement, lock)).one()
    return ResidentLock(account_exists=row[1] is not None, also=tuple(row[2:]))
