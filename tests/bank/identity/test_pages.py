"""Sign-up, verification, sign-in, reset and throttling through the server-rendered pages.

These requests commit for real (`committing_client`): throttle counters and code attempts are
written in their own transactions while the failing request rolls back, as in production.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.identity.models import Account, SignInThrottle
from bank.identity.throttle import ACCOUNT_BLOCK_EVERY, ACCOUNT_LOCK_AFTER
from tests.bank.identity.flows import (
    PASSWORD,
    committed,
    mail_to,
    new_email,
    post_form,
    sign_up_and_verify,
)


async def _account(engine: AsyncEngine, app: Litestar, email: str) -> Account | None:
    index = app.state.account_secrets.email_index(email)

    async def find(session: AsyncSession) -> Account | None:
        found: Account | None = await session.scalar(
            select(Account).where(Account.email_index == index)
        )
        return found

    return await committed(engine, find)


async def _sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await post_form(
        client, "/signin", {"email": email, "password": password, "return_to": "/account"}
    )


async def test_sign_up_verify_and_sign_in(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    email = new_email()
    verified = await sign_up_and_verify(committing_client, engine, committing_app, email)
    assert verified.status_code == 303
    assert verified.headers["location"] == "/account"
    account = await _account(engine, committing_app, email)
    assert account is not None
    assert account.email_verified_at is not None
    assert email.encode() not in account.email_sealed  # stored sealed, found by blind index

    committing_client.cookies.clear()
    signed_in = await _sign_in(committing_client, email)
    assert signed_in.status_code == 303
    assert "bank_session" in signed_in.cookies
    page = await committing_client.get("/account")
    assert page.status_code == 303
    assert page.headers["location"] == "/mypage"  # a resident's account page is マイページ
    assert (await committing_client.get("/mypage")).status_code == 200

    # Signing in again issues a new session id and ends the old one (no session fixation).
    old = signed_in.cookies["bank_session"]
    again = await _sign_in(committing_client, email)
    assert again.cookies["bank_session"] != old
    committing_client.cookies.set("bank_session", old)
    stale = await committing_client.get("/account")
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/signin")


async def test_sign_in_before_verification_asks_for_the_code(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    email = new_email()
    await post_form(committing_client, "/signup", {"email": email, "password": PASSWORD})
    response = await _sign_in(committing_client, email)
    assert response.status_code == 200
    assert 'action="/signup/verify"' in response.text
    assert "bank_session" not in response.cookies
    # A fresh code was mailed with that answer, and it works.
    code = (await mail_to(engine, committing_app, email, "verify_email")).payload["code"]
    verified = await post_form(committing_client, "/signup/verify", {"email": email, "code": code})
    assert verified.status_code == 303


async def test_sign_up_does_not_reveal_existing_accounts(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    email = new_email()
    await sign_up_and_verify(committing_client, engine, committing_app, email)
    fresh = await post_form(
        committing_client, "/signup", {"email": new_email(), "password": PASSWORD}
    )
    taken = await post_form(committing_client, "/signup", {"email": email, "password": PASSWORD})
    assert taken.status_code == fresh.status_code == 200

    def strip(text: str) -> str:  # the pages differ only in the echoed address and token
        return "".join(line for line in text.splitlines() if "value=" not in line)

    assert strip(taken.text) == strip(fresh.text)
    # The owner learns by mail that someone tried to register the address again.
    assert (await mail_to(engine, committing_app, email, "account_exists")).recipient == email


async def test_wrong_code_is_refused_and_attempts_are_limited(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    email = new_email()
    await post_form(committing_client, "/signup", {"email": email, "password": PASSWORD})
    code = (await mail_to(engine, committing_app, email, "verify_email")).payload["code"]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        refused = await post_form(
            committing_client, "/signup/verify", {"email": email, "code": wrong}
        )
        assert refused.status_code == 400
        assert "コードが正しくない" in refused.text
    # Five wrong guesses spend the code: even the right one no longer works.
    late = await post_form(committing_client, "/signup/verify", {"email": email, "code": code})
    assert late.status_code == 400


async def test_forms_without_the_csrf_token_are_refused(
    committing_client: httpx.AsyncClient,
) -> None:
    await committing_client.get("/signin")  # has the cookie, but the form lacks the field
    response = await committing_client.post(
        "/signin", data={"email": new_email(), "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 403
    assert "bank_session" not in response.cookies


async def test_failed_sign_ins_get_one_answer_for_every_cause(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    email = new_email()
    await sign_up_and_verify(committing_client, engine, committing_app, email)
    committing_client.cookies.clear()
    wrong_password = await _sign_in(committing_client, email, "not the password at all")
    unknown_email = await _sign_in(committing_client, new_email())
    malformed = await _sign_in(committing_client, "not-an-email")
    texts = set()
    for response in (wrong_password, unknown_email, malformed):
        assert response.status_code == 401
        texts.add(response.text.split('role="alert"')[1].split("</div>")[0])
    assert len(texts) == 1


async def test_brute_force_is_throttled_then_locked_and_the_owner_can_reset(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    email = new_email()
    await sign_up_and_verify(committing_client, engine, committing_app, email)
    committing_client.cookies.clear()
    for _ in range(ACCOUNT_BLOCK_EVERY):
        assert (await _sign_in(committing_client, email, "guess guess guess")).status_code == 401
    # Blocked: even the right password is refused, with the same message.
    assert (await _sign_in(committing_client, email)).status_code == 401

    # Drive the counter to the lock (the block window is lifted by hand between rounds, as
    # 15 minutes passing would).
    index = committing_app.state.account_secrets.email_index(email)

    async def lift_block(session: AsyncSession) -> None:
        row = await session.scalar(
            select(SignInThrottle).where(SignInThrottle.key == f"account:{index}")
        )
        assert row is not None
        row.locked_until = None

    while True:
        await committed(engine, lift_block)
        await _sign_in(committing_client, email, "guess guess guess")
        account = await _account(engine, committing_app, email)
        assert account is not None
        if account.status == "locked":
            break
    throttle = await committed(
        engine,
        lambda s: s.scalar(select(SignInThrottle).where(SignInThrottle.key == f"account:{index}")),
    )
    assert throttle is not None
    assert throttle.failures == ACCOUNT_LOCK_AFTER
    await committed(engine, lift_block)
    assert (await _sign_in(committing_client, email)).status_code == 401  # locked

    # The owner resets by mail and signs in again; the lock and the counter are gone.
    sent = await post_form(committing_client, "/reset", {"email": email}, page="/reset")
    assert sent.status_code == 200
    code = (await mail_to(engine, committing_app, email, "reset_password")).payload["code"]
    new_password = "a brand new passphrase 2026"
    done = await post_form(
        committing_client,
        "/reset/confirm",
        {"email": email, "code": code, "password": new_password},
        page="/reset",
    )
    assert done.status_code == 200, done.text
    assert (await _sign_in(committing_client, email, PASSWORD)).status_code == 401
    assert (await _sign_in(committing_client, email, new_password)).status_code == 303


async def test_reset_request_does_not_reveal_accounts(
    committing_client: httpx.AsyncClient,
) -> None:
    unknown = await post_form(committing_client, "/reset", {"email": new_email()}, page="/reset")
    assert unknown.status_code == 200
    assert 'action="/reset/confirm"' in unknown.text


async def test_weak_password_is_refused_on_sign_up(committing_client: httpx.AsyncClient) -> None:
    response = await post_form(
        committing_client, "/signup", {"email": new_email(), "password": "password1234"}
    )
    assert response.status_code == 422
    assert "このパスワードは使えません" in response.text


@pytest.mark.parametrize(
    ("accept_language", "query", "expected"),
    [
        ("en-US,en;q=0.9", "", 'lang="en"'),
        ("ja,en;q=0.5", "", 'lang="ja"'),
        ("fr", "", 'lang="ja"'),
        ("en", "?lang=ja", 'lang="ja"'),
    ],
)
async def test_language_follows_accept_language_and_the_switch(
    client: httpx.AsyncClient, accept_language: str, query: str, expected: str
) -> None:
    page = await client.get(f"/signin{query}", headers={"Accept-Language": accept_language})
    assert f"<html {expected}>" in page.text


async def test_pages_carry_a_strict_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/signin")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # no scripts at all
    assert "form-action 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    csrf_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in csrf_cookie
    assert "SameSite=strict" in csrf_cookie or "SameSite=Strict" in csrf_cookie


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/signout",
        "javascript:alert(1)",
        "/mypagex",
        "/mypage/../signout",
        "https://evil.example/mypage",
    ],
)
async def test_return_to_never_leaves_the_bank(client: httpx.AsyncClient, target: str) -> None:
    page = await client.get("/signin", params={"return_to": target})
    assert 'name="return_to" value="/account"' in page.text


async def test_a_password_reset_ends_every_signed_in_browser(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    # Whoever knew the old password and signed in with it must not stay signed in.
    email = new_email()
    await sign_up_and_verify(committing_client, engine, committing_app, email)
    committing_client.cookies.clear()
    assert (await _sign_in(committing_client, email)).status_code == 303
    old_browser = committing_client.cookies["bank_session"]
    assert (await committing_client.get("/account")).headers["location"].startswith("/mypage")

    committing_client.cookies.clear()
    sent = await post_form(committing_client, "/reset", {"email": email}, page="/reset")
    assert sent.status_code == 200
    code = (await mail_to(engine, committing_app, email, "reset_password")).payload["code"]
    reset = {"email": email, "code": code, "password": "a brand new passphrase 2026"}
    done = await post_form(committing_client, "/reset/confirm", reset, page="/reset")
    assert done.status_code == 200, done.text

    committing_client.cookies.clear()
    committing_client.cookies.set("bank_session", old_browser)
    ended = await committing_client.get("/account")
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/signin")


_SWITCH = re.compile(r'<nav aria-label="[^"]*">\s*<a href="([^"]+)" lang="(\w+)"')


def _language_link(page: httpx.Response) -> tuple[str, str]:
    """The header's language link of a page: where it leads, and the language it names."""
    match = _SWITCH.search(page.text)
    assert match is not None, "the page has no language link"
    return html.unescape(match.group(1)), match.group(2)


