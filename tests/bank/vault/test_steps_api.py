"""Daily steps over HTTP: what a resident deposits is stored sealed, read back exactly, replaced
with a revision, refused item by item, never visible to anyone else, never half-written, erased
for good; and none of it reaches a log line."""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import json
import re
import string
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

import bank.vault.steps as vault_steps
from bank.auth.models import TokenFamily
from bank.auth.principals import PrincipalType
from bank.crypto.keystore import DataKey, KeyStore
from bank.crypto.sealing import Binding, open_sealed
from bank.identity.models import Account, OutboxEmail
from bank.identity.outbox import enqueue_mail
from bank.settings import Settings
from bank.vault.models import ErasureReceipt, StepDay, StepDayRevision
from bank.vault.paging import CURSOR_PATTERN
from bank.vault.rules.steps import MAX_STEPS_PER_DAY, PLATFORMS
from bank.vault.steps import MAX_BATCH
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import Clients, Resident, Residents, unique_marker

Client = httpx.AsyncClient
STEPS = "/v1/me/steps"
SUMMARY = "/v1/me/steps/summary"
ERASURE = "/v1/me/erasure"
_PRINTABLE = "".join(sorted(set(string.printable) - set("\t\n\r\x0b\x0c")))
# Item-level refusals are what these strategies test: a NUL refuses the whole request at the
# edge (400 unstorable-character), which tests of their own cover.
# No NUL (refused before parsing) and no lone surrogates (not encodable as UTF-8 JSON at all).
_TEXT_NO_NUL = functools.partial(
    st.text, st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])
)
_FAST = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def today(settings: Settings) -> date:
    """The city's local date, as the API computes it (days after it are in the future)."""
    return datetime.now(ZoneInfo(settings.local_timezone)).date()


def item(day: date, steps: int, platform: str = "healthkit", **extra: Any) -> dict[str, Any]:
    return {"day": day.isoformat(), "steps": steps, "platform": platform, **extra}


