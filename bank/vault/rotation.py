"""Online KEK rotation: a new key-encryption key version, data keys re-wrapped, old ones retired.

Only the wrapped data keys in `keystore.data_keys` change (`wrapped_key`, `kek_version`); the
data keys themselves stay the same, so no record is re-encrypted and nothing has to stop.

1. If every data key is wrapped under the provider's current version and no older version is
   left, the provider makes a new one. Otherwise an earlier run was interrupted: it is resumed
   and no further version is made.
2. Data keys below the current version are re-wrapped in batches, each its own short
   transaction: rows taken `FOR UPDATE SKIP LOCKED` in (resident_id, version) order, unwrapped
   with their old version, wrapped with the current one, and updated together with their
   `kek_version`. A crash leaves every row consistent (old or new, never half) and the next run
   continues where this one stopped. Rows a request holds locked are skipped and come back in a
   later pass.
3. When none is left below, the older versions are retired (destroyed in the provider). The
   count is taken again right before, under `LOCK TABLE … IN SHARE MODE`, which waits for every
   transaction that is writing data keys and holds new writers back until the retirement is done.
   Under the same lock the new version's start is recorded in the provider (if it has none): the
   moment from which no data key is wrapped under an older version, which the schedule counts
   from (bank.vault.kek_schedule).

The scheduled rotation (`keep_older=True`) does the same but keeps the older versions: a backup
taken while one was current needs it until the backup retention has passed, and
`retire_below` destroys it then. In that mode a run resumes when a data key is still wrapped
under an older version or the current version has no start yet, and otherwise makes a version.

The race with running web processes: a request that creates a data key reads the provider's
current version at that moment (both providers ask their store every time, never a cached value),
inside a transaction that has already written to `keystore.data_keys` (the seal reservation). So
a key wrapped under the old version by a request that began before step 1 is committed before
step 3's lock is granted, and is then counted (the rotation goes back to step 2); a request that
begins later wraps under the new version. The cost: while step 3 waits for its lock, writes that
reserve seals queue behind it, for at most `lock_timeout` (2 s) per attempt; reads never wait.
What remains: code that wraps a key and stores it in a later transaction, or a provider that
caches its current version, could still store a key under a version retired in between, and that
key would never unwrap again. The local provider is single-host: processes on another host with
their own key directory are not rotated. Two rotations never run at once (an advisory lock).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.crypto.keystore import DataKey, data_key_aad
from bank.crypto.provider import KeyProvider, KeyProviderError, WrappedKey
from bank.crypto.provider_calls import ProviderCalls
from bank.logs import get_logger

log = get_logger("bank.vault")

REWRAP_BATCH = 500
_ROTATION_LOCK = func.hashtextextended("bank.vault.kek_rotation", 0)
# The retirement waits at most 2 s for writers of data keys (lock_timeout), this many times.
_LOCK_ATTEMPTS = 30
_LOCK_NOT_AVAILABLE = "55P03"
_LOCKED_ROWS_PAUSE_S = 0.2


class RotationInProgress(Exception):
    """Another `bank keys rotate-kek` holds the rotation lock."""


class RotationStalled(Exception):
    """The retirement could not lock the key store (writers kept it busy); run again later."""


@dataclass(frozen=True)
class KekRotation:
    new_version: int  # every data key is wrapped under this version now
    resumed: bool  # True: an interrupted rotation was finished, no version was made
    rewrapped: int
    retired: tuple[int, ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def rotate_kek(
    engine: AsyncEngine,
    provider: KeyProvider,
    *,
    batch_size: int = REWRAP_BATCH,
    after_batch: Callable[[int], None] | None = None,
    keep_older: bool = False,
    clock: Callable[[], datetime] = _utcnow,
) -> KekRotation:
    """Rotate the KEK, or finish an interrupted rotation.

    `after_batch` is called with the running count after each committed batch. `keep_older`
    leaves the older versions in the provider (the scheduled rotation); `clock` gives the new
    version's start. Raises RotationInProgress, RotationStalled, or KeyProviderError when a data
    key does not unwrap or uses a version the provider lacks (a failed batch is rolled back;
    those before it stay done).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    async with rotation_lock(engine):
        return await _rotate(engine, provider, batch_size, after_batch, keep_older, clock)


