"""Records that do not open fail closed, over HTTP (issue 12, findings 4 and 5).

A sealed value swapped between two residents, between two days, an older revision copied into
the current row, a tap copied over another tap, a checkup moved to another resident: each read
answers 2xx with that record marked unreadable (or 404 for the latest checkup), never 500 and
never the foreign value; the other records are served; the summaries and the export state how
many were left out; `bank_records_unreadable_total` counts them. A resident whose data keys are
gone (a backup restored without its key store) reads nothing, consistently, and no 500.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.package import ExportContext
from bank.settings import Settings
from bank.vault.exports import export_records
from bank.vault.models import Export
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import ClientPrincipal, Clients, Resident, Residents, unique_marker
from tests.bank.vault.test_sources_api import (
    INSURER,
    SUBWAY,
    card_of,
    checkup,
    link_card,
    link_member,
    push_taps,
    ride,
)

Client = httpx.AsyncClient
STEPS = "/v1/me/steps/"
SUMMARY = "/v1/me/steps/summary"
TAPS = "/v1/me/transit/taps"
RIDES = "/v1/me/transit/rides"
CHECKUPS = "/v1/me/checkups/"
LATEST = "/v1/me/checkups/latest"
_FAST = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_METRIC = re.compile(
    r'^bank_records_unreadable_total\{kind="(?P<kind>[^"]+)",reason="(?P<reason>[^"]+)"\} '
    r"(?P<value>\S+)$"
)


@pytest.fixture
def today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.local_timezone)).date()


@pytest.fixture
async def subway(sources: Clients) -> ClientPrincipal:
    return await sources.new("ingest:transit", feeds=(SUBWAY,))


@pytest.fixture
async def insurer(sources: Clients) -> ClientPrincipal:
    return await sources.new("ingest:checkups", feeds=(INSURER,))


async def unreadable_counted(client: Client, kind: str, reason: str = "does-not-open") -> float:
    """`bank_records_unreadable_total{kind, reason}` as /metrics shows it (0 before the first)."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    for line in response.text.splitlines():
        found = _METRIC.match(line)
        if found and (found["kind"], found["reason"]) == (kind, reason):
            return float(found["value"])
    return 0.0


async def push_days(client: Client, resident: Resident, days: dict[date, int]) -> None:
    items = [{"day": d.isoformat(), "steps": n, "platform": "healthkit"} for d, n in days.items()]
    response = await client.post(STEPS, json={"days": items}, headers=resident.headers())
    assert response.status_code == 200, response.text
    assert all(r["outcome"] in {"stored", "replaced"} for r in response.json()["results"])


async def get_ok(client: Client, resident: Resident, url: str, **params: str) -> Any:
    response = await client.get(url, params=params, headers=resident.headers("records:read"))
    assert response.status_code == 200, response.text
    return response.json()


async def listed_days(client: Client, resident: Resident, start: date, end: date) -> Any:
    return (await get_ok(client, resident, STEPS, **{"from": str(start), "to": str(end)}))["items"]


async def tamper(session: AsyncSession, statement: str, **params: Any) -> int:
    """Run an UPDATE as someone with write access to the database would, and let the app see
    it (the savepoint is released); the number of rows it changed."""
    result = await session.execute(text(statement), params)
    await session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


# --- steps --------------------------------------------------------------------------------------