def spread(steps: int) -> list[int]:
    """24 hourly counts adding up to `steps`."""
    hourly = [steps // 24] * 24
    hourly[12] += steps - sum(hourly)
    return hourly


async def push(client: Client, resident: Resident, items: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(STEPS, json={"days": items}, headers=resident.headers())


async def push_ok(client: Client, resident: Resident, items: list[dict[str, Any]]) -> Any:
    response = await push(client, resident, items)
    assert response.status_code == 200, response.text
    return response.json()


async def all_days(
    client: Client, resident: Resident, start: date, end: date, *, limit: int = 400
) -> list[dict[str, Any]]:
    """Every day in [start, end], following the cursors."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(), "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(STEPS, params=params, headers=resident.headers())
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def view(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the list route should answer for `items` pushed once (defaults filled in)."""
    return sorted(
        (
            {
                "status": "opened",
                "day": i["day"],
                "platform": i["platform"],
                "steps": i["steps"],
                "hourly": i.get("hourly"),
                "method": i.get("method", "automatic"),
                "device_id": i.get("device_id"),
                "revision": 1,
            }
            for i in items
        ),
        key=lambda v: (v["day"], v["platform"]),
    )


async def step_rows(connection: AsyncConnection, resident_id: Any) -> list[Any]:
    query = (
        select(StepDay.day, StepDay.source, StepDay.sealed, StepDay.revision)
        .where(StepDay.resident_id == resident_id)
        .order_by(StepDay.day, StepDay.source)
    )
    return list((await connection.execute(query)).all())


async def revision_rows(connection: AsyncConnection, resident_id: Any) -> list[Any]:
    query = (
        select(
            StepDayRevision.day,
            StepDayRevision.source,
            StepDayRevision.revision,
            StepDayRevision.sealed,
        )
        .where(StepDayRevision.resident_id == resident_id)
        .order_by(StepDayRevision.day, StepDayRevision.source, StepDayRevision.revision)
    )
    return list((await connection.execute(query)).all())


async def key_rows(connection: AsyncConnection, resident_id: Any) -> list[Any]:
    query = (
        select(DataKey.version, DataKey.seals, DataKey.wrapped_key, DataKey.kek_version)
        .where(DataKey.resident_id == resident_id)
        .order_by(DataKey.version)
    )
    return list((await connection.execute(query)).all())


async def opened(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: Any,
    day: date,
    source: str,
    revision: int,
    sealed: bytes,
) -> dict[str, Any]:
    """A sealed steps payload opened the way the service opens it."""
    plain = open_sealed(
        await keys.for_opening(session, resident_id), Binding(resident_id, "steps", 1),
        vault_steps.STEPS.natural_key(day, source), revision, sealed,
    )  # fmt: skip
    payload: dict[str, Any] = msgspec.json.decode(plain)
    return payload


# --- storing and reading back -------------------------------------------------------------------


async def test_a_batch_is_stored_item_by_item_and_reads_back_exactly(
    client: Client, residents: Residents, today: date
) -> None:
    resident = await residents.new()
    items = [
        item(today - timedelta(days=1), 8123, hourly=spread(8123), device_id="iPhone15,2"),
        item(today - timedelta(days=1), 7001, "health_connect", method="manual"),
        item(today - timedelta(days=2), 0, "tracker", device_id="band-7"),
    ]
    body = await push_ok(client, resident, items)
    assert [r["outcome"] for r in body["results"]] == ["stored"] * 3
    assert [(r["index"], r["day"], r["platform"]) for r in body["results"]] == [
        (i, it["day"], it["platform"]) for i, it in enumerate(items)
    ]
    assert (body["stored"], body["replaced"], body["unchanged"], body["refused"]) == (3, 0, 0, 0)
    listed = await all_days(client, resident, today - timedelta(days=30), today)
    assert listed == view(items)


async def test_rows_hold_only_ciphertext_and_equal_payloads_seal_differently(
    client: Client, residents: Residents, connection: AsyncConnection, today: date
) -> None:
    alice, bob = await residents.new(), await residents.new()
    marker, device = unique_marker(), f"PIXEL-{unique_marker()}-MARKER"
    same = [item(today - timedelta(days=3), marker, hourly=spread(marker), device_id=device)]
    await push_ok(client, alice, same)
    await push_ok(client, bob, same)
    (a,), (b,) = await step_rows(connection, alice.id), await step_rows(connection, bob.id)
    for sealed in (a.sealed, b.sealed):
        assert str(marker).encode() not in sealed
        assert device.encode() not in sealed
        assert b"automatic" not in sealed
    assert a.sealed != b.sealed
    # Nothing in clear anywhere in the row, whatever the column.
    rendered = await connection.execute(
        text("SELECT s::text FROM step_days s WHERE resident_id = ANY(:ids)"),
        {"ids": [alice.id, bob.id]},
    )
    for (row,) in rendered:
        assert str(marker) not in row
        assert device not in row
        assert device.encode().hex() not in row


@_FAST
@given(data=st.data())
async def test_arbitrary_valid_step_days_round_trip_exactly(
    client: Client, residents: Residents, today: date, data: st.DataObject
) -> None:
    resident = await residents.new()
    items = data.draw(valid_batches(today))
    body = await push_ok(client, resident, items)
    assert body["stored"] == len(items)
    listed = await all_days(client, resident, today - timedelta(days=3 * 366), today)
    assert listed == view(items)


@st.composite
def valid_batches(draw: st.DrawFn, today: date) -> list[dict[str, Any]]:
    keys = draw(
        st.lists(
            st.tuples(st.integers(1, 3 * 365), st.sampled_from(sorted(PLATFORMS))),
            min_size=1,
            max_size=12,
            unique=True,
        )
    )
    items = []
    for back, platform in keys:
        extra: dict[str, Any] = {}
        if draw(st.booleans()):
            extra["hourly"] = draw(st.lists(st.integers(0, 4_166), min_size=24, max_size=24))
            steps = sum(extra["hourly"])
        else:
            steps = draw(st.integers(0, MAX_STEPS_PER_DAY))
        if draw(st.booleans()):
            extra["device_id"] = draw(st.text(alphabet=_PRINTABLE, min_size=1, max_size=128))
        if draw(st.booleans()):
            extra["method"] = draw(st.sampled_from(["automatic", "manual"]))
        items.append(item(today - timedelta(days=back), steps, platform, **extra))
    return items


# --- idempotency and revisions ------------------------------------------------------------------


async def test_a_retried_batch_is_unchanged_and_a_changed_value_keeps_a_revision(
    client: Client,
    residents: Residents,
    app: Litestar,
    connection: AsyncConnection,
    db_session: AsyncSession,
    today: date,
) -> None:
    resident = await residents.new()
    first, second = today - timedelta(days=1), today - timedelta(days=2)
    batch = [
        item(first, 6000, device_id="watch-old"),
        item(second, 4000, hourly=spread(4000)),
        item(second, 4100, "tracker"),
    ]
    await push_ok(client, resident, batch)
    rows_before = await step_rows(connection, resident.id)
    keys_before = await key_rows(connection, resident.id)

    again = await push_ok(client, resident, batch)
    assert [r["outcome"] for r in again["results"]] == ["unchanged"] * 3
    assert await step_rows(connection, resident.id) == rows_before  # not even re-sealed
    assert await revision_rows(connection, resident.id) == []
    assert await key_rows(connection, resident.id) == keys_before  # no seals reserved

    changed = [item(first, 6500, device_id="watch-new"), *batch[1:]]
    body = await push_ok(client, resident, changed)
    assert [r["outcome"] for r in body["results"]] == ["replaced", "unchanged", "unchanged"]
    rows = {(r.day, r.source): r for r in await step_rows(connection, resident.id)}
    assert len(rows) == 3
    assert rows[(first, "healthkit")].revision == 2
    assert rows[(second, "healthkit")].revision == rows[(second, "tracker")].revision == 1
    (revision,) = await revision_rows(connection, resident.id)
    old = next(r for r in rows_before if (r.day, r.source) == (first, "healthkit"))
    assert (revision.day, revision.source, revision.revision) == (first, "healthkit", 1)
    assert revision.sealed == old.sealed
    keys: KeyStore = app.state.keystore
    assert await opened(db_session, keys, resident.id, first, "healthkit", 1, revision.sealed) == {
        "steps": 6000,
        "hourly": None,
        "method": "automatic",
        "device_id": "watch-old",
    }
    listed = await all_days(client, resident, second, first)
    latest = [
        (d["steps"], d["device_id"], d["revision"]) for d in listed if d["day"] == first.isoformat()
    ]
    assert latest == [(6500, "watch-new", 2)]


# --- partial batches ----------------------------------------------------------------------------


async def test_invalid_items_are_refused_with_path_and_reason_and_valid_ones_stored(
    client: Client, residents: Residents, connection: AsyncConnection, today: date
) -> None:
    resident = await residents.new()
    good = today - timedelta(days=1)
    items = [
        item(good, 5000),  # 0 valid
        item(today + timedelta(days=2), 100),  # 1 future
        item(today - timedelta(days=6 * 366), 100),  # 2 too old
        item(good, -1, "tracker"),  # 3 negative
        item(good - timedelta(days=1), MAX_STEPS_PER_DAY + 1),  # 4 too many
        item(good - timedelta(days=2), 100, hourly=[100]),  # 5 not 24 hours
        item(good - timedelta(days=3), 101, hourly=spread(100)),  # 6 hours do not add up
        item(good - timedelta(days=4), 30_000, hourly=[30_000] + [0] * 23),  # 7 hour too high
        item(good - timedelta(days=5), 100, "fitbit"),  # 8 unknown platform
        item(good - timedelta(days=6), 100, method="guessed"),  # 9 unknown method
        item(good - timedelta(days=7), 100, device_id="x" * 129),  # 10 device id too long
        # (NUL itself is refused for the whole body, at the edge: tests/bank/test_hostile_input.py)
        item(good - timedelta(days=8), 100, device_id="dev\x01ice"),  # 11 not printable
        item(good - timedelta(days=9), 7000, "health_connect", method="manual"),  # 12 valid
    ]
    body = await push_ok(client, resident, items)
    outcomes = {r["index"]: r for r in body["results"]}
    assert outcomes[0]["outcome"] == outcomes[12]["outcome"] == "stored"
    expected_paths = {
        1: "day",
        2: "day",
        3: "steps",
        4: "steps",
        5: "hourly",
        6: "hourly",
        7: "hourly",
        8: "platform",
        9: "method",
        10: "device_id",
        11: "device_id",
    }
    for index, field in expected_paths.items():
        result = outcomes[index]
        assert result["outcome"] == "refused", result
        assert [f["path"] for f in result["refusals"]] == [f"$.days[{index}].{field}"]
        assert all(f["reason"] for f in result["refusals"])
    assert (body["stored"], body["refused"]) == (2, 11)
    stored = {(r.day, r.source) for r in await step_rows(connection, resident.id)}
    assert stored == {(good, "healthkit"), (good - timedelta(days=9), "health_connect")}


async def test_reasons_never_echo_the_refused_value(
    client: Client, residents: Residents, today: date
) -> None:
    resident = await residents.new()
    secret = "DEVICE-SECRET-\u00e9"
    body = await push_ok(
        client, resident, [item(today, 100, "x-secret-platform", device_id=secret)]
    )
    text_ = json.dumps(body["results"][0]["refusals"])
    assert secret not in text_
    assert "x-secret-platform" not in text_


async def test_duplicates_in_one_batch_keep_only_the_last(
    client: Client, residents: Residents, today: date
) -> None:
    resident = await residents.new()
    day = today - timedelta(days=1)
    items = [
        item(day, 1000),
        item(day, 2000, "tracker"),  # another platform the same day is not a duplicate
        item(day, 3000),
        item(day, 4000),
    ]
    body = await push_ok(client, resident, items)
    outcomes = [r["outcome"] for r in body["results"]]
    assert outcomes == ["refused", "stored", "refused", "stored"]
    for index in (0, 2):
        (refusal,) = body["results"][index]["refusals"]
        assert refusal["path"] == f"$.days[{index}]"
        assert "last" in refusal["reason"]
    listed = await all_days(client, resident, day, day)
    assert [(d["platform"], d["steps"]) for d in listed] == [("healthkit", 4000), ("tracker", 2000)]


@st.composite
def invalid_items(draw: st.DrawFn, today: date) -> tuple[dict[str, Any], str]:
    """One item broken in one field, and that field's name."""
    base = item(today - timedelta(days=draw(st.integers(1, 1000))), 5000)
    field = draw(st.sampled_from(["day", "steps", "hourly", "platform", "method", "device_id"]))
    if field == "day":
        days = draw(st.integers(2, 5000))
        base["day"] = (today + timedelta(days=days) if draw(st.booleans()) else today - timedelta(
            days=5 * 366 + days
        )).isoformat()  # fmt: skip
    elif field == "steps":
        base["steps"] = draw(st.integers(-(2**62), -1) | st.integers(MAX_STEPS_PER_DAY + 1, 2**62))
    elif field == "hourly":
        base["hourly"] = draw(
            st.lists(st.integers(0, 20_000), max_size=40).filter(lambda h: len(h) != 24)
            | st.lists(st.integers(0, 4_000), min_size=24, max_size=24).filter(
                lambda h: sum(h) != 5000
            )
            | st.lists(st.integers(20_001, 2**40), min_size=24, max_size=24)
        )
    elif field == "platform":
        base["platform"] = draw(_TEXT_NO_NUL(max_size=30).filter(lambda p: p not in PLATFORMS))
    elif field == "method":
        base["method"] = draw(
            _TEXT_NO_NUL(max_size=30).filter(lambda m: m not in {"automatic", "manual"})
        )
    else:
        base["device_id"] = draw(
            st.just("")
            | st.text(alphabet=_PRINTABLE, min_size=129, max_size=200)
            | _TEXT_NO_NUL(min_size=1, max_size=40).filter(lambda d: not set(d) <= set(_PRINTABLE))
        )
    return base, field


@_FAST
@given(data=st.data())
async def test_arbitrary_invalid_values_are_refused_never_stored(
    client: Client,
    residents: Residents,
    connection: AsyncConnection,
    today: date,
    data: st.DataObject,
) -> None:
    resident = await residents.new()
    broken, field = data.draw(invalid_items(today))
    body = await push_ok(client, resident, [broken])
    (result,) = body["results"]
    assert result["outcome"] == "refused"
    assert f"$.days[0].{field}" in [f["path"] for f in result["refusals"]]
    assert await step_rows(connection, resident.id) == []


_JUNK = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.integers(-(2**80), 2**80)
    | st.lists(st.integers(-(2**70), 2**70), max_size=30)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
)


_FIELDS = ("day", "steps", "platform", "method", "hourly", "device_id")


@_FAST
@given(field=st.sampled_from(_FIELDS), value=_JUNK)
@example(field="platform", value="\x00")
@example(field="device_id", value={"\x00": 1})
async def test_arbitrary_json_values_never_cause_a_server_error(
    client: Client, residents: Residents, today: date, field: str, value: Any
) -> None:
    resident = await residents.new()
    broken = {**item(today - timedelta(days=1), 5000), field: value}
    response = await push(client, resident, [broken])
    if response.status_code == 200:
        return  # a well-typed value: refused or stored like any other
    if "\\u0000" in json.dumps(value):
        assert_problem(response, 400, "unstorable-character")  # the whole request, at the edge
        return
    assert_problem(response, 422, "validation-failed")


# --- limits and malformed bodies ----------------------------------------------------------------


async def test_more_items_than_the_limit_is_a_problem_naming_the_limit(
    client: Client, residents: Residents, connection: AsyncConnection, today: date
) -> None:
    resident = await residents.new()
    items = [item(today - timedelta(days=1 + n), 100) for n in range(MAX_BATCH + 1)]
    body = assert_problem(await push(client, resident, items), 422, "validation-failed")
    (error,) = body["errors"]
    assert error["path"] == "$.days"
    assert str(MAX_BATCH) in error["detail"]
    assert await step_rows(connection, resident.id) == []
    exactly = await push_ok(client, resident, items[:MAX_BATCH])
    assert exactly["stored"] == MAX_BATCH


async def test_a_body_over_the_size_limit_is_413(
    client: Client, residents: Residents, settings: Settings, today: date
) -> None:
    resident = await residents.new()
    huge = [item(today - timedelta(days=1), 100, device_id="x" * settings.max_body_bytes)]
    response = await push(client, resident, huge)
    body = assert_problem(response, 413, "payload-too-large")
    assert str(settings.max_body_bytes) in body["detail"]


def _raw(**overrides: Any) -> dict[str, Any]:
    return {"day": "2026-01-01", "steps": 1, "platform": "healthkit", **overrides}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"days": [_raw()], "resident_id": "someone"}, "$"),
        ({"days": [_raw(x=1)]}, "$.days[0]"),
        ({"days": [_raw(steps="many")]}, "$.days[0].steps"),
        ({"days": [_raw(steps=1.5)]}, "$.days[0].steps"),
        ({"days": [_raw(steps=True)]}, "$.days[0].steps"),
        ({"days": [_raw(day="yesterday")]}, "$.days[0].day"),
        ({"days": [_raw(platform=7)]}, "$.days[0].platform"),
        ({"days": [_raw(hourly="1")]}, "$.days[0].hourly"),
        ({"days": [{"steps": 1, "platform": "healthkit"}]}, "$.days[0].day"),
        ({"days": []}, "$.days"),
        ({}, "$.days"),
        ([], "$"),
    ],
)
async def test_malformed_bodies_are_problems_with_the_json_path(
    client: Client,
    residents: Residents,
    connection: AsyncConnection,
    body: Any,
    path: str,
) -> None:
    resident = await residents.new()
    response = await client.post(STEPS, json=body, headers=resident.headers())
    problem = assert_problem(response, 422, "validation-failed")
    assert [e["path"] for e in problem["errors"]] == [path]
    assert "someone" not in response.text
    assert "many" not in response.text
    assert await step_rows(connection, resident.id) == []


