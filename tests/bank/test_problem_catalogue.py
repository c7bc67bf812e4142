"""The problem catalogue: every code in Japanese and English, as JSON for programs and as pages
for people (the sign-in pages' standard: server-rendered, no script, the same CSP), checked in a
real headless Chromium with axe-core in both languages."""

from __future__ import annotations

import re

import httpx
import pytest
from markupsafe import escape
from playwright.async_api import Browser, Page, Route, expect

from bank.errors import PROBLEM_TYPES
from bank.http.problem_pages import CONTENT_SECURITY_POLICY
from tests.bank.browser import assert_accessible, assert_targets_large_enough, switch_language
from tests.bank.test_problems import assert_problem

Client = httpx.AsyncClient
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def test_every_problem_type_has_a_japanese_title_and_description() -> None:
    import bank.app  # noqa: F401 - every package registers its problem types on import

    for problem in PROBLEM_TYPES.values():
        assert _JAPANESE.search(problem.title_ja), problem.code
        assert _JAPANESE.search(problem.description_ja), problem.code
        assert problem.title, problem.code
        assert problem.description, problem.code
        assert not _JAPANESE.search(problem.title), problem.code


async def test_the_catalogue_lists_every_code_in_both_languages(client: Client) -> None:
    listing = await client.get("/problems")
    assert listing.headers["content-type"].startswith("application/json")
    by_code = {entry["code"]: entry for entry in listing.json()}
    assert set(by_code) == set(PROBLEM_TYPES)
    for code, entry in by_code.items():
        problem = PROBLEM_TYPES[code]
        assert entry == {
            "code": code,
            "status": problem.status,
            "title": problem.title,
            "description": problem.description,
            "title_ja": problem.title_ja,
            "description_ja": problem.description_ja,
            "type": f"/problems/{code}",
        }
    one = await client.get("/problems/no-checkup", headers={"accept": "application/json"})
    assert one.json() == by_code["no-checkup"]
    assert_problem(await client.get("/problems/nonsense"), 404, "not-found")


async def test_a_browser_gets_the_catalogue_as_a_page_under_the_sign_in_pages_csp(
    client: Client,
) -> None:
    page = await client.get("/problems", headers={"accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "<script" not in page.text
    assert '<html lang="ja">' in page.text  # Japanese unless asked otherwise, as the pages
    for code in PROBLEM_TYPES:
        assert f'href="/problems/{code}?lang=ja"' in page.text
        assert PROBLEM_TYPES[code].title_ja in page.text
    english = await client.get("/problems?lang=en", headers={"accept": BROWSER})
    assert '<html lang="en">' in english.text
    assert all(escape(PROBLEM_TYPES[c].title) in english.text for c in PROBLEM_TYPES)


@pytest.mark.parametrize(
    ("accept_language", "lang"), [("en-US,en;q=0.9", "en"), ("ja-JP", "ja"), (None, "ja")]
)
async def test_a_problem_page_follows_the_language_asked_for(
    client: Client, accept_language: str | None, lang: str
) -> None:
    headers = {"accept": BROWSER}
    if accept_language:
        headers["accept-language"] = accept_language
    page = await client.get("/problems/link-taken", headers=headers)
    problem = PROBLEM_TYPES["link-taken"]
    assert f'<html lang="{lang}">' in page.text
    assert f"<h1>{escape(problem.title_in(lang))}</h1>" in page.text  # type: ignore[arg-type]
    assert "409" in page.text
    # The other language is on the page too, marked as such.
    other = "en" if lang == "ja" else "ja"
    assert f'lang="{other}"' in page.text


# --- in a real browser --------------------------------------------------------------------------


async def _serve_through(page: Page, client: Client) -> list[str]:
    """Every request the page makes goes to the app (in the test's own loop) and back; returns
    the console's errors (a CSP violation is one)."""

    async def forward(route: Route) -> None:
        request = route.request
        answer = await client.request(
            request.method,
            request.url.replace("http://localhost:8000", ""),
            headers=request.headers,
        )
        await route.fulfill(
            status=answer.status_code, headers=dict(answer.headers), body=answer.content
        )

    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    await page.route("http://localhost:8000/**", forward)
    return errors


async def test_the_pages_in_chromium_are_accessible_in_both_languages(
    client: Client, chromium: Browser
) -> None:
    context = await chromium.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page = await context.new_page()
    errors = await _serve_through(page, client)
    await page.goto("http://localhost:8000/problems")
    await expect(page.locator("h1")).to_have_text("エラーコード一覧")
    await assert_accessible(page)
    await page.locator('a[href="/problems/no-checkup?lang=ja"]').click()
    await expect(page.locator("h1")).to_have_text(PROBLEM_TYPES["no-checkup"].title_ja)
    await assert_accessible(page)
    assert await switch_language(page) == "en"
    await expect(page.locator("h1")).to_have_text(PROBLEM_TYPES["no-checkup"].title)
    await assert_accessible(page)
    await assert_targets_large_enough(page, "header a")
    assert not errors, errors  # no CSP violation: the stylesheet loaded from our origin
    styled = await page.evaluate("getComputedStyle(document.body).fontFamily")
    assert styled, "the sign-in pages' stylesheet applies"
    await context.close()
