"""A resident reading a month of steps, beside a do-nothing endpoint with and without the guard.

Residents each hold 90 days of steps (24 hourly counts a day), pushed through
`POST /v1/me/steps/` before anything is timed. Then, through the whole stack driven in-process
through the ASGI interface, one request at a time, the residents take turns (request i is made
by resident i mod n, each with its own access token naming its live session as `sid`):

- `list`: GET /v1/me/steps/?from=…&to=… for the last 30 days, hourly counts included (one page);
- `summary`: GET /v1/me/steps/summary?month=… for the last complete calendar month;
- `guarded`: a do-nothing GET added to the same app behind the same resident guard
  (`requires(RESIDENT, "records:read")`: JWT checks, the revocation and session query and its
  transaction);
- `open`: the same do-nothing GET without a guard, sent the same Authorization header (the
  baseline: the bank's HTTP stack alone).

So `guarded - open` is the guard's cost and `list - guarded` / `summary - guarded` the vault
read's (the query, the resident's data key unwrapped, 30 records opened and encoded). The four
are measured in interleaved blocks, so a change in the machine's load touches them alike.

Database: as benchmarks/support.py's `scratch_database` describes. Prints one JSON line, last.

    python benchmarks/read.py [--quick]
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is on sys.path but the repository root (for
# `benchmarks.support`) is not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

import argparse
import asyncio
import calendar
import json
import logging
import statistics
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from litestar import get

from bank.app import create_app
from bank.auth.guards import requires
from bank.auth.principals import PrincipalType
from bank.settings import Settings
from benchmarks.support import (
    add_residents,
    asgi_client,
    bench_settings,
    checked,
    city_yesterday,
    forget_residents,
    median_ms,
    migrated_engine,
    ms,
    percentile,
    push_steps,
    rate,
    register_resident_app,
    resident_tokens,
    reused_database,
    scratch_database,
    steps_body,
    timed_gets,
)

DAYS_HELD = 90
WINDOW_DAYS = 30
BLOCK = 50  # requests per endpoint before moving to the next one
OPEN_PATH = "/bench/open"
GUARDED_PATH = "/bench/guarded"


# The two routes added to the bank app differ only by the guard, so their difference is its cost.
@get(OPEN_PATH, sync_to_thread=False)
def open_route() -> dict[str, str]:
    return {"status": "ok"}


@get(
    GUARDED_PATH,
    guards=[requires(PrincipalType.RESIDENT, "records:read")],
    sync_to_thread=False,
)
def guarded_route() -> dict[str, str]:
    return {"status": "ok"}


def _last_complete_month(end: date) -> tuple[str, int]:
    """The calendar month before `end`'s (90 days back always cover it) and its length."""
    last = end.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}", calendar.monthrange(last.year, last.month)[1]


async def _check_reads(
    client: httpx.AsyncClient, paths: dict[str, str], headers: dict[str, str], month_days: int
) -> None:
    """The timed requests must read what the benchmark claims: a full page, a full month."""
    page = checked(await client.get(paths["list"], headers=headers)).json()
    if len(page["items"]) != WINDOW_DAYS or page["next_cursor"] is not None:
        raise SystemExit(f"list: expected {WINDOW_DAYS} days on one page, got {page}"[:500])
    if any(item["hourly"] is None for item in page["items"]):
        raise SystemExit("list: hourly counts missing")
    summary = checked(await client.get(paths["summary"], headers=headers)).json()
    if summary["days_recorded"] != month_days:
        raise SystemExit(f"summary: expected {month_days} days, got {summary['days_recorded']}")


async def _interleaved(
    client: httpx.AsyncClient,
    paths: dict[str, str],
    headers: list[dict[str, str]],
    requests: int,
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in paths}
    while len(timings["open"]) < requests:
        block = min(BLOCK, requests - len(timings["open"]))
        for name, path in paths.items():
            # Each block starts where the last one stopped, so every resident reads in turn.
            done = len(timings[name])
            rotated = headers[done % len(headers) :] + headers[: done % len(headers)]
            timings[name] += await timed_gets(client, path, rotated, block)
    return timings


def _figures(timings: list[float]) -> dict[str, float]:
    return {
        "rps": round(rate(timings), 1),
        "p50_ms": median_ms(timings),
        "p99_ms": ms(percentile(timings, 0.99)),
    }


def _added_us(slower: list[float], faster: list[float]) -> float:
    return round((statistics.median(slower) - statistics.median(faster)) * 1e6, 1)


async def _measure(settings: Settings, residents: int, requests: int) -> dict[str, Any]:
    app = create_app(settings)
    app.register(open_route)
    app.register(guarded_route)
    logging.disable(logging.CRITICAL)  # measure the stack, not the terminal
    engine = await migrated_engine(settings)
    client_id = await register_resident_app(engine)
    everyone = await add_residents(engine, residents, client_id)
    end = city_yesterday(settings)
    month, month_days = _last_complete_month(end)
    start = end - timedelta(days=WINDOW_DAYS - 1)
    paths = {
        "open": OPEN_PATH,
        "guarded": GUARDED_PATH,
        "list": f"/v1/me/steps/?from={start.isoformat()}&to={end.isoformat()}",
        "summary": f"/v1/me/steps/summary?month={month}",
    }
    try:
        async with app.lifespan(), asgi_client(app) as client:
            tokens = await resident_tokens(app, engine, settings, client_id, everyone)
            headers = [{"Authorization": f"Bearer {tokens[r]}"} for r in everyone]
            for seed, resident in enumerate(everyone):
                body = steps_body(seed, end, DAYS_HELD)
                await push_steps(client, tokens[resident], body, expect=DAYS_HELD)
            await _check_reads(client, paths, headers[0], month_days)
            await _interleaved(client, paths, headers, min(200, requests))  # warm-up
            timings = await _interleaved(client, paths, headers, requests)
    finally:
        if reused_database():
            await forget_residents(engine, client_id, everyone)
        await engine.dispose()

    figures = {name: _figures(values) for name, values in timings.items()}
    return {
        "name": "read",
        "metric": "requests_per_second",
        "value": figures["list"]["rps"],
        "unit": "req/s",
        "baseline": figures["open"]["rps"],
        "ratio": round(figures["list"]["rps"] / figures["open"]["rps"], 4),
        "target": 0.15,  # issue 11: a month's read through the vault reader
        "requests": requests,
        "residents": residents,
        "days_held": DAYS_HELD,
        "list_days": WINDOW_DAYS,
        "month": month,
        **{f"{name}_{key}": value for name, f in figures.items() for key, value in f.items()},
        "guard_added_us_p50": _added_us(timings["guarded"], timings["open"]),
        "list_added_us_p50": _added_us(timings["list"], timings["guarded"]),
        "summary_added_us_p50": _added_us(timings["summary"], timings["guarded"]),
    }


async def main(quick: bool) -> dict[str, Any]:
    residents = 10 if quick else 50
    requests = 500 if quick else 5_000
    with tempfile.TemporaryDirectory(prefix="bench-read-") as scratch:
        async with scratch_database(Path(scratch), "bench_read") as (url, origin):
            settings = bench_settings(url, origin, Path(scratch))
            figures = await _measure(settings, residents, requests)
    figures["database"] = origin
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish in well under a minute")
    print(json.dumps(asyncio.run(main(parser.parse_args().quick))))