async def test_unparseable_json_and_wrong_media_type_are_problems(
    client: Client, residents: Residents
) -> None:
    resident = await residents.new()
    json_type = {**resident.headers(), "content-type": "application/json"}
    assert_problem(
        await client.post(STEPS, content=b'{"days": [', headers=json_type), 400, "bad-request"
    )
    form = {**resident.headers(), "content-type": "application/x-www-form-urlencoded"}
    assert_problem(
        await client.post(STEPS, content=b"days=1", headers=form), 415, "unsupported-media-type"
    )


# --- authorization ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VaultRoute:
    """One row per vault route: how to call it and what its token must hold."""

    operation_id: str
    method: str
    url: str
    scope: str
    body: Callable[[Resident, date], Any] | None = None
    admitted: int = 200  # the status with the right token (404: an id the caller does not own)

    async def call(
        self, client: Client, headers: dict[str, str], resident: Resident, today: date
    ) -> httpx.Response:
        body = self.body(resident, today) if self.body is not None else None
        return await client.request(self.method, self.url, json=body, headers=headers)


VAULT_ROUTES = [
    VaultRoute(
        "PushSteps",
        "POST",
        STEPS,
        "records:write",
        lambda _, today: {"days": [item(today - timedelta(days=1), 4321)]},
    ),
    VaultRoute("ListSteps", "GET", f"{STEPS}?from=2024-01-01&to=2026-12-31", "records:read"),
    VaultRoute("MonthOfSteps", "GET", f"{SUMMARY}?month=2026-11", "records:read"),
    VaultRoute("EraseMe", "POST", ERASURE, "account", lambda r, _: {"password": r.password}),
    VaultRoute(
        "LinkCardOrMembership",
        "POST",
        "/v1/me/links/",
        "account",
        lambda r, _: {"kind": "transit_card", "card_number": f"{r.id.int % 10**17:017d}"},
        admitted=201,
    ),
    VaultRoute("ListLinks", "GET", "/v1/me/links/", "account"),
    VaultRoute("Unlink", "DELETE", f"/v1/me/links/{uuid.uuid4()}", "account", admitted=404),
    VaultRoute("ListTaps", "GET", "/v1/me/transit/taps?from=2026-01-01&to=2026-12-31",
               "records:read"),
    VaultRoute("MonthOfRides", "GET", "/v1/me/transit/rides?month=2026-11", "records:read"),
    VaultRoute("ListCheckups", "GET", "/v1/me/checkups/?from=2024-01-01&to=2026-12-31",
               "records:read"),
    VaultRoute("LatestCheckup", "GET", "/v1/me/checkups/latest", "records:read", admitted=404),
    VaultRoute("RequestExport", "POST", "/v1/me/exports/", "records:read", admitted=202),
    VaultRoute("ExportStatus", "GET", f"/v1/me/exports/{uuid.uuid4()}", "records:read",
               admitted=404),
    VaultRoute("DownloadExport", "GET", f"/v1/me/exports/{uuid.uuid4()}/download",
               "records:read", admitted=404),
]  # fmt: skip
# Modules whose routes must each have a row above (add the module of a new vault API here).
VAULT_MODULES = {
    "bank.vault.controllers.steps", "bank.vault.controllers.records",
    "bank.vault.controllers.exports",
}  # fmt: skip
_RESIDENT_SCOPES = ("records:read", "records:write", "account", "consents", "points")
_by_id = pytest.mark.parametrize("route", VAULT_ROUTES, ids=lambda r: r.operation_id)