@_FAST
@given(count=st.integers(min_value=1, max_value=5), data=st.data())
async def test_a_day_swapped_in_from_another_resident_is_marked_and_never_served(
    client: Client,
    residents: Residents,
    db_session: AsyncSession,
    today: date,
    count: int,
    data: st.DataObject,
) -> None:
    alice, bob = await residents.new(), await residents.new()
    first = today.replace(day=1) - timedelta(days=40)  # a whole past month, whatever today is
    first = first.replace(day=1)
    days = [first + timedelta(days=n) for n in range(count)]
    swapped = data.draw(st.sampled_from(days), label="swapped")
    alices = {day: 1000 + n for n, day in enumerate(days)}
    bobs_marker = unique_marker()
    await push_days(client, alice, alices)
    await push_days(client, bob, {swapped: bobs_marker})
    before = await unreadable_counted(client, "steps")

    assert await tamper(
        db_session,
        "UPDATE step_days SET sealed = b.sealed FROM step_days AS b "
        "WHERE step_days.resident_id = :alice AND b.resident_id = :bob "
        "AND step_days.day = :day AND b.day = :day AND b.source = step_days.source",
        alice=alice.id, bob=bob.id, day=swapped,
    ) == 1  # fmt: skip

    items = await listed_days(client, alice, first, days[-1])
    assert [item["day"] for item in items] == [str(day) for day in days]
    for item, day in zip(items, days, strict=True):
        if day == swapped:
            assert item == {
                "status": "unreadable", "day": str(day), "platform": "healthkit", "revision": 1,
                "unreadable": True,
            }  # fmt: skip
        else:
            assert (item["status"], item["steps"]) == ("opened", alices[day])
    summary = await get_ok(client, alice, SUMMARY, month=month_of(first))
    assert summary["unreadable_left_out"] == 1
    assert summary["total_steps"] == sum(n for day, n in alices.items() if day != swapped)
    assert summary["days_recorded"] == count - 1
    assert str(bobs_marker) not in json.dumps([items, summary])
    assert await unreadable_counted(client, "steps") == before + 2  # the list and the summary
    # Bob's own day still opens: his row was read, not moved.
    [bobs] = await listed_days(client, bob, swapped, swapped)
    assert bobs["steps"] == bobs_marker


