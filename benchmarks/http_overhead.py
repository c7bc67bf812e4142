"""Cost of the bank's HTTP stack per request, beside a Litestar endpoint that does nothing.

Both apps are driven in-process through the ASGI interface (no sockets), so the figure isolates
what our conventions add: request ids, security headers, the access-log event, Prometheus metrics,
the transaction and media-type middlewares and the problem translator. Prints one JSON line.

    python benchmarks/http_overhead.py [--quick]
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
import time
from typing import Any, cast

import httpx
from litestar import Litestar, get
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bank.app import create_app
from bank.db import Database
from bank.settings import load_settings
from benchmarks.support import percentile


@get("/health/live", sync_to_thread=False)
def do_nothing() -> dict[str, str]:
    return {"status": "ok"}


async def _measure(app: Litestar, requests: int) -> list[float]:
    transport = httpx.ASGITransport(app=cast("Any", app))
    timings: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(min(200, requests)):  # warm-up
            await client.get("/health/live")
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.get("/health/live")
            timings.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"unexpected status {response.status_code}")
    return timings


async def main(quick: bool) -> dict[str, Any]:
    requests = 2_000 if quick else 20_000
    settings = load_settings(database_url="postgresql://unused@127.0.0.1:1/unused")
    # /health/live touches no database; the engine is never connected.
    engine = create_async_engine(settings.async_database_url())
    bank_app = create_app(settings, database=Database(sessions=async_sessionmaker(engine)))
    logging.disable(logging.CRITICAL)  # measure the stack, not the terminal
    bare_app = Litestar(route_handlers=[do_nothing], logging_config=None)

    async with bank_app.lifespan(), bare_app.lifespan():
        bare = await _measure(bare_app, requests)
        bank = await _measure(bank_app, requests)
    await engine.dispose()

    bank_rps = len(bank) / sum(bank)
    bare_rps = len(bare) / sum(bare)
    return {
        "name": "http_overhead",
        "metric": "requests_per_second",
        "value": round(bank_rps, 1),
        "unit": "req/s",
        "baseline": round(bare_rps, 1),
        "ratio": round(bank_rps / bare_rps, 3),
        "target": None,
        "requests": requests,
        "p50_ms": round(statistics.median(bank) * 1e3, 3),
        "p99_ms": round(percentile(bank, 0.99) * 1e3, 3),
        "baseline_p50_ms": round(statistics.median(bare) * 1e3, 3),
        "added_us_per_request": round((statistics.median(bank) - statistics.median(bare)) * 1e6, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish in well under a minute")
    figures = asyncio.run(main(parser.parse_args().quick))
    print(json.dumps(figures))
