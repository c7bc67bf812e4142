"""What every benchmark shares: a scratch database, timing statistics, resident fixtures.

Scripts import it as `benchmarks.support`, each putting the repository root on sys.path first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import h11
import httpx
import msgspec
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bank.auth.clients import ClientRegistry, Registration
from bank.auth.keys import SigningKeys
from bank.auth.models import ClientKind, ClientStatus
from bank.auth.principals import PrincipalType
from bank.auth.tokens import mint_access_token
from bank.db.embedded import embedded_postgres
from bank.db.migrate import upgrade
from bank.settings import Settings, load_settings

SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
RESIDENT_SCOPES = ("records:read", "records:write")
STEPS_PATH = "/v1/me/steps/"


# --- the database -------------------------------------------------------------------------------


async def server_reachable() -> bool:
    probe = create_async_engine(SERVER_URL, poolclass=NullPool, connect_args={"timeout": 3})
    try:
        async with probe.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError):
        return False
    finally:
        await probe.dispose()
    return True


@contextlib.asynccontextmanager
async def scratch_database(scratch: Path, prefix: str) -> AsyncIterator[tuple[str, str]]:
    """Yield (database URL, where it came from); a database made here is dropped on exit.

    BANK_DATABASE_URL if set; else a new database on the server at 127.0.0.1:5432; else an
    embedded PostgreSQL in `scratch`.
    """
    configured = os.environ.get("BANK_DATABASE_URL")
    if configured:
        yield configured, "configured"
        return
    if not await server_reachable():
        with embedded_postgres(scratch / "embedded", prefix) as url:
            yield url, "embedded"
        return
    name = f"{prefix}_{secrets.token_hex(4)}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_async_engine(SERVER_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(SERVER_URL).set(database=name).render_as_string(False), "server"
        finally:
            async with admin.connect() as connection:
                # FORCE: a connection the app's pool failed to close must not leave it behind.
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def bench_settings(url: str, origin: str, scratch: Path) -> Settings:
    """The app's settings for a database from `scratch_database`. A configured one keeps the
    environment's settings: its keys (BANK_DATA_DIR or BANK_MASTER_KEY) must open the signing
    key a previous run stored there. Otherwise every key file goes to `scratch`."""
    if origin == "configured":
        return load_settings()
    return load_settings(database_url=url, data_dir=scratch / "data")


def reused_database() -> bool:
    """True when BANK_DATABASE_URL names a database we must leave as we found it."""
    return bool(os.environ.get("BANK_DATABASE_URL"))


async def migrated_engine(settings: Settings) -> AsyncEngine:
    """The benchmark's own engine (not the app's pool), with the schema at head."""
    engine = create_async_engine(settings.async_database_url(), poolclass=NullPool)
    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
    return engine


# --- timing statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def median_ms(values: Sequence[float]) -> float:
    return ms(statistics.median(values))


def rate(timings: Sequence[float]) -> float:
    """Requests per second of a sequential loop: count over the summed request times."""
    return len(timings) / sum(timings)


def peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    """The process's resident set now (cheap: one read of /proc/self/statm)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def slope(values: Sequence[float]) -> float:
    """Least-squares growth per step of a series sampled at equal steps (0 for < 2 samples)."""
    if len(values) < 2:
        return 0.0
    return statistics.linear_regression(range(len(values)), values).slope


# --- HTTP ---------------------------------------------------------------------------------------


def asgi_client(app: Litestar) -> httpx.AsyncClient:
    """An httpx client driving `app` in-process through ASGI (no sockets)."""
    transport = httpx.ASGITransport(app=cast("Any", app))
    return httpx.AsyncClient(transport=transport, base_url="http://bench")


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: unexpected status "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response


async def timed_gets(
    client: httpx.AsyncClient, path: str, headers: Sequence[dict[str, str]], requests: int
) -> list[float]:
    """`requests` sequential GETs of `path`, rotating through `headers`; each one's seconds."""
    timings: list[float] = []
    for index in range(requests):
        started = time.perf_counter()
        response = await client.get(path, headers=headers[index % len(headers)])
        timings.append(time.perf_counter() - started)
        checked(response)
    return timings


# --- a served app -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree(pid: int) -> list[Any]:
    import psutil  # type: ignore[import-untyped]

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss_mb(pid: int) -> float:
    """Resident set of a process and all its descendants now (MiB; vanished ones count 0)."""
    import psutil

    total = 0
    for process in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += int(process.memory_info().rss)
    return total / 2**20


