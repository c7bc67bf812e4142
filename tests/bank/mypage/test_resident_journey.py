"""A resident's whole path through the bank in one phone's browser (Debian's Chromium, driven
by Playwright) against a bank in development served over real HTTP (issue 13, "Tests").

They open `/`, sign up with the code the development mail sink shows, land on マイページ and
let the residents' app sign in (authorization code with PKCE: the demo app, its code on the
bank's callback page); they link a transit card. Then the partners do what they do: the app
pushes steps with the token it got, and the subway's feed, a data source with a key of its own,
gets a token by client credentials (`private_key_jwt`) and pushes taps for the card. The
resident reads the steps and rides pages, whose charts give the API's numbers for the month;
asks for an export, which a real job worker builds, and downloads it; changes the password
(the old one no longer signs in, the new one does, the app's session ends); and deletes the
account with it (sign-in fails, the app's tokens are refused). axe-core checks every page in
Japanese and in English, the other language reached with the page's own language link; a
form's answer has no page of its own, so its link leads to its step's page (the code page after
sign-up to the code page, the deletion's receipt, shown once, to the sign-in page).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import procrastinate
import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.auth.models import ClientKind, OAuthClient
from bank.mypage.views import Month
from bank.settings import Settings
from tests.bank.auth.factories import add_client, assertion
from tests.bank.browser import (
    MYPAGE_TARGETS,
    assert_accessible,
    assert_no_strays,
    check_both_languages,
    phone,
    switch_language,
)
from tests.bank.identity.flows import PASSWORD, committed, new_address
from tests.bank.mypage.flows import push_steps
from tests.bank.vault.conftest import drain
from tests.bank.vault.test_sources_api import SUBWAY, ZONE, card_of, push_taps, ride, tap
from tests.bank.welcome.conftest import DevBank, demo_authorize_url, pkce_pair

NEW_PASSWORD = "a longer pass phrase for the bank 42"
APP_SCOPES = "account records:read records:write"
STEPS = (8_210, 4_005, 12_000)  # the phone's counts on the 3rd, 10th and 17th of last month
TRACKER = 6_000  # a wristband's lower count on the 3rd: the day stays 8,210
_NUMBER = re.compile(r"\d[\d,]*")


@dataclass(frozen=True)
class Token:
    """An access token as its holder got it from the token endpoint (its scopes are its own)."""

    value: str

    def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


@dataclass(frozen=True)
class Feed:
    """A data source as its operator runs it: a registered client and the private key only it
    holds."""

    client_id: str
    key: ECKey | RSAKey | OKPKey


@pytest.fixture
async def subway_feed(engine: AsyncEngine) -> AsyncIterator[Feed]:
    """The subway's feed, registered and vetted through the client registry, as an operator
    does; its key stays with the test, which signs the feed's client assertions with it."""

    async def register(session: AsyncSession) -> tuple[str, ECKey | RSAKey | OKPKey]:
        return await add_client(
            session, kind=ClientKind.SOURCE, scopes=("ingest:transit",), feeds=(SUBWAY,)
        )

    client_id, key = await committed(engine, register)
    yield Feed(client_id, key)

    async def forget(session: AsyncSession) -> None:
        await session.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))

    await committed(engine, forget)


@pytest.fixture
async def api(dev_bank: DevBank) -> AsyncIterator[httpx.AsyncClient]:
    """The API over the same real HTTP the browser uses (the partners' side of the walk)."""
    async with httpx.AsyncClient(base_url=dev_bank.url, timeout=30) as client:
        yield client


# --- what the partners do, over HTTP -------------------------------------------------------------