async def test_two_days_swapped_are_both_marked_and_the_others_served(
    client: Client, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    resident = await residents.new()
    days = [today - timedelta(days=n) for n in (5, 4, 3)]
    await push_days(client, resident, {day: 2000 + n for n, day in enumerate(days)})

    assert await tamper(
        db_session,
        "UPDATE step_days SET sealed = other.sealed FROM step_days AS other "
        "WHERE step_days.resident_id = :resident AND other.resident_id = :resident "
        "AND step_days.source = other.source AND step_days.day <> other.day "
        "AND step_days.day IN (:a, :b) AND other.day IN (:a, :b)",
        resident=resident.id, a=days[0], b=days[1],
    ) == 2  # fmt: skip

    items = await listed_days(client, resident, days[0], days[-1])
    assert [(item["day"], item["status"]) for item in items] == [
        (str(days[0]), "unreadable"), (str(days[1]), "unreadable"), (str(days[2]), "opened"),
    ]  # fmt: skip
    assert items[2]["steps"] == 2002
    assert "2000" not in json.dumps(items)
    assert "2001" not in json.dumps(items)


async def test_an_older_revision_copied_into_the_current_row_is_marked_not_served_as_current(
    client: Client, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    resident = await residents.new()
    day, other = today - timedelta(days=2), today - timedelta(days=1)
    await push_days(client, resident, {day: 3111, other: 4000})
    await push_days(client, resident, {day: 3222})  # revision 2; revision 1 kept beside it

    assert await tamper(
        db_session,
        "UPDATE step_days SET sealed = r.sealed FROM step_day_revisions AS r "
        "WHERE step_days.resident_id = :resident AND r.resident_id = :resident "
        "AND r.day = step_days.day AND r.source = step_days.source AND r.revision = 1",
        resident=resident.id,
    ) == 1  # fmt: skip

    items = await listed_days(client, resident, day, other)
    assert items[0] == {
        "status": "unreadable", "day": str(day), "platform": "healthkit", "revision": 2,
        "unreadable": True,
    }  # fmt: skip
    assert (items[1]["status"], items[1]["steps"]) == ("opened", 4000)
    assert "3111" not in json.dumps(items)


async def test_a_page_cursor_moves_past_an_unreadable_row(
    client: Client, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    resident = await residents.new()
    days = [today - timedelta(days=n) for n in (4, 3, 2, 1)]
    await push_days(client, resident, {day: 5000 + n for n, day in enumerate(days)})
    await tamper(
        db_session,
        "UPDATE step_days SET sealed = substr(sealed, 1, length(sealed) - 1) || '\\x00'::bytea "
        "WHERE resident_id = :resident AND day = :day",
        resident=resident.id, day=days[1],
    )  # fmt: skip
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        params = {"from": str(days[0]), "to": str(days[-1]), "limit": "2"}
        page = await get_ok(
            client, resident, STEPS, **params, **({"cursor": cursor} if cursor else {})
        )
        seen += [(item["day"], item["status"]) for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [
        (str(days[0]), "opened"), (str(days[1]), "unreadable"),
        (str(days[2]), "opened"), (str(days[3]), "opened"),
    ]  # fmt: skip


# --- taps and checkups --------------------------------------------------------------------------


async def test_a_tap_copied_over_another_tap_is_marked_and_the_rides_say_one_left_out(
    client: Client,
    residents: Residents,
    subway: ClientPrincipal,
    db_session: AsyncSession,
    today: date,
) -> None:
    resident = await residents.new()
    await link_card(client, resident, card_of(7))
    day = today - timedelta(days=3)
    taps = ride(card_of(7), day, 1) + ride(card_of(7), day, 2)
    await push_taps(client, subway, taps)
    before = await unreadable_counted(client, "transit_tap")

    entry, exit_ = taps[0]["tap_id"], taps[1]["tap_id"]
    assert await tamper(
        db_session,
        "UPDATE records SET sealed = other.sealed FROM records AS other "
        "WHERE records.resident_id = :resident AND other.resident_id = :resident "
        "AND records.kind = 'transit_tap' AND other.kind = 'transit_tap' "
        "AND records.natural_key = :exit AND other.natural_key = :entry",
        resident=resident.id, entry=f"{SUBWAY}/{entry}", exit=f"{SUBWAY}/{exit_}",
    ) == 1  # fmt: skip

    items = (await get_ok(client, resident, TAPS, **{"from": str(day), "to": str(day)}))["items"]
    assert len(items) == 4
    [marked] = [item for item in items if item["status"] == "unreadable"]
    assert marked == {
        "status": "unreadable", "operator": SUBWAY, "tap_id": exit_, "day": str(day),
        "unreadable": True,
    }  # fmt: skip
    assert sorted(item["tap_id"] for item in items if item["status"] == "opened") == sorted(
        t["tap_id"] for t in taps if t["tap_id"] != exit_
    )
    rides = await get_ok(client, resident, RIDES, month=month_of(day))
    assert rides["unreadable_left_out"] == 1
    assert rides["complete_rides"] == 1  # the second ride; the first lost its exit
    assert await unreadable_counted(client, "transit_tap") == before + 2


async def test_a_checkup_moved_from_another_resident_is_marked_and_latest_is_404(
    client: Client,
    residents: Residents,
    insurer: ClientPrincipal,
    db_session: AsyncSession,
    today: date,
) -> None:
    alice, bob = await residents.new(), await residents.new()
    member_a, member_b = f"A-{uuid.uuid4().hex[:8]}", f"B-{uuid.uuid4().hex[:8]}"
    await link_member(client, alice, member_a)
    await link_member(client, bob, member_b)
    older, newer = today - timedelta(days=60), today - timedelta(days=30)
    for pushed in (
        [checkup(member_a, "E-OLD", older), checkup(member_a, "E-NEW", newer, ldl=111)],
        [checkup(member_b, "E-NEW", newer, ldl=187)],  # the same exam id, at Bob's
    ):
        response = await client.post(
            "/v1/ingest/checkups", json={"checkups": pushed},
            headers=insurer.headers("ingest:checkups"),
        )  # fmt: skip
        assert response.json()["stored"] == len(pushed)
    before = await unreadable_counted(client, "checkup")

    assert await tamper(
        db_session,
        "UPDATE records SET sealed = b.sealed FROM records AS b "
        "WHERE records.resident_id = :alice AND b.resident_id = :bob "
        "AND records.kind = 'checkup' AND b.kind = 'checkup' "
        "AND records.natural_key = b.natural_key",
        alice=alice.id, bob=bob.id,
    ) == 1  # fmt: skip

    items = (await get_ok(client, alice, CHECKUPS, **{"from": str(older), "to": str(today)}))[
        "items"
    ]
    assert [(item["exam_id"], item["status"]) for item in items] == [
        ("E-OLD", "opened"), ("E-NEW", "unreadable"),
    ]  # fmt: skip
    assert items[1] == {
        "status": "unreadable", "institution_code": "0112345678", "exam_id": "E-NEW",
        "exam_date": str(newer), "unreadable": True,
    }  # fmt: skip
    latest = await client.get(LATEST, headers=alice.headers("records:read"))
    body = assert_problem(latest, 404, "record-unreadable")
    assert "187" not in body["detail"]
    assert "111" not in body["detail"]
    assert await unreadable_counted(client, "checkup") == before + 2
    # Bob's latest is his own and still opens.
    bobs = await get_ok(client, bob, LATEST)
    assert {item["item"]: item["value"] for item in bobs["items"]}["ldl"] == 187


# --- links --------------------------------------------------------------------------------------


async def test_a_link_whose_label_does_not_open_is_listed_as_unreadable(
    client: Client, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    card = await link_card(client, resident, card_of(5))
    member = f"M-{uuid.uuid4().hex[:8]}"
    await link_member(client, resident, member)
    before = await unreadable_counted(client, "link")
    assert await tamper(
        db_session,
        "UPDATE links SET sealed = other.sealed FROM links AS other "
        "WHERE links.resident_id = :resident AND other.resident_id = :resident "
        "AND links.kind = 'transit_card' AND other.kind = 'insurer_member'",
        resident=resident.id,
    ) == 1  # fmt: skip

    response = await client.get("/v1/me/links/", headers=resident.headers("account"))
    assert response.status_code == 200, response.text
    by_kind = {link["kind"]: link for link in response.json()}
    assert (by_kind["transit_card"]["masked"], by_kind["transit_card"]["unreadable"]) == (
        None, True,
    )  # fmt: skip
    assert by_kind["transit_card"]["id"] == card["id"]
    assert by_kind["insurer_member"]["unreadable"] is False
    assert by_kind["insurer_member"]["masked"].endswith(member[-2:])
    assert await unreadable_counted(client, "link") == before + 1


# --- deposits onto a row that does not open -----------------------------------------------------


async def test_a_deposit_onto_a_day_that_does_not_open_replaces_it(
    client: Client, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    alice, bob = await residents.new(), await residents.new()
    day = today - timedelta(days=2)
    await push_days(client, alice, {day: 1234})
    await push_days(client, bob, {day: 4321})
    await tamper(
        db_session,
        "UPDATE step_days SET sealed = b.sealed FROM step_days AS b "
        "WHERE step_days.resident_id = :alice AND b.resident_id = :bob AND b.day = step_days.day",
        alice=alice.id, bob=bob.id,
    )  # fmt: skip
    before = await unreadable_counted(client, "steps")
    # Alice sends the very value now in her row: it does not open there, so it is replaced, not
    # "unchanged" (which would tell her what the foreign value holds).
    response = await client.post(
        STEPS, json={"days": [{"day": str(day), "steps": 4321, "platform": "healthkit"}]},
        headers=alice.headers(),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert [r["outcome"] for r in response.json()["results"]] == ["replaced"]
    assert await unreadable_counted(client, "steps") == before + 1
    [item] = await listed_days(client, alice, day, day)
    assert (item["status"], item["steps"], item["revision"]) == ("opened", 4321, 2)


async def test_a_tap_sent_again_onto_a_row_that_does_not_open_replaces_it(
    client: Client,
    residents: Residents,
    subway: ClientPrincipal,
    db_session: AsyncSession,
    today: date,
) -> None:
    resident = await residents.new()
    await link_card(client, resident, card_of(6))
    day = today - timedelta(days=1)
    taps = ride(card_of(6), day, 1)
    await push_taps(client, subway, taps)
    await tamper(
        db_session,
        "UPDATE records SET sealed = other.sealed FROM records AS other "
        "WHERE records.resident_id = :resident AND other.resident_id = :resident "
        "AND records.natural_key = :exit AND other.natural_key = :entry",
        resident=resident.id, entry=f"{SUBWAY}/{taps[0]['tap_id']}",
        exit=f"{SUBWAY}/{taps[1]['tap_id']}",
    )  # fmt: skip
    result = await push_taps(client, subway, taps)
    assert [r["outcome"] for r in result["results"]] == ["unchanged", "replaced"]
    items = (await get_ok(client, resident, TAPS, **{"from": str(day), "to": str(day)}))["items"]
    assert [(item["status"], item["tap_type"]) for item in items] == [
        ("opened", "entry"), ("opened", "exit"),
    ]  # fmt: skip


# --- the export ---------------------------------------------------------------------------------


async def test_an_export_that_does_not_open_is_404_record_unreadable(
    client: Client, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    alice, bob = await residents.new(), await residents.new()
    await push_days(client, alice, {today - timedelta(days=1): 100})  # Alice has a data key
    now = datetime.now(ZoneInfo("UTC"))
    sealed_elsewhere = uuid.uuid4()
    # Bob's own sealed value (a step day) as the export's ZIP: it does not open there.
    await push_days(client, bob, {today - timedelta(days=1): 200})
    bobs = await db_session.scalar(
        text("SELECT sealed FROM step_days WHERE resident_id = :bob"), {"bob": bob.id}
    )
    db_session.add(
        Export(
            resident_id=alice.id, id=sealed_elsewhere, status="ready", requested_at=now,
            ready_at=now, expires_at=now + timedelta(hours=1), size_bytes=len(bobs),
            sealed_zip=bobs,
        )
    )  # fmt: skip
    await db_session.commit()
    before = await unreadable_counted(client, "export")
    response = await client.get(
        f"/v1/me/exports/{sealed_elsewhere}/download", headers=alice.headers()
    )
    assert_problem(response, 404, "record-unreadable")
    assert await unreadable_counted(client, "export") == before + 1


async def test_the_export_states_how_many_records_of_each_file_were_left_out(
    app: Litestar,
    client: Client,
    residents: Residents,
    subway: ClientPrincipal,
    db_session: AsyncSession,
    today: date,
) -> None:
    resident = await residents.new()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    await push_days(client, resident, {day: 6000 + n for n, day in enumerate(days)})
    await link_card(client, resident, card_of(8))
    taps = ride(card_of(8), days[0], 1)
    await push_taps(client, subway, taps)
    await tamper(
        db_session,
        "UPDATE step_days SET sealed = other.sealed FROM step_days AS other "
        "WHERE step_days.resident_id = :resident AND other.resident_id = :resident "
        "AND step_days.day = :a AND other.day = :b",
        resident=resident.id, a=days[0], b=days[1],
    )  # fmt: skip
    await tamper(
        db_session,
        "UPDATE records SET sealed = other.sealed FROM records AS other "
        "WHERE records.resident_id = :resident AND other.resident_id = :resident "
        "AND records.natural_key = :exit AND other.natural_key = :entry",
        resident=resident.id, entry=f"{SUBWAY}/{taps[0]['tap_id']}",
        exit=f"{SUBWAY}/{taps[1]['tap_id']}",
    )  # fmt: skip

    context = ExportContext(zone=ZoneInfo("Asia/Tokyo"), generated_at=datetime.now(UTC))
    files = await export_records(db_session, app.state.keystore, resident.id, context)

    left_out = json.loads(files["unreadable.json"])
    assert {name: part["left_out"] for name, part in left_out.items()} == {
        "steps": 1, "transit_taps": 1, "checkups": 0,
    }  # fmt: skip
    assert left_out["steps"]["records"] == [{"day": str(days[0]), "key": "healthkit"}]
    assert "2 stored record(s) do not open and were left out (steps 1, transit_taps 1)" in (
        files["README.txt"].decode()
    )
    assert [day["steps"] for day in json.loads(files["steps.json"])] == [6001, 6002]
    assert [tap["tap_id"] for tap in json.loads(files["transit_taps.json"])] == [taps[0]["tap_id"]]


# --- no data key at all -------------------------------------------------------------------------


async def test_without_data_keys_every_read_is_empty_and_the_latest_checkup_404(
    client: Client,
    residents: Residents,
    subway: ClientPrincipal,
    insurer: ClientPrincipal,
    db_session: AsyncSession,
    today: date,
) -> None:
    """As a records backup restored without its key store: the rows are there, nothing opens.
    Every list answers empty and every summary zero (read as erased), the latest checkup 404,
    and the rows are counted as unreadable for lack of a key."""
    resident = await residents.new()
    day = today - timedelta(days=2)
    await push_days(client, resident, {day: 7000})
    await link_card(client, resident, card_of(9))
    await push_taps(client, subway, ride(card_of(9), day, 1))
    member = f"K-{uuid.uuid4().hex[:8]}"
    await link_member(client, resident, member)
    response = await client.post(
        "/v1/ingest/checkups", json={"checkups": [checkup(member, "E-1", day)]},
        headers=insurer.headers("ingest:checkups"),
    )  # fmt: skip
    assert response.json()["stored"] == 1
    before = await unreadable_counted(client, "steps", "no-data-key")

    await db_session.execute(delete(DataKey).where(DataKey.resident_id == resident.id))
    await db_session.commit()

    window = {"from": str(day), "to": str(day)}
    assert (await get_ok(client, resident, STEPS, **window))["items"] == []
    assert (await get_ok(client, resident, TAPS, **window))["items"] == []
    assert (await get_ok(client, resident, CHECKUPS, **window))["items"] == []
    summary = await get_ok(client, resident, SUMMARY, month=month_of(day))
    assert (summary["days_recorded"], summary["unreadable_left_out"]) == (0, 0)
    rides = await get_ok(client, resident, RIDES, month=month_of(day))
    assert (rides["rides"], rides["unreadable_left_out"]) == (0, 0)
    latest = await client.get(LATEST, headers=resident.headers("records:read"))
    assert_problem(latest, 404, "no-checkup")
    links = await client.get("/v1/me/links/", headers=resident.headers("account"))
    assert (links.status_code, links.json()) == (200, [])
    assert await unreadable_counted(client, "steps", "no-data-key") == before + 2


# --- the key provider unreachable ---------------------------------------------------------------


async def test_a_key_provider_that_is_gone_is_503_with_retry_after_and_public_routes_still_work(
    app: Litestar,
    client: Client,
    residents: Residents,
    settings: Settings,
    today: date,
    tmp_path: Path,
) -> None:
    """The app's keys on a volume of their own, which then goes away (an unmounted directory;
    an HSM that stops answering raises the same KeyProviderError): reads that need a key answer
    503 key-provider-unavailable with Retry-After, not 500 and not "no records"; what needs no
    key keeps answering."""
    resident = await residents.new()
    day = today - timedelta(days=1)
    await push_days(client, resident, {day: 8000})
    volume = tmp_path / "keys"
    shutil.copytree(settings.data_dir / "keys" / "vault", volume)
    app.state.keystore = KeyStore(LocalKeyProvider(volume))
    window = {"from": str(day), "to": str(day)}
    assert [item["steps"] for item in await listed_days(client, resident, day, day)] == [8000]

    shutil.rmtree(volume)

    for url, params in ((STEPS, window), (SUMMARY, {"month": month_of(day)})):
        response = await client.get(url, params=params, headers=resident.headers("records:read"))
        body = assert_problem(response, 503, "key-provider-unavailable")
        assert response.headers["retry-after"] == "30"
        assert "kek" not in body["detail"].lower()
    pushed = await client.post(
        STEPS, json={"days": [{"day": str(day), "steps": 8001, "platform": "healthkit"}]},
        headers=resident.headers(),
    )  # fmt: skip
    assert_problem(pushed, 503, "key-provider-unavailable")
    assert (await client.get("/health/live")).status_code == 200
    catalogue = await client.get("/problems/key-provider-unavailable")
    assert catalogue.status_code == 200
    assert (await client.get("/docs/openapi.json")).status_code == 200
