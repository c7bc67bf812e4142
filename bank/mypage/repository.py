"""The one statement of the pages' own: the resident's exports still downloadable, as a list.

The vault's `Exports` service asks for, finds and opens one export at a time, and the pages
use it for those; what it has no method for is the list the export page shows. This reads only
the rows' clear columns (never the sealed ZIP) of the resident's own unexpired exports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.vault.models import Export

MAX_LISTED = 10  # a day allows a handful (BANK_VAULT__EXPORTS_PER_DAY); a day's worth, at most


@dataclass(frozen=True)
class ExportRow:
    id: uuid.UUID
    status: str  # pending | ready
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime
    size_bytes: int | None


class ExportList:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def unexpired(self, resident_id: uuid.UUID, now: datetime) -> list[ExportRow]:
        """The resident's exports not yet expired, newest first."""
        rows = await self._session.execute(
            select(
                Export.id, Export.status, Export.requested_at, Export.ready_at,
                Export.expires_at, Export.size_bytes,
            )
            .where(Export.resident_id == resident_id, Export.expires_at > now)
            .order_by(Export.requested_at.desc())
            .limit(MAX_LISTED)
        )  # fmt: skip
        return [ExportRow(*row) for row in rows]
