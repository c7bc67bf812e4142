"""マイページ in a real headless Chromium (Debian's, driven by Playwright) over real HTTP: a
resident made by the fixtures signs in, links a card, reads their steps, rides and checkup with
the charts, asks for an export and downloads it once a real job worker has built it, changes
their password, signs out everywhere and deletes the account. axe-core (the copy the
`axe-playwright-python` package installs, never a download) checks every page in Japanese and in
English and must find nothing.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import date
from pathlib import Path

import httpx
import procrastinate
from litestar import Litestar
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.mypage.views import Month
from bank.settings import Settings
from tests.bank.browser import (
    MYPAGE_TARGETS,
    assert_accessible,
    assert_no_strays,
    assert_targets_large_enough,
    free_port,
    phone,
    serving,
)
from tests.bank.mypage.flows import push_steps, ride_days, send_checkup
from tests.bank.vault.conftest import Clients, Resident, Residents, drain
from tests.bank.vault.test_sources_api import INSURER, SUBWAY, card_of

NEW_PASSWORD = "a longer pass phrase for the bank 42"


async def _sign_in(page: Page, base: str, resident: Resident, password: str, ja: bool) -> None:
    await page.goto(f"{base}/mypage")
    assert "/signin?return_to=%2Fmypage" in page.url  # sent to sign in, and back after
    await page.get_by_label("メールアドレス" if ja else "Email address").fill(resident.email)
    await page.get_by_label("パスワード" if ja else "Password").fill(password)
    await page.get_by_role("button", name="サインイン" if ja else "Sign in").click()
    await page.wait_for_url(f"{base}/mypage")


async def test_a_resident_walks_through_mypage_in_both_languages(
    committing_app: Litestar,
    committing_client: httpx.AsyncClient,
    committing_residents: Residents,
    committing_sources: Clients,
    chromium: Browser,
    worker: procrastinate.App,
    settings: Settings,
    engine: AsyncEngine,
    today: date,
) -> None:
    api = committing_client
    resident = await committing_residents.new()
    subway = await committing_sources.new("ingest:transit", feeds=(SUBWAY,))
    insurer = await committing_sources.new("ingest:checkups", feeds=(INSURER,))
    last = Month.of(today).shifted(-1)
    days = [last.first.replace(day=n) for n in (3, 10, 17)]
    await push_steps(
        api, resident, dict(zip(days, (8_210, 4_005, 12_000), strict=True)), "healthkit"
    )
    await push_steps(api, resident, {days[0]: 6_000}, "tracker")  # lower: the day stays 8,210
    await send_checkup(api, resident, insurer, days[1], hba1c=6.7, ldl=130)
    card = card_of(5151)

    async with serving(committing_app, free_port()) as base:
        context, page = await phone(chromium, "ja-JP")
        await _sign_in(page, base, resident, resident.password, ja=True)
        await expect(page.get_by_text(resident.email)).to_be_visible()  # who is signed in
        assert await page.title() == "マイページ | さっぽろ市民情報銀行"
        await assert_accessible(page)
        await assert_targets_large_enough(page, MYPAGE_TARGETS)

        # Link a card on the links page; the number is posted, never put in a URL.
        await page.get_by_role("link", name="カード・保険証").first.click()
        await page.get_by_label("カード番号(16〜17桁)").fill(f"{card[:4]} {card[4:]}")
        await page.get_by_role("button", name="カードを連携する").click()
        await expect(page.get_by_role("status")).to_have_text("連携しました。")
        assert card[-4:] not in page.url
        await expect(page.get_by_text(f"**** {card[-4:]}", exact=True)).to_be_visible()
        await assert_accessible(page)
        await ride_days(api, resident, subway, card, days, link=False)  # the subway's feed

        # Steps: the chart and its table give the API's numbers for the month.
        await page.goto(f"{base}/mypage/steps?month={last.key}")
        summary = (
            await api.get(
                "/v1/me/steps/summary", params={"month": last.key}, headers=resident.headers()
            )
        ).json()
        assert (summary["total_steps"], summary["days_recorded"]) == (24_215, 3)
        await expect(page.locator("p.summary")).to_have_text(
            f"記録のある日: 3日 / 合計: 24,215歩 / 1日平均: {summary['mean_steps']:,}歩"
        )
        chart = page.get_by_role("img", name=f"{last.year}年{last.month}月の歩数(日ごと)")
        await expect(chart).to_be_visible()
        await expect(chart.locator("g > rect")).to_have_count(3)
        await page.get_by_text("表で見る(グラフと同じ数値)").first.click()
        row = page.get_by_role("row", name=f"{last.year}年{last.month}月3日")
        await expect(row).to_contain_text("8,210")
        await expect(row).to_contain_text("iPhoneのヘルスケア(HealthKit)、活動量計")
        await assert_accessible(page)

        # Rides: station names beside the codes, and the API's count.
        await page.goto(f"{base}/mypage/rides?month={last.key}")
        rides = (
            await api.get(
                "/v1/me/transit/rides", params={"month": last.key}, headers=resident.headers()
            )
        ).json()
        assert rides["rides"] == 3
        await expect(page.locator("p.summary")).to_contain_text("乗車: 3回")
        await expect(page.get_by_text("大通 (N07, 南北線)").first).to_be_visible()
        await expect(page.get_by_text("南平岸 (N13, 南北線)").first).to_be_visible()
        await expect(page.get_by_text("片方のみの乗車")).to_be_visible()  # the legend names it
        await assert_accessible(page)

        # The latest checkup, each value judged in words against the standard values.
        await page.get_by_role("link", name="健診結果").click()
        hba1c = page.locator("li", has=page.get_by_role("heading", name="HbA1c"))
        await expect(hba1c).to_contain_text("受診をおすすめする値です")
        await expect(hba1c).to_contain_text("受診勧奨: 6.5以上")
        await assert_accessible(page)

        # Export: ask, watch it being built, download it once the worker has built it.
        await page.get_by_role("link", name="データの書き出し").first.click()
        await assert_accessible(page)
        await page.get_by_role("button", name="書き出しを依頼する").click()
        await expect(page.get_by_role("status")).to_have_text("作成中です")
        await assert_accessible(page)
        await drain(worker, committing_app, settings, engine)
        await page.get_by_role("link", name="状況を更新する").click()
        await expect(page.get_by_role("status")).to_contain_text("ダウンロードできます")
        await assert_accessible(page)
        async with page.expect_download() as downloading:
            await page.get_by_role("link", name="ZIPをダウンロード").click()
        download = await downloading.value
        assert download.suggested_filename.startswith("city-bank-export-")
        saved = await download.path()
        archive = zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(Path(saved).read_bytes)))
        names = {name.rsplit("/", 1)[-1] for name in archive.namelist()}
        assert {"steps.json", "transit_taps.json", "checkups.json", "links.json"} <= names

        # Account: change the password (the old one stops working).
        await page.get_by_role("link", name="アカウント設定").click()
        await assert_accessible(page)
        await page.get_by_label("現在のパスワード").fill(resident.password)
        await page.get_by_label("新しいパスワード").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="パスワードを変更する").click()
        await expect(page.get_by_role("status")).to_contain_text("パスワードを変更しました")
        await assert_accessible(page)
        assert_no_strays(context)

        # The same pages in English, on another phone signed in with the new password.
        english, en = await phone(chromium, "en-GB")
        await _sign_in(en, base, resident, NEW_PASSWORD, ja=False)
        assert await en.get_attribute("html", "lang") == "en"
        for path in (
            "/mypage", f"/mypage/steps?month={last.key}", f"/mypage/rides?month={last.key}",
            "/mypage/checkup", "/mypage/links", "/mypage/export", "/mypage/account",
        ):  # fmt: skip
            await en.goto(f"{base}{path}")
            await assert_accessible(en)
            await assert_targets_large_enough(en, MYPAGE_TARGETS)
        await en.goto(f"{base}/mypage/links")
        await en.get_by_label("Card number (16 or 17 digits)").fill("1234")  # too short
        await en.get_by_role("button", name="Link the card").click()
        await expect(en.get_by_role("alert")).to_contain_text("A card number has 16 or 17 digits")
        await assert_accessible(en)  # the error state too
        await en.goto(f"{base}/mypage/account")
        await en.get_by_role("button", name="Sign out everywhere").click()
        await expect(en.get_by_role("status")).to_contain_text("signed out on every device")
        await assert_accessible(en)
        assert_no_strays(english)
        await english.close()

        # The Japanese phone was signed out too: sign in again, then delete the account.
        await page.goto(f"{base}/mypage/account")
        assert "/signin" in page.url
        await _sign_in(page, base, resident, NEW_PASSWORD, ja=True)
        await page.goto(f"{base}/mypage/account")
        await page.get_by_label("確認のため、パスワードを入力してください").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="アカウントとすべてのデータを削除する").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("アカウントを削除しました")
        await expect(page.get_by_text("受付番号", exact=True)).to_be_visible()
        await assert_accessible(page)
        await page.goto(f"{base}/mypage")
        assert "/signin" in page.url  # the session went with the account
        assert_no_strays(context)
        await context.close()

    gone = await api.get("/v1/me/links/", headers=resident.headers())
    assert gone.status_code == 401
