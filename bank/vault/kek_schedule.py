"""The KEK schedule: a daily job rotates the KEK when the current version is older than the
interval and destroys the versions no backup inside the retention can need; `bank keys status`
reports it (docs/vault.md, "The KEK schedule and the backup window").

The rotation is `rotate_kek(keep_older=True)`: data keys re-wrapped in batches, resumable, under
the rotation's advisory lock, the new version's start recorded under the key store's lock once
nothing is left under an older one. Destruction is `retire_below`, under the same two locks, and
only of versions nothing is wrapped under. Two workers running the job at once: one holds the
advisory lock, the other logs that and does nothing (the next day's run catches up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.crypto.keystore import DataKey
from bank.crypto.provider import KeyProvider
from bank.crypto.provider_calls import ProviderCalls
from bank.logs import get_logger
from bank.vault.rotation import (
    REWRAP_BATCH,
    KekRotation,
    RotationInProgress,
    retire_below,
    rotate_kek,
)
from bank.vault.rules.kek_schedule import (
    KekSchedule,
    current_version,
    destroy_after,
    keep_from,
    next_rotation,
    oldest_backup_that_opens,
    rotation_due,
    superseded,
)

log = get_logger("bank.vault")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduleRun:
    rotation: KekRotation | None  # None: not due
    retired: tuple[int, ...]
    busy: bool = False  # another rotation held the lock: nothing was done


async def keep_kek_schedule(
    engine: AsyncEngine,
    provider: KeyProvider,
    schedule: KekSchedule,
    *,
    clock: Callable[[], datetime] = _utcnow,
    batch_size: int = REWRAP_BATCH,
) -> ScheduleRun:
    """Rotate if due, then destroy what the retention no longer covers."""
    calls = ProviderCalls(provider)
    await calls.current_kek_version()  # an empty provider gets its first version (started now)
    rotation = None
    try:
        starts = await calls.kek_started()
        # Data keys under an older version (a key store restored from a backup) are re-wrapped
        # as an interrupted rotation's are: without that, their version could never go.
        if rotation_due(schedule, starts, clock()) or await _below(engine, max(starts)):
            rotation = await rotate_kek(
                engine, provider, batch_size=batch_size, keep_older=True, clock=clock
            )
        starts = await calls.kek_started()
        keep = keep_from(schedule, starts, clock())
        retired = await retire_below(engine, provider, keep) if keep > min(starts) else ()
    except RotationInProgress:
        log.info("vault.kek_schedule.busy")
        return ScheduleRun(rotation=None, retired=(), busy=True)
    log.info(
        "vault.kek_schedule.done",
        rotated=rotation is not None,
        kek_version=current_version(starts),
        retired=len(retired),
    )
    return ScheduleRun(rotation=rotation, retired=retired)


async def kek_status(
    engine: AsyncEngine,
    provider: KeyProvider,
    schedule: KekSchedule,
    *,
    now: datetime | None = None,
) -> dict[str, object]:
    """What `bank keys status` prints: the versions, their starts and ages, the data keys under
    each, the next rotation, and the oldest backup whose keys are all still present."""
    at = now or _utcnow()
    calls = ProviderCalls(provider)
    await calls.current_kek_version()
    starts = await calls.kek_started()
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(DataKey.kek_version, func.count()).group_by(DataKey.kek_version)
        )
        counts = {int(version): int(count) for version, count in rows}
    current = current_version(starts)
    return {
        "provider": provider.name,
        "now": _iso(at),
        "current_version": current,
        "rotation_interval_days": schedule.rotation_interval.days,
        "backup_retention_days": schedule.backup_retention.days,
        "window_days": schedule.window.days,
        "next_rotation": _iso(next_rotation(schedule, starts)),
        "oldest_backup_that_opens": _iso(oldest_backup_that_opens(starts)),
        "versions": [
            {
                "version": version,
                "current": version == current,
                "started_at": _iso(started),
                "age_days": None
                if started is None
                else round((at - started).total_seconds() / _DAY, 2),
                "superseded_at": _iso(superseded(starts, version)),
                "destroy_after": _iso(destroy_after(schedule, starts, version)),
                "data_keys": counts.get(version, 0),
            }
            for version, started in sorted(starts.items())
        ],
        # Data keys under a version the provider no longer has (a restored key store): they
        # do not open. Normally empty.
        "data_keys_without_kek": {
            str(version): count
            for version, count in sorted(counts.items())
            if version not in starts
        },
    }


async def _below(engine: AsyncEngine, version: int) -> bool:
    async with AsyncSession(engine) as session:
        below = select(DataKey.resident_id).where(DataKey.kek_version < version).limit(1)
        return await session.scalar(below) is not None


_DAY = 86_400.0


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()
