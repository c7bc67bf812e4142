"""A batch job opening one month of daily steps for every resident, against asyncpg's bare fetch.

Residents each hold the 30 days of November 2026 (24 hourly counts a day, one source), sealed
under their own data key. The seed is fast but real: each resident's first data key comes from
a `KeyStore` over the `LocalKeyProvider` (`for_sealing`, which wraps it and reserves 30 seals),
the days are sealed with the kernel's `seal_many` under the steps kind's binding, exactly as
`ingest_step_days` seals them, and the rows are COPYed into `step_days`.

Measured, in a fresh process for each number of residents (1,000 then 10,000; 1,000 then 3,000
with `--quick`), the database holding exactly that many residents:

- `reader`: `BatchReader(session, keystore).residents([STEPS], start, end)` over the whole
  month, batches of 500 residents: per batch, the residents' keyset query, one query for their
  step days, one query for their data keys and one provider round to unwrap them, every record
  opened and decoded into a typed `StoredStepDay`. Every pass checks it opened every resident's
  30 days and that their steps add up to what was sealed.
- `baseline`: asyncpg on its own connection fetching the same sealed rows the same way (per
  batch: the residents' keyset query, then their step days of the month, a row per day, in
  (resident, day) order), opening nothing.

After one untimed baseline pass (PostgreSQL's cache), the two alternate, REPEATS passes each, so
a change in the machine's load touches both alike; the median pass counts. Ratio = reader
records/s / baseline rows/s (the issue's target: >= 0.20). `peak_rss_mb_*` is the process's
peak resident set after its first reader pass (the warm-up baseline pass before it holds less:
one batch of rows); `rss_start_mb_*` is the same process before that pass (imports,
connections, the warm-up). Memory is flat in the number of residents when the two peaks are
equal: only one batch's rows are held at a time.

Database: as benchmarks/support.py's `scratch_database` describes; a BANK_DATABASE_URL
database must hold no residents (the reader reads every resident there is), and the benchmark's
residents are deleted afterwards. Prints one JSON line, last.

    python benchmarks/batch_read.py [--quick]
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is on sys.path but the repository root (for
# `benchmarks.support`) is not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import msgspec

from bank.crypto.keystore import KeyStore, keystore_from_settings
from bank.crypto.sealing import Binding, seal_many
from bank.db import Database
from bank.settings import Settings, load_settings
from bank.vault.reader import BatchReader
from bank.vault.steps import STEPS, StepPayload, StoredStepDay
from benchmarks.support import (
    bench_settings,
    current_rss_mb,
    days_of_steps,
    migrated_engine,
    peak_rss_mb,
    reused_database,
    scratch_database,
)

START, END = date(2026, 11, 1), date(2026, 11, 30)
DAYS = (END - START).days + 1
SOURCE = "healthkit"  # what days_of_steps reports as its platform
BATCH_SIZE = 500  # BatchReader's default
REPEATS = 3
SEED_CHUNK = 1_000  # residents sealed and COPYed per transaction
COLUMNS = ("resident_id", "day", "source", "sealed", "revision")

# The baseline's statements: the reader's keyset and rows, in asyncpg's own words.
RESIDENTS_AFTER = "SELECT id FROM accounts WHERE kind = 'resident' AND id > $1 ORDER BY id LIMIT $2"
ROWS_OF = (
    "SELECT resident_id, day, source, sealed, revision FROM step_days "
    "WHERE resident_id = ANY($1::uuid[]) AND day >= $2 AND day <= $3 "
    "ORDER BY resident_id, day, source"
)
NEW_RESIDENTS = (
    "INSERT INTO accounts (id, kind, email_index, email_sealed, password_hash, "
    "email_verified_at, roles, status) "
    "SELECT id, 'resident', 'bench-' || id, '\\x00', '-', now(), '{}', 'active' "
    "FROM unnest($1::uuid[]) AS id"
)
_ENCODER = msgspec.json.Encoder()
_SCRIPT = os.path.realpath(__file__)


# --- the seed ----------------------------------------------------------------------------------


async def _seed(settings: Settings, keystore: KeyStore, residents: int, first_seed: int) -> int:
    """Add `residents` residents with a month of sealed steps each; the steps they hold."""
    total = 0
    async with Database.opened(settings, role="bank-cli") as database:
        for chunk in range(first_seed, first_seed + residents, SEED_CHUNK):
            seeds = range(chunk, min(first_seed + residents, chunk + SEED_CHUNK))
            async with database.unit_of_work() as session:
                ids = [uuid.uuid4() for _ in seeds]
                raw = await _driver(session)
                await raw.execute(NEW_RESIDENTS, ids)
                rows: list[tuple[uuid.UUID, date, str, bytes, int]] = []
                for seed, resident in zip(seeds, ids, strict=True):
                    month, steps = await _sealed_month(session, keystore, resident, seed)
                    rows += month
                    total += steps
                await raw.copy_records_to_table("step_days", records=rows, columns=COLUMNS)
        async with database.unit_of_work() as session:
            # As autovacuum would soon after: plans for the tables as they now are.
            await (await _driver(session)).execute(
                "ANALYZE accounts, step_days, keystore.data_keys"
            )
    return total


async def _sealed_month(
    session: Any, keystore: KeyStore, resident: uuid.UUID, seed: int
) -> tuple[list[tuple[uuid.UUID, date, str, bytes, int]], int]:
    """The resident's month of step_days rows, sealed as `ingest_step_days` seals them under
    the resident's first data key, and their steps."""
    days = [(date.fromisoformat(day["day"]), day) for day in days_of_steps(seed, END, DAYS)]
    key = await keystore.for_sealing(session, resident, DAYS, has_key=False)
    binding = Binding(resident, STEPS.code, STEPS.schema_version)
    values = [(STEPS.natural_key(day, SOURCE), 1, _payload(pushed)) for day, pushed in days]
    sealed = seal_many(key, binding, values)
    rows = [(resident, day, SOURCE, value, 1) for (day, _), value in zip(days, sealed, strict=True)]
    return rows, sum(pushed["steps"] for _, pushed in days)


