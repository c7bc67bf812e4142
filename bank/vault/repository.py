"""The vault's reads of sealed rows: every statement built once, parameters bound per call.

Rows come back still sealed; bank.vault.reader opens them. A row is (resident, day, row key,
sealed, revision) whatever its table: the row key is a step day's source or a record's natural
key, and (day, row key) orders a resident's rows and pages them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Select, Text, any_, bindparam, cast, delete, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from bank.identity.models import Account
from bank.vault.kinds import RecordKind, Table
from bank.vault.models import ErasureReceipt, Export, Link, Record, StepDay, StepDayRevision

# Before every row: no row has an empty key, and no day precedes this one.
FIRST = (date.min, "")


@dataclass(frozen=True, slots=True)
class SealedRow:
    resident_id: uuid.UUID
    day: date
    row_key: str
    sealed: bytes
    revision: int


def _columns(table: Table) -> tuple[Any, ...]:
    """(resident, day, row key, sealed, revision) of the table, and the kind filter if any."""
    if table is Table.STEP_DAYS:
        return StepDay.resident_id, StepDay.day, StepDay.source, StepDay.sealed, StepDay.revision
    return Record.resident_id, Record.day, Record.natural_key, Record.sealed, Record.revision


def _of_kind(table: Table, query: Select[Any]) -> Select[Any]:
    return query.where(Record.kind == bindparam("kind")) if table is Table.RECORDS else query


def _page(table: Table) -> Select[Any]:
    resident, day, key, sealed, revision = _columns(table)
    query = (
        select(resident, day, key, sealed, revision)
        .where(
            resident == bindparam("resident", type_=Uuid()),
            day >= bindparam("start", type_=Date()),
            day <= bindparam("end", type_=Date()),
            tuple_(day, key)
            > tuple_(bindparam("after_day", type_=Date()), bindparam("after_key", type_=Text())),
        )
        .order_by(day, key)
        .limit(bindparam("limit"))
    )
    return _of_kind(table, query)


def _latest(table: Table) -> Select[Any]:
    resident, day, key, sealed, revision = _columns(table)
    query = (
        select(resident, day, key, sealed, revision)
        .where(resident == bindparam("resident", type_=Uuid()))
        .order_by(day.desc(), key.desc())
        .limit(1)
    )
    return _of_kind(table, query)


def _of_residents(table: Table) -> Select[Any]:
    resident, day, key, sealed, revision = _columns(table)
    query = (
        select(resident, day, key, sealed, revision)
        .where(
            resident == any_(cast(bindparam("residents"), ARRAY(Uuid()))),
            day >= bindparam("start", type_=Date()),
            day <= bindparam("end", type_=Date()),
        )
        .order_by(resident, day, key)
    )
    return _of_kind(table, query)


_PAGE = {table: _page(table) for table in Table}
_LATEST = {table: _latest(table) for table in Table}
_OF_RESIDENTS = {table: _of_residents(table) for table in Table}
_RESIDENTS_AFTER = (
    select(Account.id)
    .where(Account.kind == "resident", Account.id > bindparam("after", type_=Uuid()))
    .order_by(Account.id)
    .limit(bindparam("limit"))
)


def _rows(result: Any) -> list[SealedRow]:
    return [SealedRow(*row) for row in result]


class RecordRows:
    """Sealed rows of one session's view of the database."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self,
        kind: RecordKind[Any],
        resident_id: uuid.UUID,
        start: date,
        end: date,
        *,
        after: tuple[date, str] = FIRST,
        limit: int,
    ) -> list[SealedRow]:
        """The resident's rows of the kind in [start, end] after `after`, by (day, row key)."""
        parameters = {
            "resident": resident_id, "start": start, "end": end, "after_day": after[0],
            "after_key": after[1], "limit": limit, "kind": kind.code,
        }  # fmt: skip
        return _rows(await self._session.execute(_PAGE[kind.table], parameters))

    async def latest(self, kind: RecordKind[Any], resident_id: uuid.UUID) -> SealedRow | None:
        """The resident's row of the kind with the latest (day, row key)."""
        parameters = {"resident": resident_id, "kind": kind.code}
        rows = _rows(await self._session.execute(_LATEST[kind.table], parameters))
        return rows[0] if rows else None

    async def of_residents(
        self, kind: RecordKind[Any], residents: Sequence[uuid.UUID], start: date, end: date
    ) -> list[SealedRow]:
        """Every row of the kind in [start, end] of these residents, by (resident, day, key)."""
        parameters = {"residents": list(residents), "start": start, "end": end, "kind": kind.code}
        return _rows(await self._session.execute(_OF_RESIDENTS[kind.table], parameters))

    async def residents_after(self, after: uuid.UUID, limit: int) -> list[uuid.UUID]:
        """Up to `limit` residents' ids after `after`, in id order (a batch job's keyset)."""
        result = await self._session.scalars(_RESIDENTS_AFTER, {"after": after, "limit": limit})
        return list(result)


# --- exports ---------------------------------------------------------------------------------


class ExportRows:
    """The resident's export rows (sealed ZIPs) and the account an export belongs to."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, export: Export) -> Export:
        self._session.add(export)
        await self._session.flush()
        return export

    async def unexpired(
        self, resident_id: uuid.UUID, export_id: uuid.UUID, now: datetime
    ) -> Export | None:
        return await self._session.scalar(
            select(Export).where(
                Export.resident_id == resident_id, Export.id == export_id, Export.expires_at > now
            )
        )

    async def pending_for_update(
        self, resident_id: uuid.UUID, export_id: uuid.UUID
    ) -> Export | None:
        """The export if it is still pending, locked until the transaction ends (one build)."""
        export = await self._session.get(Export, (resident_id, export_id), with_for_update=True)
        return export if export is not None and export.status == "pending" else None

    async def account(self, resident_id: uuid.UUID) -> Account | None:
        return await self._session.get(Account, resident_id)

    async def account_exists(self, resident_id: uuid.UUID) -> bool:
        return await self.account(resident_id) is not None

    async def purge_expired(self, now: datetime) -> int:
        """Delete exports past their expiry, downloaded or not; how many went."""
        result = await self._session.execute(delete(Export).where(Export.expires_at < now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- erasure ---------------------------------------------------------------------------------

# Every vault table holding a resident's rows, counted for the erasure receipt (the account's
# cascade would delete them too, but the receipt says how many went).
_RESIDENT_TABLES = (StepDay, StepDayRevision, Record, Link, Export)


class ErasureRows:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def delete_resident_rows(self, resident_id: uuid.UUID) -> dict[str, int]:
        """Delete the resident's rows of every vault table; how many per table."""
        counts = {}
        for table in _RESIDENT_TABLES:
            result = await self._session.execute(
                delete(table).where(table.resident_id == resident_id)
            )
            counts[table.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        return counts

    async def add_receipt(self, receipt: ErasureReceipt, account: Account) -> ErasureReceipt:
        """Keep the receipt and delete the account (its cascade reaches sessions and tokens)."""
        self._session.add(receipt)
        await self._session.delete(account)
        await self._session.flush()
        return receipt
