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
from datetime import date
from typing import Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Date,
    Integer,
    LargeBinary,
    Text,
    any_,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from bank.db.bulk import unnest
from bank.errors import DomainError, ProblemType
from bank.identity.models import Account
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


class ResidentGone(DomainError):
    problem = ProblemType(
        code="account-gone",
        status=401,
        title="The account no longer exists",
        description="The account was erased while this request was under way; nothing was stored.",
    )


async def lock_resident(session: AsyncSession, topic: str, resident_id: uuid.UUID) -> bool:
    """Serialise this transaction's writes of `topic` for one resident (an advisory lock) and
    hold the resident's account against erasure until commit (FOR KEY SHARE), in one round trip.

    False when the account is gone: an erasure committed first, and writing would only break
    its foreign key. An erasure that starts later waits for this transaction, then removes what
    it wrote.
    """
    account = (
        select(Account.id)
        .where(Account.id == resident_id)
        .with_for_update(key_share=True)
        .scalar_subquery()
    )
    key = func.hashtextextended(f"{topic}:{resident_id}", 0)
    row = (await session.execute(select(func.pg_advisory_xact_lock(key), account))).one()
    return row[1] is not None


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
) -> dict[int, ItemResult]:
    """Store valid items (unique per resident and natural key); the result of each by index."""
    by_resident: dict[uuid.UUID, list[Incoming]] = defaultdict(list)
    for item in items:
        by_resident[item.resident_id].append(item)
    outcomes: dict[int, ItemResult] = {}
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
) -> dict[int, ItemResult]:
    if not await lock_resident(session, f"records:{kind}", resident_id):
        gone = Refusal("$", "The resident's account was erased; the record was not stored.")
        return {item.index: ItemResult(item.index, "refused", (gone,)) for item in items}
    existing = {
        row.natural_key: row
        for row in await session.execute(
            select(Record.natural_key, Record.sealed, Record.revision).where(
                Record.resident_id == resident_id,
                Record.kind == kind,
                Record.natural_key == any_(cast([item.natural_key for item in items], ARRAY(Text))),
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
        return _results(outcomes)
    key = await keys.for_sealing(session, resident_id, len(inserts) + len(updates))

    def sealed(item: Incoming) -> bytes:
        return seal(key, item.payload, _aad(resident_id, kind, item.natural_key, schema_version))

    if inserts:
        rows = unnest(
            "rows",
            natural_key=(Text(), [item.natural_key for item in inserts]),
            day=(Date(), [item.day for item in inserts]),
            sealed=(LargeBinary(), [sealed(item) for item in inserts]),
        )
        await session.execute(
            insert(Record).from_select(
                ["resident_id", "kind", "natural_key", "day", "sealed", "revision",
                 "source_client"],
                select(
                    literal(resident_id), literal(kind), rows.c.natural_key, rows.c.day,
                    rows.c.sealed, literal(1), literal(source_client),
                ),
            )
        )  # fmt: skip
    if updates:
        rows = unnest(
            "rows",
            natural_key=(Text(), [item.natural_key for item, _ in updates]),
            day=(Date(), [item.day for item, _ in updates]),
            sealed=(LargeBinary(), [sealed(item) for item, _ in updates]),
            revision=(Integer(), [revision for _, revision in updates]),
        )
        await session.execute(
            update(Record)
            .where(
                Record.resident_id == resident_id,
                Record.kind == kind,
                Record.natural_key == rows.c.natural_key,
            )
            .values(
                day=rows.c.day, sealed=rows.c.sealed, revision=rows.c.revision,
                source_client=source_client, updated_at=func.now(),
            )
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    return _results(outcomes)


def _results(outcomes: dict[int, Outcome]) -> dict[int, ItemResult]:
    return {index: ItemResult(index, outcome) for index, outcome in outcomes.items()}


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
