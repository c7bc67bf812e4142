"""Daily steps: idempotent batch ingest with per-item outcomes, and the resident's own reads.

A batch is one transaction. Pushes for one resident are serialised by an advisory lock (two
phones pushing the same day at once must not lose an update; residents never contend with each
other). For each valid item: no row yet → stored; a row with the same values → unchanged; other
values → replaced, and the old sealed value is kept as a revision (points corrections read it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore, ResidentGone
from bank.crypto.sealing import Binding, RecordDoesNotOpen, open_sealed, seal_many
from bank.vault.kinds import RecordKind, Table
from bank.vault.records import ItemResult, superseded
from bank.vault.repository import StepDayRows, lock_resident
from bank.vault.rules import Refusal
from bank.vault.rules.steps import PushedStepDay, validate_step_day
from bank.vault.unreadable import Unreadable, note_unreadable

MAX_BATCH = 400


class StepPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What is sealed: everything but the natural key (resident, day, source)."""

    steps: int
    hourly: tuple[int, ...] | None
    method: str
    device_id: str | None


class StoredStepDay(msgspec.Struct, frozen=True, gc=False):
    """An opened day of steps (bank.vault.reader); a Struct for the reason `Opened` is one."""

    day: date
    source: str
    payload: StepPayload
    revision: int


@dataclass
class _Plan:
    inserts: list[tuple[date, str]] = field(default_factory=list)
    updates: list[tuple[date, str, int]] = field(default_factory=list)  # with the new revision
    revisions: list[dict[str, object]] = field(default_factory=list)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(StepPayload)


def _opened(source: str, day: date, revision: int, plaintext: bytes) -> StoredStepDay:
    return StoredStepDay(day, source, _DECODER.decode(plaintext), revision)


STEPS = RecordKind[StoredStepDay](
    code="steps", schema_version=1, table=Table.STEP_DAYS, opened=_opened
)


def _binding(resident_id: uuid.UUID) -> Binding:
    return Binding(resident_id, STEPS.code, STEPS.schema_version)


def _payload(item: PushedStepDay) -> StepPayload:
    hourly = tuple(item.hourly) if item.hourly is not None else None
    return StepPayload(
        steps=item.steps, hourly=hourly, method=item.method, device_id=item.device_id
    )


class StepPushes:
    """A resident's own pushes of daily steps (the app's sync), dated by the city's today."""

    def __init__(self, session: AsyncSession, keys: KeyStore, *, today: Callable[[], date]) -> None:
        self._session = session
        self._keys = keys
        self._today = today

    async def push(
        self, resident_id: uuid.UUID, items: Sequence[PushedStepDay]
    ) -> list[ItemResult]:
        """Each item's outcome, by index; ResidentGone if the account was erased meanwhile."""
        return await ingest_step_days(
            self._session, self._keys, resident_id, items, today=self._today()
        )


async def ingest_step_days(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    items: Sequence[PushedStepDay],
    *,
    today: date,
) -> list[ItemResult]:
    results: dict[int, ItemResult] = {}
    later = superseded([(item.day, item.platform) for item in items])
    valid: dict[tuple[date, str], tuple[int, StepPayload]] = {}
    for index, item in enumerate(items):
        refusals = validate_step_day(item, today=today, path=f"$.days[{index}]")
        if index in later:
            refusals = [
                *refusals,
                Refusal(f"$.days[{index}]", "A later item in this batch has the same day and "
                        "platform; only the last one is kept."),
            ]  # fmt: skip
        if refusals:
            results[index] = ItemResult(index, "refused", tuple(refusals))
        else:
            valid[(item.day, item.platform)] = (index, _payload(item))
    if valid:
        lock = await lock_resident(
            session, "steps", resident_id, keys_beside=not keys.database.separate
        )
        if not lock.account_exists:
            raise ResidentGone("The account no longer exists.")
        plan = await _plan(session, keys, resident_id, valid, results)
        await _write(session, keys, resident_id, plan, valid, has_key=lock.has_data_key)
    return [results[index] for index in range(len(items))]


async def _plan(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    valid: dict[tuple[date, str], tuple[int, StepPayload]],
    results: dict[int, ItemResult],
) -> _Plan:
    rows = StepDayRows(session, resident_id)
    existing = await rows.existing([day for day, _ in valid], [source for _, source in valid])
    opened = await keys.for_opening(session, resident_id) if existing else {}
    plan = _Plan()
    binding = _binding(resident_id)
    found = {(row.day, row.source): row for row in existing}
    for natural_key, (index, payload) in valid.items():
        row = found.get(natural_key)
        if row is None:
            results[index] = ItemResult(index, "stored")
            plan.inserts.append(natural_key)
            continue
        natural_key_text = STEPS.natural_key(row.day, row.source)
        try:
            stored = open_sealed(opened, binding, natural_key_text, row.revision, row.sealed)
        except RecordDoesNotOpen:
            # The deposit replaces a stored value that does not open (counted as a read would
            # count it); the old value is kept as a revision, as any replaced value is.
            note_unreadable(
                STEPS.code, resident_id, [Unreadable(STEPS.code, row.day, row.source, row.revision)]
            )
            stored = None
        if stored is not None and _DECODER.decode(stored) == payload:
            results[index] = ItemResult(index, "unchanged")
            continue
        results[index] = ItemResult(index, "replaced")
        plan.revisions.append(
            {"resident_id": resident_id, "day": row.day, "source": row.source,
             "revision": row.revision, "sealed": row.sealed}
        )  # fmt: skip
        plan.updates.append((row.day, row.source, row.revision + 1))
    return plan


async def _write(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    plan: _Plan,
    valid: dict[tuple[date, str], tuple[int, StepPayload]],
    *,
    has_key: bool,
) -> None:
    count = len(plan.inserts) + len(plan.updates)
    if count == 0:
        return
    key = await keys.for_sealing(session, resident_id, count, has_key=has_key)
    binding = _binding(resident_id)

    def sealed(rows: Sequence[tuple[date, str, int]]) -> list[bytes]:
        values = [
            (STEPS.natural_key(day, source), revision, _ENCODER.encode(valid[(day, source)][1]))
            for day, source, revision in rows
        ]
        return seal_many(key, binding, values)

    rows = StepDayRows(session, resident_id)
    if plan.inserts:
        await rows.insert(
            days=[day for day, _ in plan.inserts],
            sources=[source for _, source in plan.inserts],
            sealed=sealed([(day, source, 1) for day, source in plan.inserts]),
        )
    if plan.revisions:
        await rows.keep_revisions(plan.revisions)
    if plan.updates:
        await rows.update(
            days=[day for day, _, _ in plan.updates],
            sources=[source for _, source, _ in plan.updates],
            sealed=sealed(plan.updates),
            revisions=[revision for _, _, revision in plan.updates],
        )
