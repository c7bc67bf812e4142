"""End-to-end HTTP ingestion of a year of daily steps for many residents, against asyncpg COPY.

Each resident pushes 365 days (with 24 hourly counts) in one `POST /v1/me/steps/` through the
whole stack: bearer token validation (signature, client standing, revocation and the live
session its `sid` names), JSON decoding, validation, the resident lock, the idempotency read,
envelope encryption under the resident's data key (created on this first push), the insert and
the commit, into a real PostgreSQL. The request bodies are encoded outside the timed section.

By default (the figure the issue's target is about): `bank serve --workers N` runs in a
subprocess against the benchmark's database and keys, N the machine's cores (`--workers`), and
C clients (`--concurrency C`, default 2N) push the residents' years concurrently over real
HTTP, each batch on a new TCP connection (as each resident's phone would; written with h11, a
lighter client than httpx, since it shares the machine with the server), max(2, C) residents
warming up first. The ingest time is the wall time from the first timed request to the last
answer. Memory is the server processes' resident set (supervisor and workers, summed), sampled
during the run: after the warm-up, at the end, its peak, and its least-squares growth per batch
over the last three quarters; CPU is the seconds the server processes and this client used
while the timed batches ran.

`--in-process` drives the app through the ASGI interface in this process instead, one request
at a time (two residents warm up), which shows the cost of one batch without concurrency, and
adds what needs the server's own heap:
- the resident set after each batch: at a quarter and at the end, and its least-squares growth
  per batch over the last three quarters (peak RSS alone would hide a slow leak under the peak
  of the first batches);
- then, untimed, a few more residents' batches under tracemalloc: the Python heap kept per
  batch after a garbage collection (a leak) and the heap one batch needs while it runs;
- and, untimed in the ratio, a few residents pushing the same year again: every item is
  `unchanged` (the idempotency path: read, open and compare, write nothing).

Baseline, measured in the same run: asyncpg's COPY writing exactly the rows the ingest stored
(read back, already encrypted) into an empty copy of the table, in one statement: `LIKE
step_days INCLUDING ALL` plus its foreign key to accounts (LIKE leaves foreign keys out, and
the ingest pays that check on every row). The COPY is timed three times (the median counts)
and the copy is then compared with the stored rows (EXCEPT ALL both ways). Ratio = COPY time /
ingest time (the issue's target is >= 0.25 on a 2-core machine). `ratio_without_fk` is the
same against a COPY into a table without the foreign key: the bare write. The memory figures
are taken before the COPY baseline, which holds every stored row in memory.

Database: as benchmarks/support.py's `scratch_database` describes. Prints one JSON line, last.

    python benchmarks/ingest.py [--quick] [--in-process | --workers N [--concurrency C]]
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is on sys.path but the repository root (for
# `benchmarks.support`) is not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.app import create_app
from bank.settings import Settings
from benchmarks.support import (
    Resident,
    add_residents,
    asgi_client,
    bench_settings,
    city_yesterday,
    current_rss_mb,
    forget_residents,
    median_ms,
    migrated_engine,
    ms,
    peak_rss_mb,
    percentile,
    push_steps,
    push_steps_over_tcp,
    register_resident_app,
    resident_tokens,
    reused_database,
    scratch_database,
    served_app,
    slope,
    steps_body,
    tree_cpu_s,
    tree_rss_mb,
)

DAYS = 365
WARMUP_RESIDENTS = 2
COLUMNS = ("resident_id", "day", "source", "sealed", "revision", "updated_at")
STORED_ROWS = (
    "SELECT resident_id, day, source, sealed, revision, updated_at FROM step_days "
    "WHERE resident_id = ANY($1::uuid[])"
)
COPY_TABLE = "bench_step_days_copy"
COPY_REPEATS = 3  # the baseline is short: its median is steadier than one run on a busy machine
BARE_COPY_TABLE = "bench_step_days_copy_without_fk"
FOREIGN_KEYS = (
    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = 'step_days'::regclass AND contype = 'f'"
)
# Rows in one set and not in the other, both ways: 0 when the copy is exactly what was stored.
DIFFERENCES = """
SELECT (SELECT count(*) FROM (
            SELECT resident_id, day, source, sealed, revision, updated_at FROM step_days
            WHERE resident_id = ANY($1::uuid[])
            EXCEPT ALL
            SELECT resident_id, day, source, sealed, revision, updated_at FROM bench_step_days_copy
        ) AS missing)
     + (SELECT count(*) FROM (
            SELECT resident_id, day, source, sealed, revision, updated_at FROM bench_step_days_copy
            EXCEPT ALL
            SELECT resident_id, day, source, sealed, revision, updated_at FROM step_days
            WHERE resident_id = ANY($1::uuid[])
        ) AS extra)