async def app_signs_in(page: Page, bank: DevBank, api: httpx.AsyncClient) -> tuple[Token, str]:
    """The residents' app asks for access in the resident's browser, who is signed in, so the
    code lands on the callback page at once; the app exchanges it (with its PKCE verifier) for
    an access token and a refresh token."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    await page.goto(demo_authorize_url(bank, challenge, scope=APP_SCOPES, state=state))
    await page.wait_for_url(f"{bank.url}/dev/callback?**")
    code = await page.locator("#code").inner_text()
    issued = await api.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": f"{bank.url}/dev/callback", "client_id": bank.demo_app.client_id,
        },
    )  # fmt: skip
    assert issued.status_code == 200, issued.text
    body = issued.json()
    return Token(body["access_token"]), body["refresh_token"]


async def refresh_refused(api: httpx.AsyncClient, bank: DevBank, refresh_token: str) -> bool:
    """Whether the token endpoint refuses the app's refresh token (RFC 6749 §5.2)."""
    answer = await api.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": bank.demo_app.client_id,
        },
    )  # fmt: skip
    if answer.status_code == 200:
        return False
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant"), answer.text
    return True


async def feed_token(api: httpx.AsyncClient, bank: DevBank, feed: Feed) -> Token:
    """Client credentials with a client assertion signed by the feed's own key (RFC 7523)."""
    token_endpoint = f"{bank.url}/oauth/token"
    issued = await api.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials", "scope": "ingest:transit",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(feed.client_id, feed.key, audience=token_endpoint),
        },
    )  # fmt: skip
    assert issued.status_code == 200, issued.text
    return Token(issued.json()["access_token"])


async def refused(api: httpx.AsyncClient, token: Token) -> bool:
    answer = await api.get("/v1/me/links/", headers=token.headers())
    assert answer.status_code in {200, 401}, answer.text
    return answer.status_code == 401


# --- what the pages show -----------------------------------------------------------------------


async def bar_numbers(chart: Locator) -> list[list[int]]:
    """The numbers each drawn bar of a chart is titled with (what a pointer or a screen reader
    reads: "5月3日: 8,210歩", "May 2026: 4 rides (3 complete)"), in the chart's order."""
    titles = await chart.locator("g:has(rect) > title").all_text_contents()
    return [
        [int(n.replace(",", "")) for n in _NUMBER.findall(title.split(": ", 1)[1])]
        for title in titles
    ]


async def sign_in_on(page: Page, email: str, password: str) -> None:
    """Fill in and send the sign-in form, in whichever language it is shown."""
    ja = await page.get_attribute("html", "lang") == "ja"
    await page.get_by_label("メールアドレス" if ja else "Email address").fill(email)
    await page.get_by_label("パスワード" if ja else "Password").fill(password)
    await page.get_by_role("button", name="サインイン" if ja else "Sign in").click()


