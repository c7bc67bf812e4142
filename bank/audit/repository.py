"""All of the audit log's SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Row, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit.models import AuditEntry
from bank.audit.rules import Entry, Principal

# The first key of the two-key advisory lock: "audt". The second is the stream's hashtext; two
# streams that hash alike only share a lock (they wait for each other), never a chain.
_LOCK_CLASS = 0x61756474
_PAGE = 1000
# Plain rows, not ORM objects: a long log never fills the session's identity map, and a read
# always shows what the table holds now.
_ROWS = select(AuditEntry.__table__)


def _entry(row: Row[Any]) -> Entry:
    return Entry(
        stream=row.stream,
        seq=row.seq,
        occurred_at=row.occurred_at,
        principal=Principal(type=row.principal_type, id=row.principal_id),
        action=row.action,
        target=row.target,
        reason=row.reason,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_stream(self, stream: str) -> None:
        """Hold the stream until the caller's transaction ends: appends to it run one at a time."""
        await self._session.execute(
            select(func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(stream)))
        )

    async def head(self, stream: str) -> tuple[int, str] | None:
        """The newest entry's (seq, hash); read after `lock_stream`, a new statement sees every
        append committed before the lock was granted (READ COMMITTED)."""
        row = (
            await self._session.execute(
                select(AuditEntry.seq, AuditEntry.hash)
                .where(AuditEntry.stream == stream)
                .order_by(AuditEntry.seq.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else (row.seq, row.hash)

    async def add(self, entry: Entry) -> None:
        await self._session.execute(
            insert(AuditEntry).values(
                stream=entry.stream,
                seq=entry.seq,
                occurred_at=entry.occurred_at,
                principal_type=entry.principal.type,
                principal_id=entry.principal.id,
                action=entry.action,
                target=entry.target,
                reason=entry.reason,
                details=dict(entry.details),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )

    async def all_in_order(self, stream: str | None = None) -> AsyncIterator[Entry]:
        """Every entry by stream then seq, a page at a time (keyset pagination: memory stays
        flat, and no cursor or snapshot is held open across the whole log)."""
        after: tuple[str, int] | None = None
        while True:
            query = _ROWS.order_by(AuditEntry.stream, AuditEntry.seq).limit(_PAGE)
            if stream is not None:
                query = query.where(AuditEntry.stream == stream)
            if after is not None:
                query = query.where(tuple_(AuditEntry.stream, AuditEntry.seq) > after)
            rows = (await self._session.execute(query)).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < _PAGE:
                return
            after = (rows[-1].stream, rows[-1].seq)

    async def latest(self, *, stream: str | None, limit: int) -> list[Entry]:
        query = _ROWS.order_by(AuditEntry.occurred_at.desc(), AuditEntry.seq.desc())
        if stream is not None:
            query = query.where(AuditEntry.stream == stream)
        return [_entry(row) for row in await self._session.execute(query.limit(limit))]
