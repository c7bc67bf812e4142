"""A resident's records pushed as the app and the sources push them, and a browser's sign-in,
for the pages' tests (httpx and Chromium alike)."""

from __future__ import annotations

import re
from datetime import date

import httpx

from tests.bank.identity.flows import post_form
from tests.bank.vault.conftest import Bearer, ClientPrincipal, Resident
from tests.bank.vault.test_sources_api import (
    CHECKUPS,
    checkup,
    link_card,
    link_member,
    push_taps,
    ride,
)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
MEMBER = "1234-567"


async def sign_in(client: httpx.AsyncClient, resident: Resident, path: str = "/mypage") -> None:
    """Sign in on the sign-in pages (the browser session's cookie stays in the client)."""
    response = await post_form(
        client, "/signin",
        {"email": resident.email, "password": resident.password, "return_to": path},
    )  # fmt: skip
    assert response.status_code == 303, response.text
    assert response.headers["location"] == path


def csrf_in(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


async def push_steps(
    client: httpx.AsyncClient, resident: Bearer, days: dict[date, int], platform: str
) -> None:
    items = [
        {"day": day.isoformat(), "steps": steps, "platform": platform, "method": "automatic"}
        for day, steps in days.items()
    ]
    response = await client.post("/v1/me/steps/", json={"days": items}, headers=resident.headers())
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == len(items), response.text


async def ride_days(
    client: httpx.AsyncClient, resident: Resident, subway: ClientPrincipal, card: str,
    days: list[date], *, link: bool = True,
) -> None:  # fmt: skip
    """A ride N07 → N13 (entry and exit) on each day, pushed by the subway's feed."""
    if link:
        await link_card(client, resident, card)
    taps = [tap for n, day in enumerate(days) for tap in ride(card, day, n)]
    result = await push_taps(client, subway, taps)
    assert {r["outcome"] for r in result["results"]} == {"stored"}, result


async def send_checkup(
    client: httpx.AsyncClient, resident: Resident, insurer: ClientPrincipal, day: date,
    **values: float | str,
) -> None:  # fmt: skip
    await link_member(client, resident, MEMBER)
    body = {"checkups": [checkup(MEMBER, f"E{day:%Y%m%d}", day, **values)]}
    response = await client.post(CHECKUPS, json=body, headers=insurer.headers("ingest:checkups"))
    assert response.status_code == 200, response.text
    assert [r["outcome"] for r in response.json()["results"]] == ["stored"], response.text