def tree_cpu_s(pid: int) -> dict[int, float]:
    """User + system CPU seconds each live process of the tree has used so far, by pid."""
    import psutil

    seconds: dict[int, float] = {}
    for process in _tree(pid):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds[int(process.pid)] = float(times.user) + float(times.system)
    return seconds


REPOSITORY = Path(__file__).resolve().parent.parent


def _start_serve(
    settings: Settings, scratch: Path, workers: int, port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BANK_DATABASE_URL": settings.async_database_url().render_as_string(hide_password=False),
        "BANK_DATA_DIR": str(settings.data_dir),
        "BANK_LOG_LEVEL": "INFO",  # as in production: one http.request line per request
        "PROMETHEUS_MULTIPROC_DIR": str(scratch / f"prometheus-{port}"),
    }
    command = [sys.executable, "-m", "bank.cli", "serve", "--workers", str(workers)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with open(scratch / f"serve-{port}.log", "wb") as log:
        return subprocess.Popen(command, env=env, cwd=REPOSITORY, stdout=log, stderr=log)  # noqa: S603 - our own command


@contextlib.asynccontextmanager
async def served_app(
    settings: Settings, scratch: Path, workers: int, *, ready_timeout_s: float = 90.0
) -> AsyncIterator[tuple[str, int]]:
    """`bank serve --workers N` in a subprocess against `settings`' database and keys (its
    BANK_DATA_DIR; BANK_MASTER_KEY and the rest come through the environment); yield (base URL,
    the supervisor's pid) once /health/ready answers 200. Stopped with SIGTERM on exit."""
    port = free_port()
    process = await asyncio.to_thread(_start_serve, settings, scratch, workers, port)
    base_url = f"http://127.0.0.1:{port}"
    log_path = scratch / f"serve-{port}.log"

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-2000:]

    try:
        deadline = time.monotonic() + ready_timeout_s
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as probe:
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"bank serve exited ({process.returncode}):\n{log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/health/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"bank serve not ready in {ready_timeout_s} s:\n{log_tail()}")
                await asyncio.sleep(0.2)
        yield base_url, process.pid
    finally:
        leftovers = _tree(process.pid)[1:]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        for child in leftovers:  # a worker the supervisor failed to stop must not outlive us
            with contextlib.suppress(Exception):
                if child.is_running():
                    child.kill()


# --- residents ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resident:
    """A bare resident account signed in to the benchmark app: its tokens carry `sid`."""

    id: uuid.UUID
    session_id: str  # the live TokenFamily, as a real sign-in would make


async def register_resident_app(engine: AsyncEngine) -> str:
    """An active residents' app client (committed); its client_id."""
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        registry = ClientRegistry(session)
        client = await registry.register(
            Registration(
                kind=ClientKind.RESIDENT_APP,
                name="Benchmark app",
                scopes=RESIDENT_SCOPES,
                redirect_uris=("jp.example.bench:/cb",),
            )
        )
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        return client.client_id


async def add_residents(engine: AsyncEngine, count: int, client_id: str) -> list[Resident]:
    """Bare resident accounts (no real email or password: benchmarks never sign in), each with
    one live TokenFamily for `client_id`, committed."""
    residents = [Resident(uuid.uuid4(), secrets.token_urlsafe(16)) for _ in range(count)]
    expires = datetime.now(UTC) + timedelta(days=1)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO accounts (id, kind, email_index, email_sealed, password_hash, "
                "email_verified_at, roles, status) VALUES (:id, 'resident', :index, '\\x00', "
                "'-', now(), '{}', 'active')"
            ),
            [{"id": r.id, "index": f"bench-{r.id}"} for r in residents],
        )
        await connection.execute(
            text(
                "INSERT INTO token_families (id, account_id, client_id, expires_at) "
                "VALUES (:id, :account, :client, :expires)"
            ),
            [
                {"id": r.session_id, "account": r.id, "client": client_id, "expires": expires}
                for r in residents
            ],
        )
    return residents


async def resident_tokens(
    app: Litestar,
    engine: AsyncEngine,
    settings: Settings,
    client_id: str,
    residents: Sequence[Resident],
    *,
    ttl_s: int = 3_600,
) -> dict[Resident, str]:
    """One access token per resident, signed with the app's active key (the app's lifespan must
    be running). The default life outlasts a full run; it does not change the checking cost."""
    signing_keys: SigningKeys = app.state.signing_keys
    async with AsyncSession(engine) as session, session.begin():
        key = await signing_keys.active(session)  # creates the first key on a new database
    now = int(time.time())
    return {
        resident: mint_access_token(
            key,
            issuer=settings.public_url,
            principal_type=PrincipalType.RESIDENT,
            subject=str(resident.id),
            client_id=client_id,
            scopes=list(RESIDENT_SCOPES),
            now=now,
            ttl_s=ttl_s,
            session_id=resident.session_id,
        )[0]
        for resident in residents
    }


