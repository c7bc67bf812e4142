"""マイページ over HTTP: the resident's session, the sign-in pages' headers, the numbers beside
the API's, and the forms (CSRF, links, export, password, sign out everywhere, erasure), with
numbers that never reach a URL or a log line."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.identity.browser import start_session
from bank.identity.models import Account
from bank.mypage.views import Month
from bank.mypage.web import NAVIGATION
from bank.vault.models import ErasureReceipt, Link
from tests.bank.mypage.flows import csrf_in, push_steps, ride_days, send_checkup, sign_in
from tests.bank.vault.conftest import Clients, Resident, Residents
from tests.bank.vault.test_exports import set_build_job
from tests.bank.vault.test_sources_api import INSURER, SUBWAY, card_of

Client = httpx.AsyncClient
PAGES = (
    "/mypage", "/mypage/steps", "/mypage/rides", "/mypage/checkup", "/mypage/links",
    "/mypage/export", "/mypage/account",
)  # fmt: skip
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _app_of(client: Client) -> Litestar:
    transport: Any = client._transport  # the ASGI transport serve() built around the app
    app: Litestar = transport.app
    return app


async def _form(client: Client, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    """Post a page's form as a browser does: the CSRF token from the page, the cookies kept."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={"csrf": csrf_in(shown.text), **fields})


async def _links(db_session: AsyncSession, resident: Resident) -> list[Link]:
    return list(
        (await db_session.scalars(select(Link).where(Link.resident_id == resident.id))).all()
    )