async def test_every_forms_answer_links_to_its_own_step_in_the_other_language(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    """A form's answer has no page of its own: its language link leads to the same step's
    page (never the POST's path, which would answer 405), keeps where the resident was going,
    and carries no address."""
    client, email, back = committing_client, new_email(), "/mypage"

    async def answer(path: str, **fields: str) -> httpx.Response:
        return await post_form(client, path, {**fields, "return_to": back})

    signed_up = await answer("/signup", email=email, password=PASSWORD)
    code = (await mail_to(engine, committing_app, email, "verify_email")).payload["code"]
    wrong = "000000" if code != "000000" else "111111"
    answers = {
        "/signup/verify": [
            signed_up,
            await answer("/signup/resend", email=email),
            await answer("/signup/verify", email=email, code=wrong),
            await answer("/signin", email=email, password=PASSWORD),  # unverified: the code
        ],
        "/signup": [await answer("/signup", email="no-at-sign", password=PASSWORD)],
        "/reset/confirm": [
            await answer("/reset", email=email),
            await answer("/reset/confirm", email=email, code=wrong, password=PASSWORD),
        ],
    }
    reset = (await mail_to(engine, committing_app, email, "reset_password")).payload["code"]
    answers["/signin"] = [
        await answer("/signin", email=email, password="not the password at all"),
        # The reset done: what comes next is signing in.
        await answer("/reset/confirm", email=email, code=reset, password=f"{PASSWORD} anew!"),
    ]
    for step, pages in answers.items():
        for page in pages:
            assert page.text.startswith('<!doctype html>\n<html lang="ja">'), page.text[:80]
            link, language = _language_link(page)
            assert language == "en"
            assert email not in link  # no address in a URL
            assert "%40" not in link
            assert urlsplit(link).path == step, link
            assert parse_qs(urlsplit(link).query) == {"return_to": [back], "lang": ["en"]}
            shown = await client.get(link)
            assert shown.status_code == 200, (link, shown.text)
            assert '<html lang="en">' in shown.text
            assert f'name="return_to" value="{back}"' in shown.text
            await client.get("/signin?lang=ja")  # back to Japanese for the next answer


async def test_the_code_is_accepted_on_the_page_the_language_link_leads_to(
    committing_client: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine
) -> None:
    """Reached without the address (it never rides in a URL), the code page asks for it."""
    client, email = committing_client, new_email()
    answer = await post_form(
        client, "/signup", {"email": email, "password": PASSWORD, "return_to": "/mypage"}
    )
    link, _ = _language_link(answer)
    page = await client.get(link)
    assert '<input id="email" name="email" type="email"' in page.text
    assert 'action="/signup/resend"' not in page.text  # a resend needs the address: not here
    code = (await mail_to(engine, committing_app, email, "verify_email")).payload["code"]
    verified = await post_form(
        client, "/signup/verify", {"email": email, "code": code, "return_to": "/mypage"},
        page=link,
    )  # fmt: skip
    assert verified.status_code == 303, verified.text
    assert verified.headers["location"] == "/mypage"
    # The reset's code page, likewise.
    reset = await client.get("/reset/confirm?lang=en")
    assert reset.status_code == 200
    assert '<input id="email" name="email" type="email"' in reset.text
    assert 'name="code"' in reset.text
    assert 'name="password"' in reset.text


async def _sign_in_to(
    client: httpx.AsyncClient, email: str, password: str, return_to: str
) -> httpx.Response:
    return await post_form(
        client, "/signin", {"email": email, "password": password, "return_to": return_to}
    )