def test_every_vault_route_is_in_the_authorization_table(app: Litestar) -> None:
    registered = {
        (method, handler.operation_id)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if getattr(handler.fn, "__module__", None) in VAULT_MODULES
        for method in handler.http_methods
    }
    assert registered == {(r.method, r.operation_id) for r in VAULT_ROUTES}


@_by_id
async def test_the_right_token_is_admitted(
    client: Client, residents: Residents, route: VaultRoute, today: date
) -> None:
    resident = await residents.new()
    response = await route.call(client, resident.headers(route.scope), resident, today)
    assert response.status_code == route.admitted, response.text


@_by_id
async def test_no_token_is_401(
    client: Client, residents: Residents, route: VaultRoute, today: date
) -> None:
    resident = await residents.new()
    assert_problem(await route.call(client, {}, resident, today), 401, "unauthenticated")
    garbage = {"Authorization": "Bearer not.a.token"}
    assert_problem(await route.call(client, garbage, resident, today), 401, "invalid-token")


@_by_id
async def test_a_token_without_the_scope_is_403(
    client: Client, residents: Residents, route: VaultRoute, today: date
) -> None:
    resident = await residents.new()
    others = tuple(s for s in _RESIDENT_SCOPES if s != route.scope)
    response = await route.call(client, resident.headers(*others), resident, today)
    body = assert_problem(response, 403, "insufficient-scope")
    assert route.scope in body["detail"]


