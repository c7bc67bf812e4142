"""Data portability: a resident's export is built by a real job worker, sealed at rest, holds
every record as JSON and CSV with numbers masked, is theirs alone, and is gone after a day. As a
person opens it: times in one stated zone, station and ward names beside codes, CSV that Excel
in Japan reads."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import procrastinate
import pytest
from litestar import Litestar
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank import reference
from bank.app import JOB_APP, PACKAGES
from bank.db import Database, make_session_factory
from bank.jobs import opened
from bank.settings import Settings, as_libpq
from bank.vault.models import Export
from bank.vault.repository import ExportRows
from bank.vault.resources import WorkerResources
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import Clients, Residents
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

EXPORTS = "/v1/me/exports/"
CARD = card_of(4242)


@pytest.fixture
async def worker(
    settings: Settings, engine: AsyncEngine, committing_app: Litestar
) -> AsyncIterator[procrastinate.App]:
    async with opened(JOB_APP, as_libpq(settings.async_database_url())) as jobs:
        yield jobs
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM procrastinate_jobs WHERE task_name = 'vault:build_export'")
        )


async def drain(
    jobs: procrastinate.App, app: Litestar, settings: Settings, engine: AsyncEngine
) -> None:
    resources = WorkerResources(
        settings, Database(sessions=make_session_factory(engine)), app.state.keystore, PACKAGES
    )
    await jobs.run_worker_async(
        queues=["exports"], wait=False, install_signal_handlers=False, listen_notify=False,
        additional_context=resources.as_context(),
    )  # fmt: skip


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
    assert (export["status"], export["download"]) == ("pending", None)
    early = await client.get(f"{EXPORTS}{export['id']}/download", headers=headers)
    assert_problem(early, 409, "export-not-ready")

    await drain(worker, committing_app, settings, engine)
    ready = (await client.get(f"{EXPORTS}{export['id']}", headers=headers)).json()
    assert ready["status"] == "ready"
    for url in (f"{EXPORTS}{export['id']}", ready["download"]):  # Bob: as if it did not exist
        assert_problem(await client.get(url, headers=bob.headers()), 404, "export-not-found")
    download = await client.get(ready["download"], headers=headers)
    assert download.headers["content-type"] == "application/zip"

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
