"""Records pushed by data sources: routed to residents only through the residents' own links,
only for the source's own kind and feeds, sealed, idempotent, readable by their owner alone."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.settings import Settings
from bank.vault.models import Link, Record
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import Bearer, ClientPrincipal, Clients, Resident, Residents

Client = httpx.AsyncClient
TAPS = "/v1/ingest/transit-taps"
CHECKUPS = "/v1/ingest/checkups"
LINKS = "/v1/me/links/"
SUBWAY = "sapporo-subway"
INSURER = "06139981"
ZONE = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.local_timezone)).date()


def card_of(n: int) -> str:
    return f"3147{n:013d}"


def tap(card: str, tap_id: str, kind: str, at: datetime, station: str, **extra: Any) -> Any:
    line = station[0]
    body = {
        "operator": SUBWAY, "tap_id": tap_id, "card_number": card, "tap_type": kind,
        "tapped_at": at.isoformat(), "station": station, "line": line,
        "fare_product": "stored_value", "fare_yen": 250 if kind == "exit" else None,
    }  # fmt: skip
    return body | extra


def ride(card: str, day: date, n: int) -> list[Any]:
    start = datetime(day.year, day.month, day.day, 8, 5, tzinfo=ZONE)
    return [
        tap(card, f"T{day:%Y%m%d}-{n}-in", "entry", start, "N07"),
        tap(card, f"T{day:%Y%m%d}-{n}-out", "exit", start + timedelta(minutes=14), "N13"),
    ]


def checkup(member: str, exam_id: str, day: date, **values: Any) -> Any:
    items = {"height": 170.0, "weight": 65.0, "bmi": 22.5, "sbp": 128, "dbp": 82, "ldl": 150,
             "hba1c": 5.4, "urine_glucose": "-"} | values  # fmt: skip
    units = {"height": "cm", "weight": "kg", "bmi": "kg/m2", "sbp": "mmHg", "dbp": "mmHg",
             "ldl": "mg/dL", "hba1c": "%", "urine_glucose": ""}  # fmt: skip
    return {
        "institution_code": "0112345678", "exam_id": exam_id, "exam_date": day.isoformat(),
        "insurer_number": INSURER, "member_number": member, "sex": "male", "fasting": True,
        "items": [{"item": k, "value": v, "unit": units[k]} for k, v in items.items()],
    }  # fmt: skip


async def link_card(client: Client, resident: Resident, card: str) -> dict[str, Any]:
    response = await client.post(
        LINKS, json={"kind": "transit_card", "card_number": card}, headers=resident.headers()
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def link_member(client: Client, resident: Resident, member: str) -> None:
    body = {"kind": "insurer_member", "insurer_number": INSURER, "member_number": member}
    response = await client.post(LINKS, json=body, headers=resident.headers())
    assert response.status_code == 201, response.text


async def push_taps(client: Client, source: Bearer, taps: list[Any]) -> Any:
    response = await client.post(
        TAPS, json={"taps": taps}, headers=source.headers("ingest:transit")
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def subway(sources: Clients) -> ClientPrincipal:
    return await sources.new("ingest:transit", feeds=(SUBWAY,))


@pytest.fixture
async def insurer(sources: Clients) -> ClientPrincipal:
    return await sources.new("ingest:checkups", feeds=(INSURER,))


async def test_taps_reach_the_resident_who_linked_the_card_and_pair_into_rides(
    client: Client, residents: Residents, subway: ClientPrincipal, today: date
) -> None:
    resident = await residents.new()
    await link_card(client, resident, card_of(1))
    day = today - timedelta(days=2)
    result = await push_taps(client, subway, ride(card_of(1), day, 1))
    assert [r["outcome"] for r in result["results"]] == ["stored", "stored"]

    listed = await client.get(
        "/v1/me/transit/taps", params={"from": day.isoformat(), "to": day.isoformat()},
        headers=resident.headers("records:read"),
    )  # fmt: skip
    assert [(t["tap_type"], t["station"], t["card_last4"]) for t in listed.json()["items"]] == [
        ("entry", "N07", card_of(1)[-4:]),
        ("exit", "N13", card_of(1)[-4:]),
    ]
    rides = await client.get(
        "/v1/me/transit/rides", params={"month": f"{day:%Y-%m}"},
        headers=resident.headers("records:read"),
    )  # fmt: skip
    body = rides.json()
    assert (body["rides"], body["complete_rides"], body["fares_yen"]) == (1, 1, 250)
    assert (body["items"][0]["from_station"], body["items"][0]["to_station"]) == ("N07", "N13")


async def test_a_retry_is_unchanged_and_a_correction_replaces(
    client: Client, residents: Residents, subway: ClientPrincipal, today: date,
    db_session: AsyncSession,
) -> None:  # fmt: skip
    resident = await residents.new()
    await link_card(client, resident, card_of(2))
    taps = ride(card_of(2), today - timedelta(days=1), 1)
    await push_taps(client, subway, taps)
    again = await push_taps(client, subway, taps)
    assert (again["unchanged"], again["stored"]) == (2, 0)
    corrected = [taps[0], taps[1] | {"fare_yen": 290}]
    result = await push_taps(client, subway, corrected)
    assert [r["outcome"] for r in result["results"]] == ["unchanged", "replaced"]
    revisions = await db_session.scalars(
        select(Record.revision).where(Record.resident_id == resident.id).order_by(Record.revision)
    )
    assert list(revisions) == [1, 2]


async def test_taps_for_unlinked_cards_or_other_operators_are_refused_and_not_stored(
    client: Client, residents: Residents, subway: ClientPrincipal, today: date,
    db_session: AsyncSession,
) -> None:  # fmt: skip
    resident = await residents.new()
    await link_card(client, resident, card_of(3))
    at = datetime.combine(today, datetime.min.time(), ZONE) - timedelta(hours=5)
    result = await push_taps(
        client, subway,
        [
            tap(card_of(4), "X1", "entry", at, "N07"),  # nobody linked this card
            tap(card_of(3), "X2", "entry", at, "S01", operator="jr-hokkaido"),  # not our feed
            tap(card_of(3), "X3", "entry", at, "Z99"),  # no such station
            tap(card_of(3), "X4", "entry", at, "T09"),
        ],
    )  # fmt: skip
    outcomes = [(r["outcome"], [f["path"] for f in r["refusals"]]) for r in result["results"]]
    assert outcomes == [
        ("refused", ["$.taps[0].card_number"]),
        ("refused", ["$.taps[1].operator"]),
        ("refused", ["$.taps[2].station"]),
        ("stored", []),
    ]
    text = str(result)
    assert card_of(4) not in text  # numbers are never echoed
    assert card_of(3) not in text
    stored = await db_session.scalars(
        select(Record.natural_key).where(Record.resident_id == resident.id)
    )
    assert list(stored) == [f"{SUBWAY}/X4"]


async def test_a_source_pushes_only_its_own_kind(
    client: Client, residents: Residents, subway: ClientPrincipal, insurer: ClientPrincipal,
    today: date,
) -> None:  # fmt: skip
    resident = await residents.new()
    body = {"taps": ride(card_of(5), today, 1)}
    response = await client.post(TAPS, json=body, headers=insurer.headers("ingest:checkups"))
    assert_problem(response, 403, "insufficient-scope")
    response = await client.post(
        CHECKUPS, json={"checkups": [checkup("1234", "E1", today)]},
        headers=subway.headers("ingest:transit"),
    )  # fmt: skip
    assert_problem(response, 403, "insufficient-scope")
    response = await client.post(TAPS, json=body, headers=resident.headers())
    assert response.status_code == 401  # a resident token is for another API


async def test_checkups_are_normalised_judged_and_refused_per_item(
    client: Client, residents: Residents, insurer: ClientPrincipal, today: date
) -> None:
    resident = await residents.new()
    await link_member(client, resident, "A-1234")
    exam_day = today - timedelta(days=30)
    pushed = [
        checkup("A-1234", "E-1", exam_day),
        checkup("A-1234", "E-2", exam_day, sbp=900),  # impossible
        checkup("B-9999", "E-3", exam_day),  # nobody linked this membership
        checkup("A-1234", "E-4", exam_day) | {"insurer_number": "0613"},  # not 6 or 8 digits
        checkup("-", "E-5", exam_day),  # no letter or digit left of the member number
    ]
    response = await client.post(
        CHECKUPS, json={"checkups": pushed}, headers=insurer.headers("ingest:checkups")
    )
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["stored", *["refused"] * 4]
    assert [f["path"] for f in results[1]["refusals"]] == ["$.checkups[1].items[3].value"]
    assert [f["path"] for f in results[2]["refusals"]] == ["$.checkups[2].member_number"]
    assert [f["path"] for f in results[3]["refusals"]] == ["$.checkups[3].insurer_number"]
    assert [f["path"] for f in results[4]["refusals"]] == ["$.checkups[4].member_number"]
    assert "900" not in str(results[1])

    latest = await client.get("/v1/me/checkups/latest", headers=resident.headers("records:read"))
    judged = {i["item"]: i["judgement"] for i in latest.json()["items"]}
    assert judged["ldl"] == "referral"  # 150 >= 140 mg/dL
    assert judged["sbp"] == "normal"  # 128 < 130
    assert judged["height"] == "not_judged"
    listed = await client.get(
        "/v1/me/checkups/", params={"from": exam_day.isoformat(), "to": today.isoformat()},
        headers=resident.headers("records:read"),
    )  # fmt: skip
    assert [c["exam_id"] for c in listed.json()["items"]] == ["E-1"]


async def test_a_number_links_to_one_resident_and_is_stored_only_as_a_blind_index(
    client: Client, residents: Residents, db_session: AsyncSession
) -> None:
    alice, bob = await residents.new(), await residents.new()
    link = await link_card(client, alice, card_of(6))
    assert link["masked"] == f"**** {card_of(6)[-4:]}"
    taken = await client.post(
        LINKS, json={"kind": "transit_card", "card_number": card_of(6)}, headers=bob.headers()
    )
    body = assert_problem(taken, 409, "link-taken")
    assert str(alice.id) not in str(body)
    rows = (await db_session.scalars(select(Link).where(Link.resident_id == alice.id))).all()
    assert len(rows) == 1
    assert card_of(6).encode() not in rows[0].blind_index + rows[0].sealed
    # Bob cannot unlink Alice's card by its id, and sees nothing of it.
    gone = await client.delete(f"{LINKS}{link['id']}", headers=bob.headers())
    assert_problem(gone, 404, "link-not-found")
    assert (await client.get(LINKS, headers=bob.headers())).json() == []


async def test_after_unlinking_new_taps_are_refused(
    client: Client, residents: Residents, subway: ClientPrincipal, today: date
) -> None:
    resident = await residents.new()
    link = await link_card(client, resident, card_of(7))
    await push_taps(client, subway, ride(card_of(7), today - timedelta(days=3), 1))
    removed = await client.delete(f"{LINKS}{link['id']}", headers=resident.headers())
    assert removed.status_code == 204
    result = await push_taps(client, subway, ride(card_of(7), today - timedelta(days=2), 2))
    assert result["refused"] == 2
    listed = await client.get(
        "/v1/me/transit/taps",
        params={"from": (today - timedelta(days=9)).isoformat(), "to": today.isoformat()},
        headers=resident.headers("records:read"),
    )
    assert len(listed.json()["items"]) == 2  # what was stored stays the resident's


_examples = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(["tap_id", "station", "line", "tapped_at", "fare_yen", "tap_type"]),
    value=st.one_of(
        st.text(max_size=80),
        st.integers(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
)
@example(field="station", value="N07\x00")
async def test_arbitrary_tap_values_are_refused_or_stored_never_a_server_error(
    client: Client, residents: Residents, subway: ClientPrincipal, today: date, field: str,
    value: Any,
) -> None:  # fmt: skip
    resident, card = await residents.new(), card_of(100 + next(_examples))
    await link_card(client, resident, card)
    body = ride(card, today - timedelta(days=1), 1)[1] | {field: value}
    response = await client.post(
        TAPS, json={"taps": [body]}, headers=subway.headers("ingest:transit")
    )
    if isinstance(value, str) and "\x00" in value:
        # NUL refuses the whole request at the edge, before any item is looked at.
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "unstorable-character"
        return
    assert response.status_code in {200, 422}, response.text
    if response.status_code == 200:
        assert response.json()["results"][0]["outcome"] in {"stored", "refused"}


async def test_logs_carry_no_card_or_member_numbers_or_values(
    client: Client,
    residents: Residents,
    subway: ClientPrincipal,
    insurer: ClientPrincipal,
    today: date,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    resident = await residents.new()
    card, unlinked, member = card_of(9_876_543), card_of(9_876_544), "M-3141592"
    capsys.readouterr()
    await link_card(client, resident, card)
    await link_member(client, resident, member)
    yesterday = today - timedelta(days=1)  # today's 08:05 ride may still be in the future
    await push_taps(client, subway, [*ride(card, yesterday, 1), *ride(unlinked, yesterday, 2)])
    await client.post(
        CHECKUPS,
        json={"checkups": [checkup(member, "E-LOG", today, ldl=187.3, sbp=1000)]},
        headers=insurer.headers("ingest:checkups"),
    )
    await client.post(
        CHECKUPS,
        json={"checkups": [checkup(member, "E-LOG2", today, ldl=187.3)]},
        headers=insurer.headers("ingest:checkups"),
    )
    await client.get("/v1/me/checkups/latest", headers=resident.headers())
    await client.get(LINKS, headers=resident.headers())
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert "http.request" in {e["event"] for e in events}  # the capture works
    noise = {"timestamp", "request_id", "duration_ms"}  # random digits: not what we look for
    logged = "\n".join(
        json.dumps({k: v for k, v in e.items() if k not in noise}) for e in events
    ) + "\n".join(
        json.dumps({k: v for k, v in r.msg.items() if k not in noise}, default=str)
        if isinstance(r.msg, dict)
        else str(r.msg)
        for r in caplog.records
    )
    for secret in (card, unlinked, member, "187.3", "1000"):
        assert secret not in logged


async def test_erasure_removes_the_link_so_the_card_can_be_linked_again(
    client: Client, residents: Residents, subway: ClientPrincipal, today: date,
    db_session: AsyncSession,
) -> None:  # fmt: skip
    alice, bob = await residents.new(), await residents.new()
    await link_card(client, alice, card_of(11))
    await push_taps(client, subway, ride(card_of(11), today - timedelta(days=1), 1))
    erased = await client.post(
        "/v1/me/erasure", json={"password": alice.password}, headers=alice.headers()
    )
    assert erased.status_code == 200, erased.text
    assert not (await db_session.scalars(select(Link).where(Link.resident_id == alice.id))).all()
    assert not (
        await db_session.scalars(select(Record).where(Record.resident_id == alice.id))
    ).all()
    await link_card(client, bob, card_of(11))  # the blind index row went with Alice
    listed = await client.get(
        "/v1/me/transit/taps",
        params={"from": (today - timedelta(days=5)).isoformat(), "to": today.isoformat()},
        headers=bob.headers("records:read"),
    )
    assert listed.json()["items"] == []  # Alice's rides never become Bob's


async def test_concurrent_pushes_of_the_same_taps_store_each_once(
    committing_client: Client,
    committing_residents: Residents,
    committing_sources: Clients,
    engine: AsyncEngine,
    today: date,
) -> None:
    resident = await committing_residents.new()
    source = await committing_sources.new("ingest:transit", feeds=(SUBWAY,))
    await link_card(committing_client, resident, card_of(12))
    # Yesterday and the day before: a ride at 08:05 today is still in the future before 08:19.
    taps = ride(card_of(12), today - timedelta(days=2), 1) + ride(
        card_of(12), today - timedelta(days=1), 2
    )
    results = await asyncio.gather(*(push_taps(committing_client, source, taps) for _ in range(6)))
    assert sum(r["stored"] for r in results) == len(taps)
    assert sum(r["unchanged"] for r in results) == 5 * len(taps)
    async with AsyncSession(engine) as session:
        keys = await session.scalars(
            select(Record.natural_key).where(Record.resident_id == resident.id)
        )
        assert sorted(keys) == sorted(f"{SUBWAY}/{t['tap_id']}" for t in taps)