@_by_id
async def test_partner_and_source_tokens_are_refused(
    client: Client,
    residents: Residents,
    sources: Clients,
    partners: Clients,
    route: VaultRoute,
    today: date,
) -> None:
    resident = await residents.new()
    source, partner = await sources.new(), await partners.new()
    # Even holding the route's scope (which no source or partner could be granted), and even
    # naming a resident as subject, a token for another API is refused.
    for caller in (source, partner):
        for headers in (
            caller.headers(route.scope, *caller_scopes(caller.principal_type)),
            caller.minter.headers(
                caller.principal_type,
                subject=str(resident.id),
                client_id=caller.client_id,
                scopes=(route.scope,),
            ),
        ):
            response = await route.call(client, headers, resident, today)
            assert response.status_code in {401, 403}, response.text
            assert response.headers["content-type"] == "application/problem+json"


def caller_scopes(principal_type: PrincipalType) -> tuple[str, ...]:
    if principal_type is PrincipalType.SOURCE:
        return ("ingest:transit", "ingest:checkups")
    return ("partner:data",)


@_by_id
async def test_tokens_of_an_ended_session_are_refused(
    client: Client,
    residents: Residents,
    db_session: AsyncSession,
    route: VaultRoute,
    today: date,
) -> None:
    resident = await residents.new()
    headers = resident.headers(*_RESIDENT_SCOPES)
    await db_session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == resident.session_id)
        .values(revoked_at=func.now(), revoked_reason="sign_out")
    )
    await db_session.commit()
    assert_problem(await route.call(client, headers, resident, today), 401, "invalid-token")


def test_no_vault_route_takes_a_parameter_naming_a_resident(app: Litestar) -> None:
    schema = app.openapi_schema.to_schema()
    names_someone = re.compile(r"resident|account|subject|^sub$|user|owner|person|^id$", re.I)
    me_paths = {path: ops for path, ops in schema["paths"].items() if path.startswith("/v1/me")}
    assert {"/v1/me/steps", "/v1/me/steps/summary", "/v1/me/erasure"} <= set(me_paths)
    for path, operations in me_paths.items():
        # Path parameters name the caller's own objects (a link, an export), looked up together
        # with the token's subject: another resident's id is a 404 (tests above and in
        # test_sources_api / test_exports).
        assert set(re.findall(r"{(\w+)}", path)) <= {"link_id", "export_id"}, path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert not names_someone.search(parameter["name"]), (path, parameter["name"])


async def test_a_resident_never_sees_another_residents_days(
    client: Client, residents: Residents, today: date
) -> None:
    alice, bob = await residents.new(), await residents.new()
    days = [today - timedelta(days=n) for n in (1, 2, 40, 400, 3 * 365)]
    alice_items = [item(d, 1000 + n) for n, d in enumerate(days)]
    bob_markers = [unique_marker() for _ in days]
    bob_items = [
        *(item(d, m, device_id=f"BOB-DEVICE-{m}") for d, m in zip(days, bob_markers, strict=True)),
        item(today - timedelta(days=5), 99_999, "tracker"),  # a day Alice has nothing for
    ]
    await push_ok(client, alice, alice_items)
    await push_ok(client, bob, bob_items)
    start = today - timedelta(days=3 * 366)
    # Extra parameters naming Bob are ignored: the subject of the token decides.
    response = await client.get(
        STEPS,
        params={"from": start.isoformat(), "to": today.isoformat(), "limit": 400,
                "resident_id": str(bob.id), "sub": str(bob.id), "account": str(bob.id)},
        headers=alice.headers(),
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json()["items"] == view(alice_items)
    assert "BOB-DEVICE" not in response.text
    for marker in bob_markers:
        assert str(marker) not in response.text
    months = {(d.year, d.month) for d in [*days, today - timedelta(days=5)]}
    for year, month in months:
        summary = await client.get(
            SUMMARY, params={"month": f"{year:04d}-{month:02d}"}, headers=alice.headers()
        )
        assert summary.status_code == 200
        expected = {
            i["day"]: i["steps"] for i in alice_items if i["day"][:7] == f"{year:04d}-{month:02d}"
        }
        assert {d["day"]: d["steps"] for d in summary.json()["days"]} == expected
    # Nor can a body name another resident.
    smuggled = {"days": [item(today - timedelta(days=1), 1)], "resident_id": str(bob.id)}
    assert (await client.post(STEPS, json=smuggled, headers=alice.headers())).status_code == 422


# --- paging and the month summary ---------------------------------------------------------------


async def test_four_hundred_days_list_in_eight_ordered_pages(
    client: Client, residents: Residents, today: date
) -> None:
    resident = await residents.new()
    items = [item(today - timedelta(days=n), 1000 + n) for n in range(1, MAX_BATCH + 1)]
    await push_ok(client, resident, items)
    start, end = today - timedelta(days=MAX_BATCH), today
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(), "limit": 50}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(STEPS, params=params, headers=resident.headers())
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [50] * 8
    listed = [d["day"] for p in pages for d in p]
    assert listed == sorted({i["day"] for i in items})  # in order, each exactly once


