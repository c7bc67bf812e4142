"""What the browser tests share: Debian's Chromium driven by Playwright (skipped, or failed under
CI, when it is missing), the app served over real HTTP on loopback, a phone's browser that
records any request to a third party and any console error, and axe-core (the copy the
`axe-playwright-python` package installs, never a download) with the 44 px target check.

The `chromium` fixture reaches every test under tests/bank through tests/bank/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import pytest
import uvicorn
from litestar import Litestar
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.system_deps import require_chromium

PHONE: ViewportSize = {
    "width": 390,
    "height": 844,
}  # the city's app shows these pages in a phone's web view
AXE = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
# Buttons, and links that stand alone (navigation, lists of pages, the header): ≥ 44 px tall.
TARGETS = "button, header a, ul.pages a"
MYPAGE_TARGETS = "button, a.button, nav a, ul.pages a, summary, p > a:only-child, header a"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(app: Litestar, port: int) -> AsyncIterator[str]:
    """The app over real HTTP at the URL yielded; its lifespan is already running (`serve`)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    executable = await asyncio.to_thread(require_chromium)  # skipped, or failed under CI
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        await browser.close()


async def phone(
    chromium: Browser, locale: str, *, address: str | None = None
) -> tuple[BrowserContext, Page]:
    """A phone's browser (downloads allowed) and its first tab; `assert_no_strays` reads back
    any request it made to somewhere other than the bank and any console error of its tabs.

    `address`: the phone's own client address, as a load balancer in front (a trusted proxy on
    127.0.0.1) would name it in X-Forwarded-For, so that the sign-in throttles' counters which
    other tests leave on 127.0.0.1 never block this phone (tests.bank.identity.flows.new_address).
    """
    headers = {"X-Forwarded-For": address} if address else None
    context = await chromium.new_context(
        locale=locale, viewport=PHONE, accept_downloads=True, extra_http_headers=headers
    )
    strays: list[str] = []
    # Every request the pages make goes to the bank: no CDN, no third party.
    context.on("request", lambda r: strays.append(r.url) if "127.0.0.1" not in r.url else None)

    def watch(page: Page) -> None:
        # Console errors: a CSP violation is one ("Refused to ..."); an answer's status is not.
        page.on(
            "console",
            lambda m: (
                strays.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )

    context.on("page", watch)
    page = await context.new_page()
    context.set_default_timeout(15_000)
    setattr(context, "strays", strays)  # noqa: B010 - read back by assert_no_strays
    return context, page


def assert_no_strays(context: BrowserContext) -> None:
    strays: list[str] = getattr(context, "strays")  # noqa: B009
    assert not strays, strays  # no request elsewhere, no CSP violation in the console


async def assert_accessible(page: Page) -> None:
    """axe-core finds no violation on the page as it stands (every rule axe runs by default),
    once it has loaded (its stylesheets applied: contrast is judged on what a person sees)."""
    await page.wait_for_load_state("load")
    await page.evaluate(AXE)
    results: dict[str, Any] = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']})"
    )
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(", ".join(node["target"]) for node in v["nodes"])
        for v in results["violations"]
    ]
    assert not violations, f"{page.url}:\n" + "\n".join(violations)


async def assert_targets_large_enough(page: Page, selector: str = TARGETS) -> None:
    """Every element `selector` matches is at least 44 px tall."""
    small: list[str] = await page.evaluate(
        """selector => [...document.querySelectorAll(selector)]
              .filter(e => e.getBoundingClientRect().height < 44)
              .map(e => e.outerHTML.slice(0, 80))""",
        selector,
    )
    assert not small, f"{page.url}: {small}"


async def switch_language(page: Page) -> str:
    """Follow the page's language link (in its header); returns the language now shown."""
    before = await page.get_attribute("html", "lang") or ""
    await page.locator("header nav a").click()
    await expect(page.locator("html")).not_to_have_attribute("lang", before)
    return await page.get_attribute("html", "lang") or ""


async def check_both_languages(
    page: Page,
    *,
    targets: str | None = TARGETS,
    back: bool = False,
    each: Callable[[Page], Awaitable[None]] | None = None,
) -> None:
    """axe (and the target sizes, unless `targets` is None, and `each`, if given) on the page,
    then on the same page in the other language, reached by its language link; `back`: then
    the link again, so the page is left in the language it was found in."""
    for turn in range(2):
        await assert_accessible(page)
        if targets is not None:
            await assert_targets_large_enough(page, targets)
        if each is not None:
            await each(page)
        if turn == 0 or back:
            await switch_language(page)
