"""All of the audit log's SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit.models import AuditEntry
from bank.audit.rules import Entry, Principal

# The first key of the two-key advisory lock: "audt". The second is the stream's hashtext; two
# streams that hash alike only share a lock (they wait for each other), never a chain.
_LOCK_CLASS = 0x61756474
_STREAM_BATCH = 1000


def _entry(row: AuditEntry) -> Entry:
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
        """Every entry by stream then seq, fetched in batches from a server-side cursor."""
        query = select(AuditEntry).order_by(AuditEntry.stream, AuditEntry.seq)
        if stream is not None:
            query = query.where(AuditEntry.stream == stream)
        result = await self._session.stream_scalars(
            query.execution_options(yield_per=_STREAM_BATCH)
        )
        async for row in result:
            yield _entry(row)
            self._session.expunge(row)  # keep the identity map from growing with the log

    async def latest(self, *, stream: str | None, limit: int) -> list[Entry]:
        query = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.seq.desc())
        if stream is not None:
            query = query.where(AuditEntry.stream == stream)
        rows = await self._session.scalars(query.limit(limit))
        return [_entry(row) for row in rows]