async def test_pages_break_inside_a_day_without_losing_a_platform(
    client: Client, residents: Residents, today: date
) -> None:
    resident = await residents.new()
    items = [
        item(today - timedelta(days=n), 100 * n + i, platform)
        for n in range(1, 8)
        for i, platform in enumerate(sorted(PLATFORMS))
    ]
    await push_ok(client, resident, items)
    listed = await all_days(client, resident, today - timedelta(days=10), today, limit=2)
    assert listed == view(items)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        base64.urlsafe_b64encode(b"no separator").decode(),
        base64.urlsafe_b64encode(b"2026-13-40|healthkit").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|\x80").decode(),
        base64.urlsafe_b64encode(b"2026-11-01|health\x00kit").decode(),
        base64.urlsafe_b64encode(b"2026-11-01|' OR 1=1 --").decode(),
    ],
)
async def test_a_tampered_cursor_is_422(
    client: Client, residents: Residents, today: date, cursor: str
) -> None:
    resident = await residents.new()
    await push_ok(client, resident, [item(today - timedelta(days=1), 100)])
    params = {"from": "2026-01-01", "to": today.isoformat(), "cursor": cursor}
    response = await client.get(STEPS, params=params, headers=resident.headers())
    # One that breaks the documented pattern is refused as such; one that fits it but was
    # never returned by the API breaks the rule the pattern cannot state.
    fits = re.fullmatch(CURSOR_PATTERN, cursor) is not None
    assert_problem(response, 422, "invalid-query" if fits else "validation-failed")
    assert response.json()["errors"][0]["path"] == "cursor"


@_FAST
@given(
    cursor=st.text(max_size=40)
    | st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    month=st.text(max_size=12)
    | st.from_regex(r"\A[0-9]{4}-[0-9]{2}\Z")
    | st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}"),
)
@example(cursor=base64.urlsafe_b64encode(b"2026-11-01|\x00").decode(), month="9999-12")
@example(cursor=base64.urlsafe_b64encode(b"0001-01-01|tracker").decode(), month="0001-01")
async def test_arbitrary_cursors_and_months_are_answered_or_refused_never_500(
    client: Client, residents: Residents, today: date, cursor: str, month: str
) -> None:
    resident = await residents.new()
    params = {"from": "2026-01-01", "to": today.isoformat(), "cursor": cursor}
    listed = await client.get(STEPS, params=params, headers=resident.headers())
    assert listed.status_code in {200, 400, 422}, listed.text
    summary = await client.get(SUMMARY, params={"month": month}, headers=resident.headers())
    if re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month) and month >= "0001":
        assert summary.status_code == 200, summary.text
        assert summary.json()["month"] == month
    elif "\x00" in month:
        # NUL is refused for the whole request, at the edge, before the query is read.
        assert_problem(summary, 400, "unstorable-character")
    else:
        # Anything else is read, and breaks the parameter's pattern.
        assert_problem(summary, 422, "validation-failed")


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-11-02", "to": "2026-11-01"},  # `to` before `from`
        {"from": "2020-01-01", "to": "2026-11-01"},  # more than three years
    ],
)
async def test_bad_ranges_are_422(client: Client, residents: Residents, query: Any) -> None:
    resident = await residents.new()
    response = await client.get(STEPS, params=query, headers=resident.headers())
    assert_problem(response, 422, "invalid-query")
    assert [(e["location"], e["path"]) for e in response.json()["errors"]] == [("query", "to")]


async def test_a_missing_date_is_a_422_problem_naming_it(
    client: Client, residents: Residents
) -> None:
    resident = await residents.new()
    response = await client.get(STEPS, params={"to": "2026-11-01"}, headers=resident.headers())
    assert_problem(response, 422, "validation-failed")
    assert response.json()["errors"] == [
        {"location": "query", "path": "from", "detail": "is required"}
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-11-01", "to": "2026-11-31"},
        {"from": "2026-11-01", "to": "2026-11-02", "limit": "0"},
        {"from": "2026-11-01", "to": "2026-11-02", "limit": "401"},
    ],
)
async def test_malformed_list_queries_are_validation_problems(
    client: Client, residents: Residents, query: Any
) -> None:
    resident = await residents.new()
    response = await client.get(STEPS, params=query, headers=resident.headers())
    assert_problem(response, 422, "validation-failed")


async def test_the_month_summary_counts_the_highest_source_each_day(
    client: Client, residents: Residents, today: date
) -> None:
    resident = await residents.new()
    this_month = today.replace(day=1)
    last = this_month - timedelta(days=1)
    first = last.replace(day=1)
    await push_ok(
        client,
        resident,
        [
            item(first, 5000, "healthkit"),
            item(first, 7000, "health_connect"),  # the same walk seen by two platforms
            item(first, 6000, "tracker"),
            item(first + timedelta(days=1), 3000),
            item(last, 12_001, "tracker"),
            item(first - timedelta(days=1), 99_999),  # the month before: not counted
            item(this_month, 88_888),  # the month after: not counted
        ],
    )
    response = await client.get(
        SUMMARY, params={"month": f"{first:%Y-%m}"}, headers=resident.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "month": f"{first:%Y-%m}",
        "days_recorded": 3,
        "total_steps": 22_001,
        "mean_steps": round(22_001 / 3),
        "days": [
            {"day": first.isoformat(), "steps": 7000},
            {"day": (first + timedelta(days=1)).isoformat(), "steps": 3000},
            {"day": last.isoformat(), "steps": 12_001},
        ],
        "unreadable_left_out": 0,
    }
    empty = await client.get(SUMMARY, params={"month": "2001-02"}, headers=resident.headers())
    assert empty.json() == {
        "month": "2001-02", "days_recorded": 0, "total_steps": 0, "mean_steps": 0, "days": [],
        "unreadable_left_out": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-00", "2026-1", "november", "2026-11-01", "", "0000-01", "2026/11"]
)
async def test_a_bad_month_is_422(client: Client, residents: Residents, month: str) -> None:
    resident = await residents.new()
    response = await client.get(SUMMARY, params={"month": month}, headers=resident.headers())
    assert_problem(response, 422, "validation-failed")
    assert [error["path"] for error in response.json()["errors"]] == ["month"]