"""


def _body(seed: int, end: date) -> bytes:
    return steps_body(seed, end, DAYS)


async def _push(
    client: httpx.AsyncClient, token: str, body: bytes, outcome: str = "stored"
) -> float:
    return await push_steps(client, token, body, expect=DAYS, outcome=outcome)


async def _copy_baseline(
    engine: AsyncEngine, residents: Sequence[uuid.UUID]
) -> tuple[float, float, int]:
    """Seconds to COPY the stored rows into an empty copy of step_days (columns, defaults,
    primary key and foreign key), the same without the foreign key, and how many rows. Each is
    the median of COPY_REPEATS runs, the table emptied (TRUNCATE: a new, empty file) between."""
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        ids = list(residents)
        records = [tuple(row) for row in await raw.fetch(STORED_ROWS, ids)]
        # LIKE ... INCLUDING ALL copies everything but foreign keys: they are added by hand, so
        # the COPY pays the same per-row reference check as the ingest's insert.
        foreign_keys = [row[0] for row in await raw.fetch(FOREIGN_KEYS)]
        seconds: list[float] = []
        differences = 0
        for table, constraints in ((COPY_TABLE, foreign_keys), (BARE_COPY_TABLE, [])):
            await raw.execute(f"CREATE TABLE {table} (LIKE step_days INCLUDING ALL)")
            try:
                for constraint in constraints:
                    await raw.execute(f"ALTER TABLE {table} ADD {constraint}")
                runs: list[float] = []
                for run in range(COPY_REPEATS):
                    if run:
                        await raw.execute(f"TRUNCATE {table}")
                    started = time.perf_counter()
                    await raw.copy_records_to_table(table, records=records, columns=COLUMNS)
                    runs.append(time.perf_counter() - started)
                seconds.append(statistics.median(runs))
                if table == COPY_TABLE:
                    differences = await raw.fetchval(DIFFERENCES, ids)
            finally:
                await raw.execute(f"DROP TABLE {table}")
    if differences:
        raise SystemExit(f"the COPY baseline differs from the stored rows in {differences} rows")
    return seconds[0], seconds[1], len(records)


async def _traced_batches(
    client: httpx.AsyncClient, tokens: dict[Resident, str], residents: Sequence[Resident], end: date
) -> tuple[float, float]:
    """Python heap kept per batch (KiB, after a collection) and needed by one batch (MiB)."""
    tracemalloc.start()
    try:
        kept: list[float] = []
        transient: list[float] = []
        for seed, resident in enumerate(residents, start=1_000_000):
            body = _body(seed, end)
            gc.collect()
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await _push(client, tokens[resident], body)
            _, peak = tracemalloc.get_traced_memory()
            del body
            gc.collect()
            kept.append(tracemalloc.get_traced_memory()[0] / 1024)
            transient.append((peak - before) / 2**20)
    finally:
        tracemalloc.stop()
    # The first batches fill caches (statements, compiled SQL): growth is read after them.
    settled = kept[len(kept) // 3 :]
    return slope(settled), max(transient)


async def _measure(settings: Settings, residents: int, traced: int) -> dict[str, Any]:
    app = create_app(settings)
    logging.disable(logging.CRITICAL)  # measure the stack, not the terminal
    engine = await migrated_engine(settings)
    client_id = await register_resident_app(engine)
    everyone = await add_residents(engine, WARMUP_RESIDENTS + residents + traced, client_id)
    warmup = everyone[:WARMUP_RESIDENTS]
    timed = everyone[WARMUP_RESIDENTS : WARMUP_RESIDENTS + residents]
    untimed = everyone[WARMUP_RESIDENTS + residents :]
    end = city_yesterday(settings)
    quarter = max(1, residents // 4)
    timings: list[float] = []
    rss: list[float] = []
    try:
        async with app.lifespan(), asgi_client(app) as client:
            tokens = await resident_tokens(app, engine, settings, client_id, everyone)
            for seed, resident in enumerate(warmup):
                await _push(client, tokens[resident], _body(seed, end))
            rss_after_warmup = current_rss_mb()
            for seed, resident in enumerate(timed, start=len(warmup)):
                body = _body(seed, end)
                timings.append(await _push(client, tokens[resident], body))
                del body
                rss.append(current_rss_mb())
                if len(timings) == quarter:
                    peak_after_quarter = peak_rss_mb()
            peak_end = peak_rss_mb()
            kept_kib, batch_heap_mib = await _traced_batches(client, tokens, untimed, end)
            replays = timed[: min(10, len(timed))]
            replay_timings = [
                await _push(client, tokens[r], _body(seed, end), outcome="unchanged")
                for seed, r in enumerate(replays, start=len(warmup))
            ]
        copy_seconds, bare_copy_seconds, copied = await _copy_baseline(
            engine, [r.id for r in timed]
        )
    finally:
        if reused_database():
            await forget_residents(engine, client_id, everyone)
        await engine.dispose()
    ingest_seconds = sum(timings)
    records = residents * DAYS
    if copied != records:
        raise SystemExit(f"expected {records} stored rows, found {copied}")
    return {
        "name": "ingest",
        "mode": "in-process",
        "metric": "records_per_second",
        "value": round(records / ingest_seconds, 1),
        "unit": "records/s",
        "baseline": round(records / copy_seconds, 1),
        "baseline_name": "asyncpg COPY of the same encrypted rows into a copy of step_days",
        "ratio": round(copy_seconds / ingest_seconds, 4),
        "target": 0.25,
        "ratio_without_fk": round(bare_copy_seconds / ingest_seconds, 4),
        "records": records,
        "batches": residents,
        "batch_size": DAYS,
        "ingest_s": round(ingest_seconds, 3),
        "copy_s": round(copy_seconds, 3),
        "copy_without_fk_s": round(bare_copy_seconds, 3),
        "batch_p50_ms": median_ms(timings),
        "batch_p99_ms": ms(percentile(timings, 0.99)),
        "replay_batches": len(replay_timings),
        "replay_batch_p50_ms": median_ms(replay_timings),
        "rss_mb_after_warmup": round(rss_after_warmup, 1),
        "rss_mb_after_quarter": round(rss[quarter - 1], 1),
        "rss_mb_end": round(rss[-1], 1),
        "rss_growth_kib_per_batch": round(slope(rss[quarter - 1 :]) * 1024, 1),
        "peak_rss_mb_after_quarter": peak_after_quarter,
        "peak_rss_mb_end": peak_end,
        "traced_batches": traced,
        "heap_kept_kib_per_batch": round(kept_kib, 1),
        "heap_per_batch_mib": round(batch_heap_mib, 2),
    }


async def _sample_rss(
    pid: int, done: list[float], samples: list[tuple[int, float]], interval_s: float = 0.1
) -> None:
    """Append (batches done, summed resident set of `pid`'s process tree) every interval."""
    while True:
        samples.append((len(done), await asyncio.to_thread(tree_rss_mb, pid)))
        await asyncio.sleep(interval_s)


def _growth_per_batch(samples: Sequence[tuple[int, float]], batches: int) -> float:
    """Least-squares MiB per batch over the samples of the last three quarters of the run."""
    settled = [(done, rss) for done, rss in samples if done >= batches // 4]
    if len({done for done, _ in settled}) < 2:
        return 0.0
    return statistics.linear_regression(*zip(*settled, strict=True)).slope


async def _push_all(
    address: tuple[str, int],
    concurrency: int,
    work: Sequence[tuple[str, bytes]],
    timings: list[float],
) -> float:
    """Every (token, body) in `work`, by `concurrency` clients taking the next one as they
    finish; each batch's seconds are appended to `timings` as they come (the memory sampler
    counts them); returns the wall time of the whole.

    Each batch comes on a connection of its own, as each resident's phone would: a few
    long-lived keep-alive connections would all be accepted by one uvicorn worker as often as
    not (the workers share the listening socket), leaving the other worker idle.
    """
    pending = iter(work)  # shared: each client takes the next batch (no await between)

    async def client_loop() -> None:
        for token, body in pending:
            timings.append(await push_steps_over_tcp(address, token, body, expect=DAYS))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(client_loop())
    return time.perf_counter() - started


async def _measure_server(
    settings: Settings, scratch: Path, residents: int, workers: int, concurrency: int
) -> dict[str, Any]:
    app = create_app(settings)  # only to mint tokens with the keys the server will load
    logging.disable(logging.CRITICAL)
    engine = await migrated_engine(settings)
    client_id = await register_resident_app(engine)
    warmups = max(WARMUP_RESIDENTS, concurrency)
    everyone = await add_residents(engine, warmups + residents, client_id)
    warmup, timed = everyone[:warmups], everyone[warmups:]
    end = city_yesterday(settings)
    try:
        async with app.lifespan():
            tokens = await resident_tokens(app, engine, settings, client_id, everyone)
        del app
        warmup_work = [(tokens[r], _body(seed, end)) for seed, r in enumerate(warmup)]
        timed_work = [(tokens[r], _body(seed, end)) for seed, r in enumerate(timed, warmups)]
        async with served_app(settings, scratch, workers) as (base_url, pid):
            served = httpx.URL(base_url)
            address = (served.host, served.port or 80)
            await _push_all(address, concurrency, warmup_work, [])
            rss_after_warmup = tree_rss_mb(pid)
            timings: list[float] = []
            samples = [(0, rss_after_warmup)]
            sampler = asyncio.create_task(_sample_rss(pid, timings, samples))
            server_cpu, client_cpu = tree_cpu_s(pid), time.process_time()
            try:
                wall = await _push_all(address, concurrency, timed_work, timings)
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            client_cpu = time.process_time() - client_cpu
            server_cpu = {p: s - server_cpu.get(p, 0.0) for p, s in tree_cpu_s(pid).items()}
            rss_end = tree_rss_mb(pid)
            samples.append((len(timings), rss_end))
        del warmup_work, timed_work
        copy_seconds, bare_copy_seconds, copied = await _copy_baseline(
            engine, [r.id for r in timed]
        )
    finally:
        if reused_database():
            await forget_residents(engine, client_id, everyone)
        await engine.dispose()
    records = residents * DAYS
    if copied != records:
        raise SystemExit(f"expected {records} stored rows, found {copied}")
    return {
        "name": "ingest",
        "mode": "server",
        "workers": workers,
        "concurrency": concurrency,
        "metric": "records_per_second",
        "value": round(records / wall, 1),
        "unit": "records/s",
        "baseline": round(records / copy_seconds, 1),
        "baseline_name": "asyncpg COPY of the same encrypted rows into a copy of step_days",
        "ratio": round(copy_seconds / wall, 4),
        "target": 0.25,
        "ratio_without_fk": round(bare_copy_seconds / wall, 4),
        "records": records,
        "batches": residents,
        "batch_size": DAYS,
        "warmup_batches": warmups,
        "ingest_s": round(wall, 3),
        "copy_s": round(copy_seconds, 3),
        "copy_without_fk_s": round(bare_copy_seconds, 3),
        "batch_p50_ms": median_ms(timings),
        "batch_p99_ms": ms(percentile(timings, 0.99)),
        "server_cpu_s": round(sum(server_cpu.values()), 2),
        # Per process, largest first: an uneven split shows how the connections fell.
        "server_cpu_s_by_process": sorted((round(s, 2) for s in server_cpu.values()), reverse=True),
        "client_cpu_s": round(client_cpu, 2),
        "server_rss_mb_after_warmup": round(rss_after_warmup, 1),
        "server_rss_mb_end": round(rss_end, 1),
        "server_peak_rss_mb": round(max(rss for _, rss in samples), 1),
        "server_rss_growth_kib_per_batch": round(_growth_per_batch(samples, residents) * 1024, 1),
    }


async def main(
    quick: bool, in_process: bool = False, workers: int = 2, concurrency: int | None = None
) -> dict[str, Any]:
    residents = 20 if quick else 500
    traced = 6 if quick else 15
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        async with scratch_database(Path(scratch), "bench_ingest") as (url, origin):
            settings = bench_settings(url, origin, Path(scratch))
            if in_process:
                figures = await _measure(settings, residents, traced)
            else:
                clients = concurrency or 2 * workers
                figures = await _measure_server(
                    settings, Path(scratch), residents, workers, clients
                )
    figures["database"] = origin
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish in well under a minute")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="drive the app in this process through ASGI, one request at a time",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=os.cpu_count() or 2,
        help="`bank serve --workers N` (default: the machine's cores)",
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="C", help="concurrent clients (default: 2N)"
    )
    arguments = parser.parse_args()
    if arguments.workers < 1:
        parser.error("--workers needs at least 1 worker")
    if arguments.concurrency is not None and arguments.concurrency < 1:
        parser.error("--concurrency needs at least 1 client")
    if arguments.in_process and arguments.concurrency is not None:
        parser.error("--concurrency is for the served mode, not --in-process")
    figures = main(arguments.quick, arguments.in_process, arguments.workers, arguments.concurrency)
    print(json.dumps(asyncio.run(figures)))