def _payload(pushed: dict[str, Any]) -> bytes:
    payload = StepPayload(
        steps=pushed["steps"],
        hourly=tuple(pushed["hourly"]),
        method=pushed["method"],
        device_id=pushed["device_id"],
    )
    return _ENCODER.encode(payload)


async def _driver(session: Any) -> Any:
    """The asyncpg connection under a session's transaction (COPY and array statements)."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def _forget(settings: Settings) -> None:
    """On a database we did not create, leave none of the benchmark's residents behind."""
    connection = await asyncpg.connect(_asyncpg_url(settings))
    try:
        async with connection.transaction():
            await connection.execute(
                "DELETE FROM keystore.data_keys WHERE resident_id IN "
                "(SELECT id FROM accounts WHERE email_index LIKE 'bench-%')"
            )
            # Step days go with the accounts (cascade).
            await connection.execute("DELETE FROM accounts WHERE email_index LIKE 'bench-%'")
    finally:
        await connection.close()


def _asyncpg_url(settings: Settings) -> str:
    """The database's URL as asyncpg.connect takes it."""
    url = settings.async_database_url().set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


# --- one size, in a process of its own -----------------------------------------------------------


async def _reader_pass(database: Database, keystore: KeyStore) -> tuple[float, int, int]:
    """(seconds, records opened, their steps) of one pass of the batch reader."""
    records = steps = 0
    days: list[StoredStepDay] = []
    async with database.unit_of_work() as session:
        reader = BatchReader(session, keystore, batch_size=BATCH_SIZE)
        started = time.perf_counter()
        async for resident in reader.residents([STEPS], START, END):
            days = resident.of(STEPS)
            records += len(days)
            steps += sum(day.payload.steps for day in days)
        elapsed = time.perf_counter() - started
        if days and not isinstance(days[-1], StoredStepDay):
            raise SystemExit(f"the reader returned {type(days[-1]).__name__}, not StoredStepDay")
    return elapsed, records, steps


async def _baseline_pass(connection: asyncpg.Connection) -> tuple[float, int]:
    """(seconds, rows) of fetching the same sealed rows with asyncpg alone."""
    rows = 0
    after = uuid.UUID(int=0)
    started = time.perf_counter()
    while batch := [r[0] for r in await connection.fetch(RESIDENTS_AFTER, after, BATCH_SIZE)]:
        rows += len(await connection.fetch(ROWS_OF, batch, START, END))
        after = batch[-1]
    return time.perf_counter() - started, rows


