"""The landing page, the development callback page and Swagger UI in a real headless Chromium
(Debian's, driven by Playwright) over real HTTP: axe-core (the copy `axe-playwright-python`
installs) finds nothing on either page in Japanese or in English, every target is 44 px tall,
the demo app's code lands on the callback page after a real sign-in, and Swagger UI's Authorize
button obtains a token with the demo app (code flow with PKCE) that the API accepts.
"""

from __future__ import annotations

import secrets

import httpx
from playwright.async_api import Browser, expect

from tests.bank.browser import PHONE, check_both_languages
from tests.bank.identity.flows import PASSWORD
from tests.bank.welcome.conftest import DevBank, demo_authorize_url, pkce_pair


async def test_the_landing_page_links_everything_and_shows_the_demo(
    dev_bank: DevBank, chromium: Browser
) -> None:
    context = await chromium.new_context(viewport=PHONE, locale="ja-JP")
    page = await context.new_page()
    await page.goto(f"{dev_bank.url}/")
    await expect(page.locator("h1")).to_have_text("さっぽろ市民情報銀行へようこそ")
    for href in ("/mypage", "/signin", "/signup", "/docs", "/problems/"):
        await expect(page.locator(f'main a[href="{href}"]')).to_have_count(1)
    await expect(page.locator("main table")).to_contain_text(dev_bank.email)
    await expect(page.locator("main table")).to_contain_text(dev_bank.password)
    await expect(page.locator("main")).to_contain_text(dev_bank.demo_app.client_id)
    await check_both_languages(page)
    await expect(page.locator("h1")).to_have_text("Welcome to the Sapporo City Information Bank")
    # Each link leads somewhere that answers.
    for href in ("/docs", "/problems/", "/signin", "/signup", "/reset"):
        async with httpx.AsyncClient(base_url=dev_bank.url) as http:
            assert (await http.get(href)).status_code == 200, href
    await context.close()


async def test_the_demo_apps_code_lands_on_the_callback_page(
    dev_bank: DevBank, chromium: Browser
) -> None:
    context = await chromium.new_context(viewport=PHONE, locale="en-US")
    page = await context.new_page()
    _, challenge = pkce_pair()
    await page.goto(
        demo_authorize_url(dev_bank, challenge, scope="account records:read", state="browser")
    )
    await page.get_by_label("Email address").fill(dev_bank.email)
    await page.get_by_label("Password").fill(dev_bank.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{dev_bank.url}/dev/callback?**")
    await expect(page.locator("h1")).to_have_text("Authorization code received")
    code = await page.locator("#code").inner_text()
    assert f"code={code}" in page.url
    await expect(page.locator("#token-curl")).to_contain_text(dev_bank.demo_app.client_id)
    await check_both_languages(page)
    await expect(page.locator("h1")).to_have_text("認可コードを受け取りました")
    await context.close()


async def test_swagger_ui_obtains_a_token_with_the_demo_app(
    dev_bank: DevBank, chromium: Browser
) -> None:
    context = await chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = await context.new_page()
    await page.goto(f"{dev_bank.url}/docs")
    await page.get_by_role("button", name="Authorize").first.click()
    # The dialog lists the scheme's flows in the document's order: client credentials, then
    # the authorization code flow (with PKCE), each with its client_id and Authorize button.
    await expect(
        page.get_by_role("heading", name="oauth2 (OAuth2, authorizationCode with PKCE)")
    ).to_be_visible()
    client_id = page.get_by_role("textbox", name="client_id:").nth(1)
    await expect(client_id).to_have_value(dev_bank.demo_app.client_id)
    authorize = page.get_by_role("button", name="Apply given OAuth2 credentials").nth(1)
    async with context.expect_page() as popup_info:
        await authorize.click()
    popup = await popup_info.value
    await popup.wait_for_load_state()
    assert "/signin?return_to=%2Foauth%2Fauthorize" in popup.url, popup.url
    await popup.get_by_label("Email address").fill(dev_bank.email)
    await popup.get_by_label("Password").fill(dev_bank.password)
    async with page.expect_response(lambda r: r.url.endswith("/oauth/token")) as exchanged:
        await popup.get_by_role("button", name="Sign in").click()
    token_response = await exchanged.value
    assert token_response.status == 200
    token = (await token_response.json())["access_token"]
    await expect(page.get_by_role("button", name="Remove authorization").first).to_be_visible()
    async with httpx.AsyncClient(base_url=dev_bank.url) as http:
        me = await http.get(
            "/v1/me/steps/summary",
            params={"month": "2026-01"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert me.status_code == 200, me.text
    await context.close()
    # The same token pasted into the bearer field of a fresh Swagger UI is sent with a call.
    pasted = await chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    docs = await pasted.new_page()
    await docs.goto(f"{dev_bank.url}/docs")
    await docs.get_by_role("button", name="Authorize").first.click()
    await docs.get_by_role("textbox", name="auth-bearer-value").fill(token)
    await docs.get_by_role("button", name="Apply credentials").click()
    await docs.get_by_role("button", name="Close").first.click()
    await docs.get_by_role("button", name="GET /v1/me/steps/summary A").click()
    await docs.get_by_role("button", name="Try it out").click()
    await docs.get_by_placeholder("month").fill("2026-01")
    async with docs.expect_response(lambda r: "/v1/me/steps/summary?" in r.url) as called:
        await docs.get_by_role("button", name="Execute").click()
    answer = await called.value
    assert answer.status == 200
    assert answer.request.headers["authorization"] == f"Bearer {token}"
    await pasted.close()


async def test_sign_up_is_finished_with_the_code_from_the_mail_sink(
    dev_bank: DevBank, chromium: Browser
) -> None:
    """A new developer's sign-up on a laptop: no mail is sent, the code is read at /dev/mail."""
    context = await chromium.new_context(viewport=PHONE, locale="ja-JP")
    page = await context.new_page()
    address = f"newcomer-{secrets.token_hex(6)}@example.jp"
    await page.goto(f"{dev_bank.url}/")
    await page.get_by_role("link", name="新規登録").click()
    await page.get_by_label("メールアドレス").fill(address)
    await page.get_by_label("パスワード").fill(PASSWORD)
    await page.get_by_role("button", name="登録して確認コードを受け取る").click()
    await expect(page.locator("h1")).to_have_text("メールアドレスの確認")

    sink = await context.new_page()
    await sink.goto(f"{dev_bank.url}/")
    await sink.get_by_role("link", name="開発用のメール受信箱").click()
    await expect(sink.locator("h1")).to_have_text("開発用のメール受信箱")
    mail = sink.locator("ul.mails li").filter(has_text=address)
    await expect(mail).to_have_count(1)
    await expect(mail.locator("h2")).to_have_text("メールアドレスの確認コード")
    code = await mail.locator("code.code").inner_text()
    assert len(code) == 6
    await check_both_languages(sink)
    await expect(sink.locator("h1")).to_have_text("Development mail sink")

    await page.get_by_label("確認コード").fill(code)
    await page.get_by_role("button", name="確認する").click()
    await page.wait_for_url(f"{dev_bank.url}/mypage")
    await expect(page.locator("main")).to_contain_text(address)
    await context.close()
