"""Data portability: a resident's export is built by a real job worker, sealed at rest, holds
every record as JSON and CSV with numbers masked, is theirs alone, and is gone after a day.

As a person opens it: times in one stated zone, station and ward names beside codes, CSV that
Excel in Japan reads; and as the bank protects itself: asking again while one is built answers
with that one, and a resident asks for at most a few a day (429 beyond, race-safe)."""

from __future__ import annotations

import asyncio
import io
import json
import math
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import procrastinate
import pytest
from litestar import Litestar
from pydantic import ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bank import reference
from bank.app import create_app
from bank.db import Database
from bank.settings import Settings
from bank.vault.errors import ExportLimitReached
from bank.vault.exports import Exports
from bank.vault.jobs import enqueue_export_build
from bank.vault.models import Export
from bank.vault.repository import ExportRows
from bank.vault.rules.exports import day_start, next_day_start
from bank.vault.settings import VaultSettings
from tests.bank.identity.flows import committed
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import Clients, Residents, drain
from tests.bank.vault.test_export_files import (
    assert_instant,
    assert_times_follow_the_rule,
    read_csv,
    read_csv_by_japanese,
)
from tests.bank.vault.test_sources_api import (
    CHECKUPS,
    INSURER,
    LINKS,
    SUBWAY,
    TAPS,
    card_of,
    checkup,
    ride,
)
from tests.conftest import savepoint_sessions, serve

EXPORTS = "/v1/me/exports/"
CARD = card_of(4242)


def per_day(app: Litestar) -> int:
    section = app.state.sections["vault"]
    assert isinstance(section, VaultSettings)
    return section.exports_per_day


def status_url(export_id: str | uuid.UUID) -> str:
    return f"/v1/me/exports/{export_id}"


_BUILD_JOBS = text(
    "SELECT status::text FROM procrastinate_jobs WHERE args->>'export_id' = :id ORDER BY id"
)
_SET_JOB = text(
    "UPDATE procrastinate_jobs SET status = CAST(:status AS procrastinate_job_status) "
    "WHERE args->>'export_id' = :id"
)


async def build_jobs(session: AsyncSession, export_id: str) -> list[str]:
    """The statuses of the export's build jobs, oldest first."""
    return list((await session.scalars(_BUILD_JOBS, {"id": export_id})).all())


async def set_build_job(session: AsyncSession, export_id: str, status: str) -> None:
    """Put the export's build job in `status`, as the worker would (`doing` while it runs,
    `failed` once its retries are spent)."""
    await session.execute(_SET_JOB, {"id": export_id, "status": status})


def ready_export(resident_id: uuid.UUID, requested_at: datetime) -> Export:
    """An export asked for (and built) at `requested_at`, as an earlier request left it."""
    return Export(
        resident_id=resident_id, id=uuid.uuid4(), status="ready", requested_at=requested_at,
        ready_at=requested_at, expires_at=requested_at + timedelta(days=1), size_bytes=0,
    )  # fmt: skip


async def exports_since(session: AsyncSession, resident_id: uuid.UUID, since: datetime) -> int:
    return await ExportRows(session).requested_since(resident_id, since)


# --- the export as a person opens it -------------------------------------------------------------