@asynccontextmanager
async def rotation_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the rotation's advisory lock (session-level); RotationInProgress if another has it."""
    async with engine.connect() as guard:
        locked = await guard.scalar(select(func.pg_try_advisory_lock(_ROTATION_LOCK)))
        await guard.commit()  # a session-level lock: it outlives this transaction
        if not locked:
            raise RotationInProgress("another KEK rotation is running")
        try:
            yield
        finally:
            await guard.execute(select(func.pg_advisory_unlock(_ROTATION_LOCK)))
            await guard.commit()


async def _rotate(
    engine: AsyncEngine,
    provider: KeyProvider,
    batch_size: int,
    after_batch: Callable[[int], None] | None,
    keep_older: bool,
    clock: Callable[[], datetime],
) -> KekRotation:
    calls = ProviderCalls(provider)  # an HSM's calls run in worker threads, not on the loop
    current = await calls.current_kek_version()
    async with AsyncSession(engine) as session:
        highest = await session.scalar(select(func.max(DataKey.kek_version)))
    if highest is not None and highest > current:
        # A key store restored without its newest KEK: a new version would reuse that number.
        raise KeyProviderError(f"data keys use KEK version {highest}, which the provider lacks")
    older = [version for version in await calls.kek_versions() if version < current]
    if keep_older:  # older versions are kept on purpose: they say nothing of an interruption
        unstarted = (await calls.kek_started()).get(current) is None
        resumed = unstarted or await _count_below(engine, current) > 0
    else:
        resumed = bool(older) or await _count_below(engine, current) > 0
    if resumed:
        log.info("vault.kek_rotation.resumed", kek_version=current, older_versions=len(older))
    else:
        current = await calls.new_kek_version()
        log.info("vault.kek_rotation.started", kek_version=current)
    # Read once per run: an erasure made later deletes its own keys in its own transaction.
    erased = frozenset(entry.resident_id for entry in await calls.erasures())
    rewrapped = 0
    while True:
        rewrapped += await _rewrap_below(
            engine, calls, current, batch_size, after_batch, rewrapped, erased
        )
        retired = await _retire_older(engine, calls, current, retire=not keep_older, clock=clock)
        if retired is not None:
            break
        log.info("vault.kek_rotation.new_keys_under_old_version")  # go round once more
    log.info(
        "vault.kek_rotation.finished",
        kek_version=current,
        rewrapped=rewrapped,
        retired=len(retired),
    )
    return KekRotation(new_version=current, resumed=resumed, rewrapped=rewrapped, retired=retired)


async def _count_below(engine: AsyncEngine, version: int) -> int:
    async with AsyncSession(engine) as session:
        return await _count_below_in(session, version)


async def _count_below_in(session: AsyncSession, version: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(DataKey).where(DataKey.kek_version < version)
    )
    return int(count or 0)


async def _rewrap_below(
    engine: AsyncEngine,
    calls: ProviderCalls,
    target: int,
    batch_size: int,
    after_batch: Callable[[int], None] | None,
    done_before: int,
    erased: frozenset[uuid.UUID],
) -> int:
    done = 0
    while True:
        count = await _rewrap_batch(engine, calls, target, batch_size, erased)
        if count:
            done += count
            log.info("vault.kek_rotation.batch", rewrapped=count, total=done_before + done)
            if after_batch is not None:
                after_batch(done_before + done)
            continue
        if await _count_below(engine, target) == 0:
            return done
        await asyncio.sleep(_LOCKED_ROWS_PAUSE_S)  # the rest are locked by requests: wait