async def test_a_resident_signs_up_uses_the_bank_and_leaves_it(
    chromium: Browser,  # first: without Chromium the test is skipped before the bank starts
    dev_bank: DevBank,
    api: httpx.AsyncClient,
    subway_feed: Feed,
    worker: procrastinate.App,
    settings: Settings,
    engine: AsyncEngine,
    today: date,
) -> None:
    base = dev_bank.url
    address = f"walker-{secrets.token_hex(6)}@example.jp"
    last = Month.of(today).shifted(-1)
    days = [last.first.replace(day=n) for n in (3, 10, 17)]
    card = card_of(7321)
    context, page = await phone(chromium, "ja-JP", address=new_address())

    # 1. The landing page, then sign-up.
    await page.goto(f"{base}/")
    await expect(page.locator("h1")).to_have_text("さっぽろ市民情報銀行へようこそ")
    await check_both_languages(page, back=True)
    await page.get_by_role("link", name="新規登録").click()
    await expect(page.locator("h1")).to_have_text("新規登録")
    await check_both_languages(page, back=True)
    await page.get_by_label("メールアドレス").fill(address)
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="登録して確認コードを受け取る").click()
    await expect(page.locator("h1")).to_have_text("メールアドレスの確認")
    await assert_accessible(page)

    # 2. The code, from the development mail sink, in a second tab of the same phone.
    sink = await context.new_page()
    await sink.goto(f"{base}/")
    await sink.get_by_role("link", name="開発用のメール受信箱").click()
    await expect(sink.locator("h1")).to_have_text("開発用のメール受信箱")
    mail = sink.locator("ul.mails li").filter(has_text=address)
    await expect(mail).to_have_count(1)
    await expect(mail.locator("h2")).to_have_text("メールアドレスの確認コード")
    code = await mail.locator("code.code").inner_text()
    await check_both_languages(sink, back=True)
    await sink.close()

    # 3. The code page in English (its language link: the same step, which asks for the
    # address again, as addresses never ride in URLs), where the resident enters the code.
    await switch_language(page)
    await expect(page.locator("h1")).to_have_text("Confirm your email address")
    await assert_accessible(page)
    await page.get_by_label("Email address").fill(address)
    await page.get_by_label("Code (6 digits)").fill(code)
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_url(f"{base}/mypage")
    await expect(page.locator("main")).to_contain_text(address)  # who is signed in
    await check_both_languages(page, targets=MYPAGE_TARGETS)  # and on in Japanese

    # 4. The residents' app signs in; its code lands on the callback page.
    app_token, app_refresh = await app_signs_in(page, dev_bank, api)
    await expect(page.locator("h1")).to_have_text("認可コードを受け取りました")
    await check_both_languages(page, back=True)

    # 5. A card linked on the links page: the number is posted, never put in a URL.
    await page.goto(f"{base}/mypage")
    await page.get_by_role("link", name="カード・保険証").first.click()
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)
    await page.get_by_label("カード番号(16〜17桁)").fill(f"{card[:4]} {card[4:]}")
    await page.get_by_role("button", name="カードを連携する").click()
    await expect(page.get_by_role("status")).to_have_text("連携しました。")
    assert card[-4:] not in page.url
    await expect(page.get_by_text(f"**** {card[-4:]}", exact=True)).to_be_visible()
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)

    # 6. The partners push: the app the phone's steps, the subway's feed the card's taps (three
    # rides with entry and exit, and one entry with no exit).
    await push_steps(api, app_token, dict(zip(days, STEPS, strict=True)), "healthkit")
    await push_steps(api, app_token, {days[0]: TRACKER}, "tracker")
    feed = await feed_token(api, dev_bank, subway_feed)
    lone = datetime(last.year, last.month, 24, 18, 30, tzinfo=ZONE)
    taps = [t for n, day in enumerate(days) for t in ride(card, day, n)]
    taps.append(tap(card, f"T{lone:%Y%m%d}-lone", "entry", lone, "N07"))
    pushed = await push_taps(api, feed, taps)
    assert {r["outcome"] for r in pushed["results"]} == {"stored"}, pushed

    # 7. Steps: the charts give the API's numbers for the month, in either language.
    summary = (
        await api.get(
            "/v1/me/steps/summary", params={"month": last.key}, headers=app_token.headers()
        )
    ).json()
    assert (summary["total_steps"], summary["days_recorded"]) == (sum(STEPS), 3)

    async def steps_match_the_api(page: Page) -> None:
        by_day = await bar_numbers(page.locator('svg[aria-labelledby="days-title"]'))
        assert by_day == [[day["steps"]] for day in summary["days"]]  # one bar a day, in order
        assert sum(n for (n,) in by_day) == summary["total_steps"]
        assert len(by_day) == summary["days_recorded"]
        by_month = await bar_numbers(page.locator('svg[aria-labelledby="months-title"]'))
        # The resident's only month ("1日平均 8,072歩": the mean is the title's last number).
        assert [numbers[-1] for numbers in by_month] == [summary["mean_steps"]]
        await expect(page.locator("p.summary")).to_contain_text(f"{summary['total_steps']:,}")
        await expect(page.locator("p.summary")).to_contain_text(f"{summary['mean_steps']:,}")

    await page.get_by_role("link", name="歩数", exact=True).first.click()
    await page.get_by_role("link", name="前の月").click()
    await page.wait_for_url(f"{base}/mypage/steps?month={last.key}")
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True, each=steps_match_the_api)

    # 8. Rides: the same for the month's rides.
    rides = (
        await api.get(
            "/v1/me/transit/rides", params={"month": last.key}, headers=app_token.headers()
        )
    ).json()
    assert (rides["rides"], rides["complete_rides"]) == (4, 3)

    async def rides_match_the_api(page: Page) -> None:
        by_month = await bar_numbers(page.locator('svg[aria-labelledby="rides-title"]'))
        assert by_month == [[rides["rides"], rides["complete_rides"]]]
        summary_text = await page.locator("p.summary").inner_text()
        assert [int(n.replace(",", "")) for n in _NUMBER.findall(summary_text)] == [
            rides["rides"], rides["complete_rides"], rides["fares_yen"],
        ]  # fmt: skip

    await page.get_by_role("link", name="乗車履歴", exact=True).first.click()
    await page.get_by_role("link", name="前の月").click()
    await page.wait_for_url(f"{base}/mypage/rides?month={last.key}")
    await expect(page.get_by_text("大通 (N07, 南北線)").first).to_be_visible()
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True, each=rides_match_the_api)

    # No checkup was sent: the page says so.
    await page.get_by_role("link", name="健診結果", exact=True).first.click()
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)

    # 9. The export: asked for, built by a real job worker, downloaded, opened.
    await page.get_by_role("link", name="データの書き出し").first.click()
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)
    await page.get_by_role("button", name="書き出しを依頼する").click()
    await expect(page.get_by_role("status")).to_have_text("作成中です")
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)
    await drain(worker, dev_bank.app, settings, engine)
    await page.get_by_role("link", name="状況を更新する").click()
    await expect(page.get_by_role("status")).to_contain_text("ダウンロードできます")
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="ZIPをダウンロード").click()
    download = await downloading.value
    saved = Path(await download.path())
    archive = zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(saved.read_bytes)))
    assert archive.testzip() is None  # every member's CRC holds

    def member(name: str) -> Any:
        (path,) = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == name]
        return json.loads(archive.read(path))

    held = {(s["day"], s["platform"], s["steps"]) for s in member("steps.json")}
    assert held == {
        *((day.isoformat(), "healthkit", n) for day, n in zip(days, STEPS, strict=True)),
        (days[0].isoformat(), "tracker", TRACKER),
    }
    assert len(member("transit_taps.json")) == len(taps)

    # 10. A new password: the app's session ends with the change; the old password fails.
    await page.get_by_role("link", name="アカウント設定").first.click()
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)
    await page.get_by_label("現在のパスワード").fill(PASSWORD)
    await page.get_by_label("新しいパスワード").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="パスワードを変更する").click()
    await expect(page.get_by_role("status")).to_contain_text("パスワードを変更しました")
    await check_both_languages(page, targets=MYPAGE_TARGETS, back=True)
    assert await refused(api, app_token)
    assert await refresh_refused(api, dev_bank, app_refresh)

    await page.goto(f"{base}/mypage")
    await page.get_by_role("button", name="サインアウト").click()
    await page.wait_for_url(f"{base}/signin")
    await sign_in_on(page, address, PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("正しくありません")
    await check_both_languages(page)  # the form again, in English
    await sign_in_on(page, address, NEW_PASSWORD)
    await page.wait_for_url(f"{base}/mypage")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await switch_language(page)

    # 11. The app signs in again; then the account is deleted with the (new) password.
    app_token, app_refresh = await app_signs_in(page, dev_bank, api)
    assert not await refused(api, app_token)
    await page.goto(f"{base}/mypage/account")
    await page.get_by_label("確認のため、パスワードを入力してください").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="アカウントとすべてのデータを削除する").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("アカウントを削除しました")
    receipt = await page.locator("dl.holdings code").inner_text()
    assert uuid.UUID(receipt)
    # The receipt is the answer to the deletion, shown once; its language link leads to the
    # sign-in page in the other language.
    await check_both_languages(page)
    await expect(page.locator("h1")).to_have_text("Sign in")

    # 12. Gone: the password no longer signs in, the app's tokens are refused.
    await sign_in_on(page, address, NEW_PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("The email address or password")
    await assert_accessible(page)
    assert await refused(api, app_token)
    assert await refresh_refused(api, dev_bank, app_refresh)
    assert_no_strays(context)
    await context.close()