# --- erasure ------------------------------------------------------------------------------------


async def test_a_wrong_password_erases_nothing(
    client: Client, residents: Residents, connection: AsyncConnection, today: date
) -> None:
    resident = await residents.new()
    await push_ok(client, resident, [item(today - timedelta(days=1), 100)])
    response = await client.post(
        ERASURE, json={"password": "not the password at all"}, headers=resident.headers()
    )
    body = assert_problem(response, 401, "sign-in-failed")
    assert "not the password" not in json.dumps(body)
    assert len(await step_rows(connection, resident.id)) == 1
    assert len(await key_rows(connection, resident.id)) == 1
    assert (
        await client.get(SUMMARY, params={"month": "2026-11"}, headers=resident.headers())
    ).status_code == 200
    receipts = await connection.scalar(
        select(func.count())
        .select_from(ErasureReceipt)
        .where(ErasureReceipt.resident_id == resident.id)
    )
    assert receipts == 0


async def test_erasure_destroys_keys_and_rows_and_ends_every_token(
    client: Client,
    residents: Residents,
    connection: AsyncConnection,
    db_session: AsyncSession,
    app: Litestar,
    today: date,
) -> None:
    resident, bystander = await residents.new(), await residents.new()
    day = today - timedelta(days=1)
    for who in (resident, bystander):
        await push_ok(client, who, [item(day, 100), item(day, 200, "tracker")])
        await push_ok(client, who, [item(day, 150)])  # one revision
        account = await db_session.get(Account, who.id)
        assert account is not None
        await enqueue_mail(  # unsent mail holds the address and a code
            db_session,
            app.state.account_secrets,
            account=account,
            template="reset",
            recipient=who.email,
            payload={"code": "123456"},
        )
    reader = resident.headers("records:read")  # another token of the same session
    response = await client.post(
        ERASURE, json={"password": resident.password}, headers=resident.headers("account")
    )
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert set(receipt) == {"receipt_id", "erased_at", "records_deleted"}
    assert receipt["records_deleted"] == 3  # two days and one revision
    for headers in (reader, resident.headers()):
        listed = await client.get(SUMMARY, params={"month": "2026-11"}, headers=headers)
        assert_problem(listed, 401, "invalid-token")
    assert await step_rows(connection, resident.id) == []
    assert await revision_rows(connection, resident.id) == []
    assert await key_rows(connection, resident.id) == []
    assert await connection.scalar(select(Account.id).where(Account.id == resident.id)) is None
    families = select(TokenFamily.id).where(TokenFamily.account_id == resident.id)
    assert (await connection.execute(families)).all() == []
    mail = select(OutboxEmail.account_id).where(
        OutboxEmail.account_id.in_([resident.id, bystander.id])
    )
    assert list((await connection.execute(mail)).scalars()) == [bystander.id]
    row = (
        await connection.execute(
            text("SELECT r::text AS whole, r.* FROM erasure_receipts r WHERE id = :id"),
            {"id": receipt["receipt_id"]},
        )
    ).one()
    assert (row.resident_id, row.records_deleted, row.keys_destroyed) == (resident.id, 3, 1)
    assert resident.email not in row.whole
    assert "@" not in row.whole
    # Everyone else is untouched.
    assert len(await step_rows(connection, bystander.id)) == 2
    assert len(await revision_rows(connection, bystander.id)) == 1
    assert len(await key_rows(connection, bystander.id)) == 1


# --- logs ---------------------------------------------------------------------------------------


async def test_logs_carry_no_step_values_devices_passwords_or_keys(
    client: Client,
    residents: Residents,
    app: Litestar,
    connection: AsyncConnection,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    today: date,
) -> None:
    resident = await residents.new()
    marker, replaced_marker = unique_marker(), unique_marker()
    device = f"DEVICE-{unique_marker()}-LOGMARK"
    capsys.readouterr()
    day = today - timedelta(days=1)
    headers = resident.headers()
    await push_ok(client, resident, [item(day, marker, hourly=spread(marker), device_id=device)])
    await push_ok(client, resident, [item(day, replaced_marker, device_id=device)])
    await push_ok(client, resident, [item(today + timedelta(days=3), marker, device_id=device)])
    await client.post(STEPS, json={"days": [{"day": "x", "steps": device}]}, headers=headers)
    await all_days(client, resident, day, day)
    await client.get(SUMMARY, params={"month": f"{day:%Y-%m}"}, headers=headers)
    (row,) = await step_rows(connection, resident.id)
    (key,) = await key_rows(connection, resident.id)
    keystore: KeyStore = app.state.keystore
    raw_key = await keystore._unwrap(resident.id, key.version, key.wrapped_key, key.kek_version)
    await client.post(ERASURE, json={"password": "wrong password here"}, headers=headers)
    await client.post(ERASURE, json={"password": resident.password}, headers=headers)
    output = capsys.readouterr().out
    events = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert {"http.request", "vault.resident_erased"} <= {e["event"] for e in events}
    # Timestamps, request ids and durations are random digits: leave them out of the search.
    noise = {"timestamp", "request_id", "duration_ms"}
    logged = "\n".join(
        json.dumps({k: v for k, v in e.items() if k not in noise}) for e in events
    ) + "\n".join(
        json.dumps({k: v for k, v in r.msg.items() if k not in noise}, default=str)
        if isinstance(r.msg, dict)
        else str(r.msg)
        for r in caplog.records
    )
    secrets_ = [
        str(marker),
        str(replaced_marker),
        device,
        resident.password,
        "wrong password here",
        resident.email,
        headers["Authorization"].split()[1],
        raw_key.hex(),
        base64.b64encode(raw_key).decode(),
        key.wrapped_key.hex(),
        base64.b64encode(key.wrapped_key).decode(),
        row.sealed.hex(),
        base64.b64encode(row.sealed).decode(),
    ]
    for secret in secrets_:
        assert secret not in logged