async def test_an_export_holds_every_record_masked_and_only_its_owner_gets_it(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    committing_residents: Residents,
    committing_sources: Clients,
    worker: procrastinate.App,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    client = committing_client
    zone = ZoneInfo(settings.local_timezone)
    alice, bob = await committing_residents.new(), await committing_residents.new()
    subway = await committing_sources.new("ingest:transit", feeds=(SUBWAY,))
    insurer = await committing_sources.new("ingest:checkups", feeds=(INSURER,))
    today = datetime.now(zone).date()
    yesterday = today - timedelta(days=1)
    headers = alice.headers()
    days = [{"day": (today - timedelta(days=n)).isoformat(), "steps": 5000 + n,
             "platform": "healthkit", "device_id": "alice-phone"} for n in range(1, 4)]  # fmt: skip
    assert (await client.post("/v1/me/steps/", json={"days": days}, headers=headers)).is_success
    for body in (
        {"kind": "transit_card", "card_number": CARD},
        {"kind": "insurer_member", "insurer_number": INSURER, "member_number": "K-77"},
    ):
        assert (await client.post(LINKS, json=body, headers=headers)).status_code == 201
    entry, exit_ = ride(CARD, yesterday, 1)
    exit_["tapped_at"] = datetime.fromisoformat(exit_["tapped_at"]).astimezone(UTC).isoformat()
    taps = await client.post(
        TAPS, json={"taps": [entry, exit_]}, headers=subway.headers("ingest:transit")
    )
    assert taps.json()["stored"] == 2
    exams = await client.post(
        CHECKUPS, json={"checkups": [checkup("K-77", "E-9", yesterday)]},
        headers=insurer.headers("ingest:checkups"),
    )  # fmt: skip
    assert exams.json()["stored"] == 1

    requested = await client.post(EXPORTS, headers=headers)
    assert requested.status_code == 202
    export = requested.json()
    assert requested.headers["location"] == status_url(export["id"])
    assert (export["status"], export["download"]) == ("pending", None)
    early = await client.get(f"{EXPORTS}{export['id']}/download", headers=headers)
    assert_problem(early, 409, "export-not-ready")

    await drain(worker, committing_app, settings, engine)
    ready = (await client.get(requested.headers["location"], headers=headers)).json()
    assert ready["status"] == "ready"
    for url in (f"{EXPORTS}{export['id']}", ready["download"]):  # Bob: as if it did not exist
        assert_problem(await client.get(url, headers=bob.headers()), 404, "export-not-found")
    download = await client.get(ready["download"], headers=headers)
    assert download.headers["content-type"] == "application/zip"
    ready_day = datetime.fromisoformat(ready["ready_at"]).astimezone(zone).date()
    assert (
        f'filename="city-bank-export-{ready_day.isoformat()}.zip"'
        in (download.headers["content-disposition"])
    )

    archive = zipfile.ZipFile(io.BytesIO(download.content))
    names = {name.removeprefix("city-bank-export/") for name in archive.namelist()}
    assert names == {
        "README.txt", "account.json", "links.json", "steps.json", "steps.csv",
        "transit_taps.json", "transit_taps.csv", "checkups.json", "checkups.csv",
        "unreadable.json",
    }  # fmt: skip

    def read(name: str) -> bytes:
        return archive.read(f"city-bank-export/{name}")

    _, steps = read_csv(read("steps.csv"))
    assert sorted(int(row["steps"]) for row in steps) == [5001, 5002, 5003]
    assert [row["日付"] for row in read_csv_by_japanese(read("steps.csv"))] == [
        row["day"] for row in steps
    ]
    assert json.loads(read("account.json"))["id"] == str(alice.id)
    assert [link["masked"] for link in json.loads(read("links.json"))] == [
        f"**** {CARD[-4:]}", f"{INSURER} / ***77",
    ]  # fmt: skip

    # Stations, their lines and wards named beside the codes, in Japanese and English.
    tapped = json.loads(read("transit_taps.json"))
    _, tap_rows = read_csv(read("transit_taps.csv"))
    assert [t["station"] for t in tapped] == [row["station"] for row in tap_rows] == ["N07", "N13"]
    for tap, row in zip(tapped, tap_rows, strict=True):
        station = reference.station(tap["station"])
        assert station is not None
        ward = reference.ward(station.ward_code)
        assert ward is not None
        for fields in (tap, row):
            assert (fields["station_ja"], fields["station_en"]) == (
                station.name_ja, station.name_en,
            )  # fmt: skip
            assert (fields["ward_code"], fields["ward_ja"], fields["ward_en"]) == (
                ward.code, ward.name_ja, ward.name_en,
            )  # fmt: skip
            assert (fields["line_ja"], fields["line_en"]) == ("南北線", "Namboku")
    n07 = reference.station("N07")
    assert n07 is not None
    assert read_csv_by_japanese(read("transit_taps.csv"))[0]["駅名"] == n07.name_ja
    # Sent as +09:00 and as UTC, both written in the city's zone, the same instants.
    assert [datetime.fromisoformat(t["tapped_at"]) for t in tapped] == [
        datetime.fromisoformat(entry["tapped_at"]), datetime.fromisoformat(exit_["tapped_at"]),
    ]  # fmt: skip
    for tap in tapped:
        assert_instant(tap["tapped_at"], zone)

    _, checkup_rows = read_csv(read("checkups.csv"))
    by_item = {row["item"]: row for row in checkup_rows}
    assert set(by_item) >= {"ldl", "sbp", "hba1c"}
    names_of = {item.item: item for item in reference.checkup_items()}
    assert (by_item["hba1c"]["item_ja"], by_item["hba1c"]["item_en"]) == (
        names_of["hba1c"].name_ja, names_of["hba1c"].name_en,
    )  # fmt: skip

    # ISO 8601 everywhere, every time in the zone the README states.
    readme = read("README.txt").decode()
    assert f"Every time is ISO 8601 in {zone.key} time with its offset from UTC" in readme
    made = readme.split("Made / 作成日時: ", 1)[1].split("\n", 1)[0]
    assert_instant(made, zone)
    times = 0
    for name in names:
        if name.endswith(".json"):
            times += assert_times_follow_the_rule(json.loads(read(name)), zone)
        elif name.endswith(".csv"):
            times += assert_times_follow_the_rule(read_csv(read(name))[1], zone)
    account = json.loads(read("account.json"))
    assert_instant(account["created_at"], zone)
    assert_instant(account["email_verified_at"], zone)
    assert times >= 2 + 2 + 2 + 2  # account, links, taps in JSON and CSV
    for info in archive.infolist():  # a ZIP's dates carry no zone: the city's local time
        assert datetime(*info.date_time, tzinfo=zone).date() == datetime.fromisoformat(made).date()

    left_out = json.loads(read("unreadable.json"))
    assert {name: files["left_out"] for name, files in left_out.items()} == {
        "steps": 0, "transit_taps": 0, "checkups": 0,
    }  # fmt: skip
    assert "none was left out" in readme
    everything = "".join(read(name).decode("utf-8-sig") for name in names)
    assert CARD not in everything  # numbers only masked
    assert "K-77" not in everything

    async with AsyncSession(engine) as session:
        stored = await session.scalar(select(Export).where(Export.id == export["id"]))
        assert stored is not None
        assert stored.sealed_zip is not None
        assert b"steps.csv" not in stored.sealed_zip  # sealed at rest, not a plain ZIP
        assert stored.expires_at - stored.ready_at == timedelta(days=1)  # type: ignore[operator]


async def test_an_expired_export_is_gone_and_purged(
    client: httpx.AsyncClient, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    export = (await client.post(EXPORTS, headers=resident.headers())).json()
    await db_session.execute(
        update(Export)
        .where(Export.id == export["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await db_session.commit()
    response = await client.get(f"{EXPORTS}{export['id']}", headers=resident.headers())
    assert_problem(response, 404, "export-not-found")
    assert await ExportRows(db_session).purge_expired(datetime.now(UTC)) >= 1
    assert await db_session.get(Export, (resident.id, export["id"])) is None


def test_the_openapi_document_gives_the_202s_location_and_the_429(settings: Settings) -> None:
    document = create_app(settings).openapi_schema.to_schema()
    responses = document["paths"]["/v1/me/exports"]["post"]["responses"]
    assert "Location" in responses["202"]["headers"]
    assert "application/problem+json" in responses["429"]["content"]
    assert "export-limit-reached" in responses["429"]["description"]


# --- asking again while it is built ---------------------------------------------------------------


async def test_asking_again_while_it_is_built_answers_with_the_same_export_and_no_new_job(
    client: httpx.AsyncClient, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    headers = resident.headers()
    first = await client.post(EXPORTS, headers=headers)
    assert first.status_code == 202
    export_id = first.json()["id"]
    for status in ("todo", "doing"):  # queued, then running
        await set_build_job(db_session, export_id, status)
        await db_session.commit()
        again = await client.post(EXPORTS, headers=headers)
        assert again.status_code == 202
        assert again.json() == first.json()
        assert again.headers["location"] == status_url(export_id)
        assert await build_jobs(db_session, export_id) == [status]  # no second job
    assert (await client.get(status_url(export_id), headers=headers)).json()["status"] == (
        "pending"
    )
    # The build gave up (its retries spent): it is not being built, so asking again starts one.
    await set_build_job(db_session, export_id, "failed")
    await db_session.commit()
    gave_up = await client.get(status_url(export_id), headers=headers)
    assert gave_up.json()["status"] == "failed"
    assert gave_up.json()["download"] is None
    fresh = await client.post(EXPORTS, headers=headers)
    assert fresh.status_code == 202
    assert fresh.json()["id"] != export_id
    assert await build_jobs(db_session, fresh.json()["id"]) == ["todo"]
    # Another resident's export being built is not theirs to be handed.
    other = await residents.new()
    theirs = await client.post(EXPORTS, headers=other.headers())
    assert theirs.json()["id"] not in {export_id, fresh.json()["id"]}


async def test_once_ready_asking_again_builds_a_new_export(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    committing_residents: Residents,
    worker: procrastinate.App,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    resident = await committing_residents.new()
    headers = resident.headers()
    first = (await committing_client.post(EXPORTS, headers=headers)).json()
    await drain(worker, committing_app, settings, engine)
    second = await committing_client.post(EXPORTS, headers=headers)
    assert second.status_code == 202
    assert second.json()["id"] != first["id"]
    assert second.headers["location"] == status_url(second.json()["id"])


# --- the daily limit -----------------------------------------------------------------------------


async def test_beyond_the_days_exports_the_answer_is_429_with_retry_after_until_midnight(
    app: Litestar,
    client: httpx.AsyncClient,
    residents: Residents,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    zone, limit = ZoneInfo(settings.local_timezone), per_day(app)
    resident, neighbour = await residents.new(), await residents.new()
    headers = resident.headers()
    now = datetime.now(UTC)
    # The day's exports but one, and one asked for a second before the day began.
    db_session.add_all([ready_export(resident.id, now) for _ in range(limit - 1)])
    db_session.add(ready_export(resident.id, day_start(now, zone) - timedelta(seconds=1)))
    await db_session.commit()

    last = await client.post(EXPORTS, headers=headers)
    assert last.status_code == 202  # yesterday's does not count
    await set_build_job(db_session, last.json()["id"], "failed")  # not being built any more
    await db_session.commit()

    before = datetime.now(UTC)
    refused = await client.post(EXPORTS, headers=headers)
    after = datetime.now(UTC)
    body = assert_problem(refused, 429, "export-limit-reached")
    assert str(limit) in body["detail"]
    assert "location" not in refused.headers
    wait = int(refused.headers["retry-after"])
    assert math.ceil((next_day_start(after, zone) - after).total_seconds()) <= wait
    assert wait <= math.ceil((next_day_start(before, zone) - before).total_seconds())
    since = day_start(now, zone)
    assert await exports_since(db_session, resident.id, since) == limit  # nothing added

    # The hourly purge takes expired exports only: none of today's, so the count stands.
    await ExportRows(db_session).purge_expired(datetime.now(UTC))
    await db_session.commit()
    assert_problem(await client.post(EXPORTS, headers=headers), 429, "export-limit-reached")
    # The limit is each resident's own.
    assert (await client.post(EXPORTS, headers=neighbour.headers())).status_code == 202


async def test_the_limit_is_read_from_the_vaults_settings(
    settings: Settings,
    connection: AsyncConnection,
    residents: Residents,
    db_session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BANK_VAULT__EXPORTS_PER_DAY", "1")
    one_a_day = create_app(settings, database=Database(sessions=savepoint_sessions(connection)))
    assert per_day(one_a_day) == 1
    resident = await residents.new()
    async with serve(one_a_day) as client:
        first = await client.post(EXPORTS, headers=resident.headers())
        assert first.status_code == 202
        await set_build_job(db_session, first.json()["id"], "failed")
        await db_session.commit()
        second = await client.post(EXPORTS, headers=resident.headers())
        assert_problem(second, 429, "export-limit-reached")
    monkeypatch.setenv("BANK_VAULT__EXPORTS_PER_DAY", "0")
    with pytest.raises(ValidationError, match="exports_per_day"):
        VaultSettings()
    assert VaultSettings.model_fields["exports_per_day"].default == 5


async def test_concurrent_requests_make_one_export_and_never_pass_the_days_last_slot(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    committing_residents: Residents,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    """Twelve requests at once, each on its own connection, for the day's last export: one
    export and one job are made, and every request answers with it; once its build has given
    up, twelve more at once are all refused. Without the per-resident lock, several would each
    find no export being built and room left, and each make one."""
    zone, limit = ZoneInfo(settings.local_timezone), per_day(committing_app)
    resident = await committing_residents.new()
    headers = resident.headers()
    now = datetime.now(UTC)

    async def fill(session: AsyncSession) -> None:
        session.add_all([ready_export(resident.id, now) for _ in range(limit - 1)])

    await committed(engine, fill)
    try:
        answers = await asyncio.gather(
            *(committing_client.post(EXPORTS, headers=headers) for _ in range(12))
        )
        assert [answer.status_code for answer in answers] == [202] * 12
        ids = {answer.json()["id"] for answer in answers}
        assert len(ids) == 1
        (export_id,) = ids
        assert {answer.headers["location"] for answer in answers} == {status_url(export_id)}

        async def count(session: AsyncSession) -> tuple[int, int]:
            jobs = await session.scalar(
                select(func.count())
                .select_from(text("procrastinate_jobs"))
                .where(text("args->>'resident_id' = :resident"))
                .params(resident=str(resident.id))
            )
            return await exports_since(session, resident.id, day_start(now, zone)), int(jobs or 0)

        assert await committed(engine, count) == (limit, 1)

        async def give_up(session: AsyncSession) -> None:
            await set_build_job(session, export_id, "failed")

        await committed(engine, give_up)
        answers = await asyncio.gather(
            *(committing_client.post(EXPORTS, headers=headers) for _ in range(12))
        )
        for answer in answers:
            assert_problem(answer, 429, "export-limit-reached")
        assert await committed(engine, count) == (limit, 1)
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM procrastinate_jobs WHERE args->>'resident_id' = :resident"),
                {"resident": str(resident.id)},
            )


async def _waits_for_a_lock(engine: AsyncEngine, pid: int, request: asyncio.Task[Export]) -> bool:
    """Whether backend `pid` comes to wait for a lock before `request` is done."""
    query = text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid")
    while not request.done():
        async with engine.connect() as connection:
            if await connection.scalar(query, {"pid": pid}):
                return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.parametrize("first_build", ["todo", "failed"])
async def test_a_second_request_waits_for_the_first_and_sees_its_export(
    committing_app: Litestar,
    committing_residents: Residents,
    settings: Settings,
    engine: AsyncEngine,
    first_build: str,
) -> None:
    """Step by step, each request on its own connection: the first takes the day's last slot
    and has not committed yet; the second waits for it, then answers with its export (while
    it is built) or is refused (its build gave up: the slot is spent). Without the lock the
    second would not wait, see neither, and make a second export past the limit."""
    zone, limit = ZoneInfo(settings.local_timezone), per_day(committing_app)
    resident = await committing_residents.new()
    now = datetime.now(UTC)

    async def fill(session: AsyncSession) -> None:
        session.add_all([ready_export(resident.id, now) for _ in range(limit - 1)])

    await committed(engine, fill)

    def exports_of(session: AsyncSession) -> Exports:
        return Exports(
            session, committing_app.state.keystore, enqueue_build=enqueue_export_build,
            per_day=limit, zone=zone,
        )  # fmt: skip

    try:
        async with AsyncSession(engine) as first, AsyncSession(engine) as second:
            await first.begin()
            made = (await exports_of(first).request(resident.id)).id
            await set_build_job(first, str(made), first_build)
            await second.begin()
            pid = await second.scalar(text("SELECT pg_backend_pid()"))
            assert isinstance(pid, int)
            asked = asyncio.create_task(exports_of(second).request(resident.id))
            assert await _waits_for_a_lock(engine, pid, asked)
            await first.commit()
            if first_build == "todo":
                assert (await asked).id == made
            else:
                with pytest.raises(ExportLimitReached):
                    await asked
            await second.rollback()

        async def count(session: AsyncSession) -> int:
            return await exports_since(session, resident.id, day_start(now, zone))

        assert await committed(engine, count) == limit
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM procrastinate_jobs WHERE args->>'resident_id' = :resident"),
                {"resident": str(resident.id)},
            )