async def forget_residents(
    engine: AsyncEngine, client_id: str, residents: Sequence[Resident]
) -> None:
    """On a database we did not create, leave nothing of ours behind (records, revisions and
    token families go with the accounts; data keys live in their own schema)."""
    ids = [r.id for r in residents]
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM keystore.data_keys WHERE resident_id = ANY(:ids)"), {"ids": ids}
        )
        await connection.execute(text("DELETE FROM accounts WHERE id = ANY(:ids)"), {"ids": ids})
        await connection.execute(
            text("DELETE FROM oauth_clients WHERE client_id = :client"), {"client": client_id}
        )


# --- steps --------------------------------------------------------------------------------------


def city_yesterday(settings: Settings) -> date:
    """The last day the app accepts steps for is its local today; yesterday is complete."""
    return datetime.now(ZoneInfo(settings.local_timezone)).date() - timedelta(days=1)


def steps_body(seed: int, end: date, days: int) -> bytes:
    """A POST /v1/me/steps/ body of `days` days ending on `end`."""
    return json.dumps({"days": list(days_of_steps(seed, end, days))}).encode()


def days_of_steps(seed: int, end: date, days: int) -> Iterator[dict[str, Any]]:
    """`days` plausible days ending on `end`, as POST /v1/me/steps/ takes them: a personal mean,
    weekend dips, 24 hourly counts summing to the day."""
    rng = random.Random(seed)
    mean = rng.uniform(4_000, 11_000)
    for offset in range(days):
        day = end - timedelta(days=days - 1 - offset)
        steps = max(0, int(rng.gauss(mean * (0.8 if day.weekday() >= 5 else 1.0), 2_000)))
        weights = [0.1 if hour < 6 or hour > 22 else rng.uniform(0.5, 2.0) for hour in range(24)]
        hourly = [int(steps * w / sum(weights)) for w in weights]
        hourly[12] += steps - sum(hourly)
        yield {
            "day": day.isoformat(),
            "steps": steps,
            "platform": "healthkit",
            "method": "automatic",
            "hourly": hourly,
            "device_id": f"iphone-{seed}",
        }


async def push_steps(
    client: httpx.AsyncClient, token: str, body: bytes, *, expect: int, outcome: str = "stored"
) -> float:
    """POST one encoded batch to /v1/me/steps/; its seconds. Exits unless `expect` items come
    back with `outcome`."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    response = await client.post(STEPS_PATH, content=body, headers=headers)
    elapsed = time.perf_counter() - started
    check_push(response.status_code, response.content, expect=expect, outcome=outcome)
    return elapsed


async def push_steps_over_tcp(
    address: tuple[str, int], token: str, body: bytes, *, expect: int, outcome: str = "stored"
) -> float:
    """`push_steps` on a TCP connection of its own, as a phone would send it, with h11 (the
    sans-IO HTTP/1.1 library under httpx and uvicorn) instead of httpx: a load generator on
    the server's machine must leave it the CPU (httpx spent ~2.8 ms of it on each push)."""
    host, port = address
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        connection = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="POST",
            target=STEPS_PATH,
            headers=[
                ("Host", f"{host}:{port}"),
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        writer.write(connection.send(request) + connection.send(h11.Data(data=body)))
        status, content = 0, bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(1 << 16))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    elapsed = time.perf_counter() - started
    check_push(status, bytes(content), expect=expect, outcome=outcome)
    return elapsed


def check_push(status: int, content: bytes, *, expect: int, outcome: str) -> None:
    """Exit unless a push answered 200 with `expect` items of `outcome`. Only the counts are
    read (msgspec skips the item results): the client's CPU is the server's in --server mode."""
    counts = _PUSH_COUNTS.decode(content) if status == 200 else None
    if counts is None or getattr(counts, outcome) != expect:
        raise SystemExit(f"push failed: {status} {content[:300]!r}")


class _PushCounts(msgspec.Struct):
    stored: int
    replaced: int
    unchanged: int
    refused: int


_PUSH_COUNTS = msgspec.json.Decoder(_PushCounts)