# --- concurrency and failures (real commits) ----------------------------------------------------


async def _settled(engine: AsyncEngine, resident_id: Any) -> tuple[list[Any], list[Any], list[Any]]:
    async with engine.connect() as connection:
        return (
            await step_rows(connection, resident_id),
            await revision_rows(connection, resident_id),
            await key_rows(connection, resident_id),
        )


async def _open_all(
    engine: AsyncEngine, keys: KeyStore, resident_id: Any, rows: list[Any]
) -> list[dict[str, Any]]:
    async with AsyncSession(engine) as session:
        return [
            await opened(session, keys, resident_id, r.day, r.source, r.revision, r.sealed)
            for r in rows
        ]


@pytest.mark.committing
@pytest.mark.parametrize("values", ["all_different", "some_repeated"])
async def test_concurrent_pushes_of_one_day_lose_no_revision(
    committing_client: Client,
    committing_residents: Residents,
    committing_app: Litestar,
    engine: AsyncEngine,
    today: date,
    values: str,
) -> None:
    resident = await committing_residents.new()  # brand new: no data key yet
    day = today - timedelta(days=1)
    pushed = (
        [1000 + n for n in range(10)] if values == "all_different" else [500, 600, 700] * 3 + [500]
    )
    responses = await asyncio.gather(
        *(push(committing_client, resident, [item(day, steps)]) for steps in pushed)
    )
    assert [r.status_code for r in responses] == [200] * len(pushed), [r.text for r in responses]
    outcomes = Counter(r.json()["results"][0]["outcome"] for r in responses)
    assert outcomes["stored"] == 1
    assert sum(outcomes.values()) == len(pushed)
    rows, revisions, keys = await _settled(engine, resident.id)
    (row,) = rows
    assert row.revision == 1 + outcomes["replaced"]
    assert [r.revision for r in revisions] == list(range(1, row.revision))  # none lost
    keystore: KeyStore = committing_app.state.keystore
    history = await _open_all(engine, keystore, resident.id, [*revisions, row])
    chain = [h["steps"] for h in history]
    assert all(a != b for a, b in itertools.pairwise(chain))  # each one a change
    assert chain[-1] in pushed
    assert set(chain) <= set(pushed)
    if values == "all_different":
        assert sorted(chain) == sorted(pushed)  # every push is somewhere in the history
    assert [(k.version, k.seals) for k in keys] == [(1, 1 + outcomes["replaced"])]


@pytest.mark.committing
async def test_concurrent_first_pushes_create_one_data_key(
    committing_client: Client,
    committing_residents: Residents,
    engine: AsyncEngine,
    today: date,
) -> None:
    resident = await committing_residents.new()
    batches = [
        [item(today - timedelta(days=1 + 10 * n + i), 1000 + i) for i in range(10)]
        for n in range(10)
    ]
    responses = await asyncio.gather(*(push(committing_client, resident, b) for b in batches))
    assert [r.status_code for r in responses] == [200] * 10
    assert all(r.json()["stored"] == 10 for r in responses)
    rows, revisions, keys = await _settled(engine, resident.id)
    assert len(rows) == 100
    assert revisions == []
    assert [(k.version, k.seals) for k in keys] == [(1, 100)]


async def _terminate(engine: AsyncEngine, session: AsyncSession) -> None:
    """End the request's database backend, as a crash or failover would (and wait till it is)."""
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with engine.connect() as admin:
        ended = await admin.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        await admin.commit()
    assert ended


@pytest.mark.committing
@pytest.mark.parametrize("moment", ["after_the_key_is_made", "at_commit"])
@pytest.mark.parametrize("batch", ["first", "replacing"])
async def test_a_database_failure_mid_batch_is_503_and_leaves_nothing(
    committing_client: Client,
    committing_residents: Residents,
    committing_app: Litestar,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    today: date,
    moment: str,
    batch: str,
) -> None:
    resident = await committing_residents.new()
    days = [today - timedelta(days=n) for n in range(1, 6)]
    if batch == "replacing":
        await push_ok(committing_client, resident, [item(d, 1000) for d in days])
    before = await _settled(engine, resident.id)
    items = [item(d, 2000 + n) for n, d in enumerate(days)]

    keystore: KeyStore = committing_app.state.keystore
    if moment == "after_the_key_is_made":
        real_for_sealing = keystore.for_sealing

        async def for_sealing(
            session: AsyncSession, resident_id: Any, count: int, **options: Any
        ) -> Any:
            key = await real_for_sealing(session, resident_id, count, **options)
            await _terminate(engine, session)
            return key

        monkeypatch.setattr(keystore, "for_sealing", for_sealing)
    else:
        real_ingest = vault_steps.ingest_step_days

        async def ingest(session: AsyncSession, *args: Any, **kwargs: Any) -> Any:
            results = await real_ingest(session, *args, **kwargs)
            await _terminate(engine, session)
            return results

        monkeypatch.setattr("bank.vault.steps.ingest_step_days", ingest)

    response = await push(committing_client, resident, items)
    body = assert_problem(response, 503, "service-unavailable")
    assert response.headers["retry-after"].isdigit()
    assert "Nothing was saved" in body["detail"]
    assert await _settled(engine, resident.id) == before  # no rows, revisions or key

    monkeypatch.undo()
    retried = await push_ok(committing_client, resident, items)
    expected = "stored" if batch == "first" else "replaced"
    assert [r["outcome"] for r in retried["results"]] == [expected] * len(items)
    rows, revisions, keys = await _settled(engine, resident.id)
    assert len(rows) == len(items)
    assert {r.revision for r in rows} == ({1} if batch == "first" else {2})
    assert len(revisions) == (0 if batch == "first" else len(items))
    assert [(k.version, k.seals) for k in keys] == [
        (1, len(items) * (1 if batch == "first" else 2))
    ]
    listed = await all_days(committing_client, resident, days[-1], days[0])
    assert sorted(d["steps"] for d in listed) == [2000 + n for n in range(len(items))]