# --- the session -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/mypage/steps?month=2026-01"])
async def test_without_a_session_every_page_sends_the_browser_to_sign_in_and_back(
    client: Client, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/signin"
    # Back to the page afterwards, its path only: nothing of the request's query is echoed.
    assert parse_qs(location.query) == {"return_to": [path.split("?")[0]]}


async def test_a_form_without_a_session_changes_nothing_and_asks_to_sign_in(
    client: Client, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    response = await client.post("/mypage/links", data={"kind": "transit_card", "card": card_of(3)})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?return_to=%2Fmypage"
    assert await _links(db_session, resident) == []


async def test_an_operator_is_sent_to_the_sign_in_pages_account_page(
    client: Client, residents: Residents, db_session: AsyncSession
) -> None:
    someone = await residents.new()
    await db_session.execute(
        update(Account)
        .where(Account.id == someone.id)
        .values(kind="operator", totp_secret_sealed=b"sealed")
    )
    cookie = await start_session(db_session, someone.id)
    await db_session.commit()
    client.cookies.set("bank_session", cookie)
    response = await client.get("/mypage")
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


async def test_a_resident_signing_in_at_the_account_page_lands_on_mypage(
    client: Client, residents: Residents
) -> None:
    resident = await residents.new()
    await sign_in(client, resident, "/account")
    assert (await client.get("/account")).headers["location"] == "/mypage"


async def test_every_page_has_the_sign_in_pages_standard_and_only_the_pages_that_exist(
    client: Client, residents: Residents
) -> None:
    await sign_in(client, await residents.new())
    for path in PAGES:
        page = await client.get(path, headers={"accept-language": "en"})
        assert page.status_code == 200, page.text
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["cache-control"] == "no-store"
        assert '<html lang="en">' in page.text
        assert "<script" not in page.text
        assert 'href="/static/identity/bank.css"' in page.text
        assert 'href="/static/mypage/mypage.css"' in page.text
        assert "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in page.text
        for target, _ in NAVIGATION:
            assert f'href="{target}"' in page.text
    # Placeholders are not acceptable: these join the navigation with their own issues.
    assert [path for path, _ in NAVIGATION] == list(PAGES)
    for later in ("/mypage/consents", "/mypage/provisions", "/mypage/points"):
        assert (await client.get(later)).status_code == 404
    assert (await client.get("/static/mypage/mypage.css")).status_code == 200


async def test_the_language_switch_is_remembered(client: Client, residents: Residents) -> None:
    await sign_in(client, await residents.new())
    switched = await client.get("/mypage/steps", params={"lang": "en"})
    assert '<html lang="en">' in switched.text
    assert 'href="/mypage/steps?lang=ja"' in switched.text
    assert '<html lang="en">' in (await client.get("/mypage")).text  # the cookie it set


# --- the data pages --------------------------------------------------------------------------


async def test_the_data_pages_show_the_apis_numbers_with_names_and_sources(
    client: Client, residents: Residents, sources: Clients, today: date
) -> None:
    resident = await residents.new()
    subway = await sources.new("ingest:transit", feeds=(SUBWAY,))
    insurer = await sources.new("ingest:checkups", feeds=(INSURER,))
    last = Month.of(today).shifted(-1)
    days = [last.first.replace(day=n) for n in (3, 10, 17)]
    await push_steps(
        client, resident, dict(zip(days, (8_210, 4_005, 12_001), strict=True)), "healthkit"
    )
    await ride_days(client, resident, subway, card_of(7), days[:2])
    await send_checkup(client, resident, insurer, days[0], hba1c=6.7)
    await sign_in(client, resident)
    headers = {"accept-language": "en"}

    summary = (
        await client.get(
            "/v1/me/steps/summary", params={"month": last.key}, headers=resident.headers()
        )
    ).json()
    steps = (await client.get(f"/mypage/steps?month={last.key}", headers=headers)).text
    assert (
        f"Days recorded: {summary['days_recorded']} · total: {summary['total_steps']:,} steps · "
        f"daily mean: {summary['mean_steps']:,} steps"
    ) in steps
    # A bar for each day with steps, and one for the month in the year's chart.
    assert steps.count("<rect x=") == 3 + 1
    assert "Apple Health (HealthKit)" in steps

    rides = (
        await client.get(
            "/v1/me/transit/rides", params={"month": last.key}, headers=resident.headers()
        )
    ).json()
    page = (await client.get(f"/mypage/rides?month={last.key}", headers=headers)).text
    assert f"Rides: {rides['rides']} ({rides['complete_rides']} complete)" in page
    assert "Odori (N07, Namboku Line)" in page
    assert "Minami-Hiragishi (N13, Namboku Line)" in page
    assert "Sapporo Municipal Subway" in page

    latest = (await client.get("/v1/me/checkups/latest", headers=resident.headers())).json()
    judged = {item["item"]: item["judgement"] for item in latest["items"]}
    checkup = (await client.get("/mypage/checkup", headers=headers)).text
    assert judged["hba1c"] == "referral"
    assert 'class="judged-referral"' in checkup
    assert "At the level where seeing a doctor is advised" in checkup
    assert "see a doctor: 6.5 or more" in checkup
    assert "institution code 0112345678" in checkup

    home = (await client.get("/mypage", headers=headers)).text
    assert resident.email in home
    assert "3 days" in home
    assert "2 rides" in home


async def test_a_resident_with_nothing_yet_is_told_so(client: Client, residents: Residents) -> None:
    await sign_in(client, await residents.new())
    assert "健診結果はまだ届いていません" in (await client.get("/mypage/checkup")).text
    assert "この月の歩数の記録はありません" in (await client.get("/mypage/steps")).text
    assert "まだ何も連携していません" in (await client.get("/mypage/links")).text


# --- links -----------------------------------------------------------------------------------


async def test_a_card_is_linked_and_unlinked_on_the_page_and_its_number_is_never_shown_back(
    client: Client,
    residents: Residents,
    db_session: AsyncSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    resident = await residents.new()
    await sign_in(client, resident)
    card = card_of(8642)
    added = await _form(
        client, "/mypage/links", "/mypage/links", {"kind": "transit_card", "card": card}
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/mypage/links?done=link_added"
    page = await client.get(added.headers["location"])
    assert f"**** {card[-4:]}" in page.text
    assert card not in page.text
    (link,) = await _links(db_session, resident)

    again = await _form(
        client, "/mypage/links", "/mypage/links", {"kind": "transit_card", "card": card}
    )
    assert again.status_code == 409
    wrong = await _form(
        client, "/mypage/links", "/mypage/links", {"kind": "transit_card", "card": "12345678"}
    )
    assert wrong.status_code == 422
    assert "12345678" not in wrong.text  # the typed number is not echoed into the page
    # The language switch of a form's answer leads to the page (a GET), not the form's action.
    assert 'href="/mypage/links?lang=en"' in wrong.text
    member = await _form(
        client, "/mypage/links", "/mypage/links",
        {"kind": "insurer_member", "insurer": "0613998", "member": "1-2"},
    )  # fmt: skip
    assert member.status_code == 422
    assert "保険者番号は6桁または8桁" in member.text

    removed = await _form(client, "/mypage/links", f"/mypage/links/{link.id}/remove", {})
    assert removed.headers["location"] == "/mypage/links?done=link_removed"
    assert await _links(db_session, resident) == []
    gone = await _form(client, "/mypage/links", f"/mypage/links/{link.id}/remove", {})
    assert gone.status_code == 404
    logged = capsys.readouterr()
    assert card not in logged.out + logged.err
    assert card[-8:] not in logged.out + logged.err


async def test_forms_without_the_pages_csrf_token_change_nothing(
    client: Client, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    await sign_in(client, resident)
    await client.get("/mypage/links")  # the CSRF cookie is set; the forged form lacks the field
    forged = await client.post("/mypage/links", data={"kind": "transit_card", "card": card_of(1)})
    assert forged.status_code == 403
    assert await _links(db_session, resident) == []
    for action, fields in (
        ("/mypage/account/delete", {"password": resident.password}),
        (
            "/mypage/account/password",
            {"current_password": resident.password, "new_password": "x" * 20},
        ),
        ("/mypage/account/sign-out-everywhere", {}),
        ("/mypage/export", {}),
    ):
        response = await client.post(action, data={"csrf": "forged", **fields})
        assert response.status_code == 403, action
    assert await db_session.get(Account, resident.id) is not None
    assert (await client.get("/mypage")).status_code == 200  # still signed in


# --- export ----------------------------------------------------------------------------------


async def test_an_export_is_asked_for_and_watched_on_the_page_by_its_owner_only(
    client: Client, residents: Residents
) -> None:
    resident, other = await residents.new(), await residents.new()
    await sign_in(client, resident)
    asked = await _form(client, "/mypage/export", "/mypage/export", {})
    assert asked.status_code == 303
    location = asked.headers["location"]
    export_id = uuid.UUID(location.rsplit("/", 1)[1])
    status = await client.get(location)
    assert "作成中です" in status.text
    assert f'href="/mypage/export/{export_id}"' in status.text  # check again
    assert "作成中です" in (await client.get("/mypage/export")).text
    pending = await client.get(f"{location}/download")
    assert pending.status_code == 409
    # The API sees the same export.
    api = await client.get(f"/v1/me/exports/{export_id}", headers=resident.headers())
    assert api.json()["status"] == "pending"

    client.cookies.clear()
    await sign_in(client, other)
    assert (await client.get(location)).status_code == 404
    assert (await client.get(f"{location}/download")).status_code == 404
    assert "有効な書き出しはありません" in (await client.get("/mypage/export")).text


async def test_an_export_whose_build_gave_up_reads_as_failed_on_the_page(
    client: Client, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    await sign_in(client, resident)
    asked = await _form(client, "/mypage/export", "/mypage/export", {})
    location = asked.headers["location"]
    export_id = location.rsplit("/", 1)[1]
    await set_build_job(db_session, export_id, "failed")  # its retries spent
    status = await client.get(location)
    assert "作成できませんでした" in status.text
    assert "もう一度依頼してください" in status.text
    assert "作成できませんでした" in (await client.get("/mypage/export")).text
    api = await client.get(f"/v1/me/exports/{export_id}", headers=resident.headers())
    assert api.json()["status"] == "failed"


# --- the account -----------------------------------------------------------------------------


async def test_a_new_password_ends_the_other_browsers_and_the_apps_but_not_this_one(
    client: Client, residents: Residents
) -> None:
    resident = await residents.new()
    app = _app_of(client)
    await sign_in(client, resident)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await sign_in(other, resident)
        wrong = await _form(
            client, "/mypage/account", "/mypage/account/password",
            {"current_password": "not the password at all", "new_password": "x" * 20},
        )  # fmt: skip
        assert wrong.status_code == 401
        assert 'aria-invalid="true"' in wrong.text
        weak = await _form(
            client, "/mypage/account", "/mypage/account/password",
            {"current_password": resident.password, "new_password": "password"},
        )  # fmt: skip
        assert weak.status_code == 422
        assert (await other.get("/mypage")).status_code == 200  # nothing changed yet

        changed = await _form(
            client, "/mypage/account", "/mypage/account/password",
            {"current_password": resident.password, "new_password": "a new long pass phrase 9"},
        )  # fmt: skip
        assert changed.headers["location"] == "/mypage/account?done=password_changed"
        assert (await client.get("/mypage")).status_code == 200
        assert (await other.get("/mypage")).status_code == 303
    steps = await client.get("/v1/me/links/", headers=resident.headers())
    assert steps.status_code == 401  # the app's session ended with the old password


async def test_signing_out_everywhere_ends_every_browser_and_app(
    client: Client, residents: Residents
) -> None:
    resident = await residents.new()
    await sign_in(client, resident)
    ended = await _form(client, "/mypage/account", "/mypage/account/sign-out-everywhere", {})
    assert ended.status_code == 200
    assert "すべての端末とアプリからサインアウトしました" in ended.text
    assert 'class="mypage-nav"' not in ended.text  # signed out: no navigation to follow
    assert 'href="/signin?lang=en"' in ended.text
    assert (await client.get("/mypage")).status_code == 303
    assert (await client.get("/v1/me/links/", headers=resident.headers())).status_code == 401


async def test_deleting_the_account_takes_the_password_and_leaves_only_the_receipt(
    client: Client, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    resident = await residents.new()
    await push_steps(client, resident, {today: 4321}, "healthkit")
    await sign_in(client, resident)
    page = await client.get("/mypage/account")
    assert "削除されるもの" in page.text
    assert "残るもの" in page.text
    refused = await _form(
        client, "/mypage/account", "/mypage/account/delete", {"password": "wrong password!!"}
    )
    assert refused.status_code == 401
    assert await db_session.get(Account, resident.id) is not None

    deleted = await _form(
        client, "/mypage/account", "/mypage/account/delete", {"password": resident.password}
    )
    assert deleted.status_code == 200
    receipt = await db_session.scalar(
        select(ErasureReceipt).where(ErasureReceipt.resident_id == resident.id)
    )
    assert receipt is not None
    assert str(receipt.id) in deleted.text
    assert receipt.records_deleted >= 1
    assert "bank_session=" in deleted.headers["set-cookie"]  # the cookie is cleared
    db_session.expunge_all()
    assert await db_session.get(Account, resident.id) is None
    assert (await client.get("/mypage")).status_code == 303
