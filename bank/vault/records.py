"""Sealed records pushed by data sources (transit taps, checkups): idempotent store and read.

The same rules as the steps: one transaction per batch; for each item, no row yet → stored, a row
with the same sealed-over payload → unchanged, another payload → replaced (revision + 1). Items
are grouped by resident; residents are locked in id order (advisory locks, so two batches naming
the same residents never deadlock and never lose an update) and each resident's data key seals
all of their items at once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.vault.keystore import KeyErased, KeyStore
from bank.vault.models import Record
from bank.vault.rules import Refusal
from bank.vault.sealing import open_sealed, record_aad, seal

Outcome = Literal["stored", "replaced", "unchanged", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("stored", "replaced", "unchanged", "refused")


@dataclass(frozen=True)
class ItemResult:
    index: int
    outcome: Outcome
    refusals: tuple[Refusal, ...] = ()


@dataclass(frozen=True)
class Incoming:
    """One valid item, routed to its resident, its payload already encoded canonically."""

    index: int
    resident_id: uuid.UUID
    natural_key: str
    day: date
    payload: bytes


@dataclass(frozen=True)
class StoredRecord:
    natural_key: str
    day: date
    payload: bytes
    revision: int


def superseded(keys: Sequence[object]) -> set[int]:
    """Indexes whose key appears again later in the batch: the last one counts."""
    last = {key: index for index, key in enumerate(keys)}
    return {index for index, key in enumerate(keys) if last[key] != index}


def _aad(resident_id: uuid.UUID, kind: str, natural_key: str, schema_version: int) -> bytes:
    return record_aad(resident_id, kind, natural_key, schema_version)


async def store_records(
    session: AsyncSession,
    keys: KeyStore,
    *,
    kind: str,
    schema_version: int,
    source_client: str,
    items: Sequence[Incoming],
) -> dict[int, Outcome]:
    """Store valid items (unique per resident and natural key); the outcome of each by index."""
    by_resident: dict[uuid.UUID, list[Incoming]] = defaultdict(list)
    for item in items:
        by_resident[item.resident_id].append(item)
    outcomes: dict[int, Outcome] = {}
    for resident_id in sorted(by_resident):
        outcomes |= await _store_for(
            session, keys, resident_id, kind, schema_version, source_client,
            by_resident[resident_id],
        )  # fmt: skip
    return outcomes


async def _store_for(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    kind: str,
    schema_version: int,
    source_client: str,
    items: list[Incoming],
) -> dict[int, Outcome]:
    lock = func.hashtextextended(f"records:{kind}:{resident_id}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(lock)))
    existing = {
        row.natural_key: row
        for row in await session.execute(
            select(Record.natural_key, Record.sealed, Record.revision).where(
                Record.resident_id == resident_id,
                Record.kind == kind,
                Record.natural_key.in_([item.natural_key for item in items]),
            )
        )
    }
    opened: dict[int, AESGCM] = await keys.for_opening(session, resident_id) if existing else {}
    outcomes: dict[int, Outcome] = {}
    inserts: list[Incoming] = []
    updates: list[tuple[Incoming, int]] = []
    for item in items:
        row = existing.get(item.natural_key)
        if row is None:
            outcomes[item.index] = "stored"
            inserts.append(item)
            continue
        aad = _aad(resident_id, kind, item.natural_key, schema_version)
        if open_sealed(opened, row.sealed, aad) == item.payload:
            outcomes[item.index] = "unchanged"
            continue
        outcomes[item.index] = "replaced"
        updates.append((item, row.revision + 1))
    if not inserts and not updates:
        return outcomes
    key = await keys.for_sealing(session, resident_id, len(inserts) + len(updates))

    def sealed(item: Incoming) -> bytes:
        return seal(key, item.payload, _aad(resident_id, kind, item.natural_key, schema_version))

    if inserts:
        await session.execute(
            insert(Record),
            [
                {"resident_id": resident_id, "kind": kind, "natural_key": item.natural_key,
                 "day": item.day, "sealed": sealed(item), "revision": 1,
                 "source_client": source_client}
                for item in inserts
            ],
        )  # fmt: skip
    if updates:
        now = datetime.now(UTC)
        await session.execute(
            update(Record),
            [
                {"resident_id": resident_id, "kind": kind, "natural_key": item.natural_key,
                 "day": item.day, "sealed": sealed(item), "revision": revision,
                 "source_client": source_client, "updated_at": now}
                for item, revision in updates
            ],
        )  # fmt: skip
    return outcomes


async def read_records(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    *,
    kind: str,
    schema_version: int,
    start: date,
    end: date,
    after: tuple[date, str] | None = None,
    limit: int = 100,
) -> list[StoredRecord]:
    """The resident's own records of one kind in [start, end], by (day, natural key), paged."""
    query = (
        select(Record.natural_key, Record.day, Record.sealed, Record.revision)
        .where(
            Record.resident_id == resident_id,
            Record.kind == kind,
            Record.day >= start,
            Record.day <= end,
        )
        .order_by(Record.day, Record.natural_key)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            (Record.day > after[0]) | ((Record.day == after[0]) & (Record.natural_key > after[1]))
        )
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    try:
        opened = await keys.for_opening(session, resident_id)
    except KeyErased:
        return []
    return [
        StoredRecord(
            natural_key=row.natural_key,
            day=row.day,
            payload=open_sealed(
                opened, row.sealed, _aad(resident_id, kind, row.natural_key, schema_version)
            ),
            revision=row.revision,
        )
        for row in rows
    ]
