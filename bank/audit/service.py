"""Appending to the audit log inside the caller's transaction, and verifying every chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit.repository import AuditRepository
from bank.audit.rules import (
    GENESIS_HASH,
    Break,
    ChainCheck,
    DetailValue,
    Entry,
    Principal,
    check_entry,
    recompute,
)
from bank.logs import get_logger

log = get_logger("bank.audit")


class AuditLog:
    """Appends entries in the session's own transaction: they commit or roll back with it."""

    def __init__(self, session: AsyncSession) -> None:
        self._repository = AuditRepository(session)

    async def append(
        self,
        stream: str,
        *,
        principal: Principal,
        action: str,
        target: str,
        reason: str | None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> Entry:
        """Add the next entry of `stream`, chained to its newest one.

        Holds the stream's lock until the transaction ends, so concurrent appends queue up and
        the chain never forks; the primary key (stream, seq) refuses a fork even if they did not.
        Raises InvalidAuditEntry for text that is too long or holds NUL, or a float in details.
        """
        details = dict(details or {})
        check_entry(
            stream=stream,
            principal=principal,
            action=action,
            target=target,
            reason=reason,
            details=details,
        )
        await self._repository.lock_stream(stream)
        head = await self._repository.head(stream)
        seq, prev_hash = (1, GENESIS_HASH) if head is None else (head[0] + 1, head[1])
        # Taken under the lock, so times never go backwards along a chain (clock steps aside).
        occurred_at = datetime.now(UTC)
        unsealed = Entry(
            stream=stream,
            seq=seq,
            occurred_at=occurred_at,
            principal=principal,
            action=action,
            target=target,
            reason=reason,
            details=details,
            prev_hash=prev_hash,
            hash="",
        )
        entry = replace(unsealed, hash=recompute(unsealed))
        await self._repository.add(entry)
        log.info("audit.appended", stream=stream, seq=seq, action=action)
        return entry


@dataclass(frozen=True)
class StreamReport:
    stream: str
    entries: int
    head: str
    broken: Break | None

    def summary(self) -> str:
        if self.broken is None:
            return f"{self.stream}: {self.entries} entries, chain intact (head {self.head})"
        return (
            f"{self.stream}: chain broken at seq {self.broken.seq}: {self.broken.problem} "
            f"({self.entries} entries intact before it)"
        )


def _report(check: ChainCheck) -> StreamReport:
    return StreamReport(check.stream, check.count, check.head, check.broken)


async def verify(session: AsyncSession, stream: str | None = None) -> list[StreamReport]:
    """Recompute every chain (or one), streaming entries in order; one report per stream."""
    reports: list[StreamReport] = []
    check: ChainCheck | None = None
    async for entry in AuditRepository(session).all_in_order(stream):
        if check is None or entry.stream != check.stream:
            if check is not None:
                reports.append(_report(check))
            check = ChainCheck(entry.stream)
        check.feed(entry)
    if check is not None:
        reports.append(_report(check))
    return reports