async def _measure_one(residents: int, steps: int, repeats: int) -> dict[str, Any]:
    settings = load_settings()  # the parent's database and key directory (_measure_in_child)
    keystore = keystore_from_settings(settings)
    expected = residents * DAYS
    connection = await asyncpg.connect(_asyncpg_url(settings))
    reader_s: list[float] = []
    baseline_s: list[float] = []
    peak = 0.0
    try:
        async with Database.opened(settings, role="bank-worker") as database:
            _, rows = await _baseline_pass(connection)  # PostgreSQL's cache, untimed
            if rows != expected:
                raise SystemExit(
                    f"the database holds {rows} step days of the month, not {expected}"
                )
            rss_start = current_rss_mb()
            for run in range(repeats):
                elapsed, records, opened_steps = await _reader_pass(database, keystore)
                if (records, opened_steps) != (expected, steps):
                    raise SystemExit(
                        f"the reader opened {records} records ({opened_steps} steps); "
                        f"{expected} ({steps} steps) were sealed"
                    )
                reader_s.append(elapsed)
                if run == 0:
                    peak = peak_rss_mb()  # the reader's: nothing larger ran before it
                elapsed, rows = await _baseline_pass(connection)
                if rows != expected:
                    raise SystemExit(f"the baseline fetched {rows} rows; {expected} were stored")
                baseline_s.append(elapsed)
    finally:
        await connection.close()
    return {
        "residents": residents,
        "records": expected,
        "reader_s": round(statistics.median(reader_s), 3),
        "baseline_s": round(statistics.median(baseline_s), 3),
        "rss_start_mb": round(rss_start, 1),
        "peak_rss_mb": peak,
    }


async def _measure_in_child(
    settings: Settings, residents: int, steps: int, repeats: int
) -> dict[str, Any]:
    """`_measure_one` in a new interpreter, so its peak resident set is its own."""
    environment = {
        **os.environ,
        "BANK_DATABASE_URL": settings.async_database_url().render_as_string(hide_password=False),
        "BANK_DATA_DIR": str(settings.data_dir),
    }
    command = [sys.executable, _SCRIPT, "--child", str(residents), str(steps), str(repeats)]
    child = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, env=environment
    )
    output, _ = await child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"measuring {residents} residents failed ({child.returncode})")
    figures: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return figures


# --- the run -------------------------------------------------------------------------------------


async def _resident_count(settings: Settings) -> int:
    connection = await asyncpg.connect(_asyncpg_url(settings))
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM accounts WHERE kind = 'resident'"
        )
        return count
    finally:
        await connection.close()


async def _measure(settings: Settings, sizes: Sequence[int], repeats: int) -> dict[str, Any]:
    engine = await migrated_engine(settings)
    await engine.dispose()
    if await _resident_count(settings):
        raise SystemExit("the database already holds residents: the reader would read them too")
    keystore = keystore_from_settings(settings)
    by_size: dict[int, dict[str, Any]] = {}
    seeded = steps = 0
    seed_s = 0.0
    try:
        for size in sizes:
            started = time.perf_counter()
            steps += await _seed(settings, keystore, size - seeded, seeded)
            seed_s += time.perf_counter() - started
            seeded = size
            by_size[size] = await _measure_in_child(settings, size, steps, repeats)
    finally:
        if reused_database():
            await _forget(settings)
    largest = by_size[sizes[-1]]
    reader_rate = largest["records"] / largest["reader_s"]
    baseline_rate = largest["records"] / largest["baseline_s"]
    return {
        "name": "batch_read",
        "metric": "records_per_second",
        "value": round(reader_rate, 1),
        "unit": "records/s",
        "baseline": round(baseline_rate, 1),
        "baseline_name": "asyncpg fetching the same sealed rows in the same batches, unopened",
        "ratio": round(reader_rate / baseline_rate, 4),
        "target": 0.20,
        "residents": sizes[-1],
        "records": largest["records"],
        "days": DAYS,
        "batch_size": BATCH_SIZE,
        "repeats": repeats,
        "seed_s": round(seed_s, 1),
        **{
            f"{key}_{size}": value
            for size, figures in by_size.items()
            for key, value in figures.items()
            if key not in {"residents"}
        },
        "peak_rss_growth_mb": round(
            by_size[sizes[-1]]["peak_rss_mb"] - by_size[sizes[0]]["peak_rss_mb"], 1
        ),
    }


async def main(quick: bool) -> dict[str, Any]:
    sizes = (1_000, 3_000) if quick else (1_000, 10_000)
    repeats = 2 if quick else REPEATS
    with tempfile.TemporaryDirectory(prefix="bench-batch-read-") as scratch:
        async with scratch_database(Path(scratch), "bench_batch_read") as (url, origin):
            settings = bench_settings(url, origin, Path(scratch))
            figures = await _measure(settings, sizes, repeats)
    figures["database"] = origin
    return figures


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # measure the reader, not the terminal
    if sys.argv[1:2] == ["--child"]:  # one size (_measure_in_child): RESIDENTS STEPS REPEATS
        residents, steps, repeats = map(int, sys.argv[2:])
        print(json.dumps(asyncio.run(_measure_one(residents, steps, repeats))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish in well under a minute")
    print(json.dumps(asyncio.run(main(parser.parse_args().quick))))