async def _rewrap_batch(
    engine: AsyncEngine,
    calls: ProviderCalls,
    target: int,
    batch_size: int,
    erased: frozenset[uuid.UUID],
) -> int:
    async with AsyncSession(engine) as session, session.begin():
        rows = (
            await session.execute(
                select(
                    DataKey.resident_id, DataKey.version, DataKey.wrapped_key, DataKey.kek_version
                )
                .where(DataKey.kek_version < target)
                .order_by(DataKey.resident_id, DataKey.version)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return 0
        # A key of a resident the erasure journal names (a key store restored from before the
        # erasure) is destroyed, not carried onto the new KEK: the rotation finishes the erasure.
        gone = sorted({row.resident_id for row in rows} & erased)
        if gone:
            await session.execute(delete(DataKey).where(DataKey.resident_id.in_(gone)))
            log.info("vault.kek_rotation.erased_keys_destroyed", residents=len(gone))
        kept = [row for row in rows if row.resident_id not in erased]
        # The whole batch in one provider round: one thread hop for an HSM.
        changes = await calls.run(
            lambda provider: [
                _rewrapped(
                    provider, target, row.resident_id, row.version, row.wrapped_key, row.kek_version
                )
                for row in kept
            ]
        )
        if changes:
            await session.execute(update(DataKey), changes)  # by primary key, one statement
        return len(rows)


def _rewrapped(
    provider: KeyProvider,
    target: int,
    resident_id: uuid.UUID,
    version: int,
    blob: bytes,
    kek_version: int,
) -> dict[str, object]:
    aad = data_key_aad(resident_id, version)
    data_key = provider.unwrap(WrappedKey(kek_version=kek_version, blob=blob), aad=aad)
    wrapped = provider.wrap(data_key, aad=aad)
    if wrapped.kek_version < target:  # the provider lost its newest version meanwhile
        raise KeyProviderError(f"the provider wrapped under KEK version {wrapped.kek_version}")
    return {
        "resident_id": resident_id,
        "version": version,
        "wrapped_key": wrapped.blob,
        "kek_version": wrapped.kek_version,
    }


async def retire_below(engine: AsyncEngine, provider: KeyProvider, version: int) -> tuple[int, ...]:
    """Destroy every version below `version` (the scheduled retirement), under the rotation's
    lock, once no data key is wrapped under one: () when some still are (they are re-wrapped by
    the next scheduled run, which resumes) or none is below."""
    async with rotation_lock(engine):
        calls = ProviderCalls(provider)
        retired = await _retire_older(engine, calls, version, retire=True, clock=None)
    return retired or ()


async def _retire_older(
    engine: AsyncEngine,
    calls: ProviderCalls,
    target: int,
    *,
    retire: bool,
    clock: Callable[[], datetime] | None,
) -> tuple[int, ...] | None:
    """Retire every version below `target` if no data key uses one (None if some still do), and
    record `target`'s start if it has none (where a clock is given)."""
    for attempt in range(1, _LOCK_ATTEMPTS + 1):
        try:
            async with AsyncSession(engine) as session, session.begin():
                await session.execute(text("SET LOCAL lock_timeout = '2s'"))
                # Waits for transactions writing data keys (a request that wrapped a new key
                # under the old version commits first and is counted); new writers wait for us.
                await session.execute(text("LOCK TABLE keystore.data_keys IN SHARE MODE"))
                if await _count_below_in(session, target) > 0:
                    return None
                if clock is not None and (await calls.kek_started()).get(target) is None:
                    # Inside the lock: a writer that wrapped under an older version has
                    # committed and was counted; every later one wraps under `target`.
                    await calls.mark_kek_started(target, clock())
                if not retire:
                    return ()
                older = tuple(version for version in await calls.kek_versions() if version < target)
                for version in older:
                    await calls.retire_kek_version(version)
                    log.info("vault.kek_rotation.retired", kek_version=version)
                return older
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            log.info("vault.kek_rotation.lock_busy", attempt=attempt)
    raise RotationStalled("the key store stayed busy; run `bank keys rotate-kek` again")
