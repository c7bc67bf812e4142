"""Server-rendered sign-in, sign-up, verification and reset pages (Japanese and English).

Every page: Jinja2 with autoescaping, a strict CSP (no scripts at all; styles from our origin;
forms may post only to us and, on pages that lead back to an app, to that app's registered
redirect URI), a CSRF double-submit token, no caching. Email addresses never travel in URLs:
between steps they ride in hidden form fields over POST.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.response import Redirect
from sqlalchemy import select

from bank.auth.controllers import AUTHORIZE_PATH
from bank.auth.models import ClientStatus, OAuthClient
from bank.auth.passwords import WeakPassword
from bank.auth.redirects import redirect_uri_matches
from bank.http.context import client_address
from bank.http.transaction import DbSession
from bank.identity.accounts import Accounts, EmailNotVerified, InvalidCode, SignInFailed
from bank.identity.browser import (
    CookieNames,
    confirm_second_factor,
    csrf_matches,
    current_session,
    end_session,
    new_csrf_token,
    start_session,
)
from bank.identity.i18n import LANGUAGE_COOKIE, LANGUAGES, choose_language, translator
from bank.identity.protect import InvalidEmail
from bank.identity.throttle import Throttles

HTML = "text/html"  # Litestar adds "; charset=utf-8" (the app's response encoding)
FORM = {"body_media_type": "application/x-www-form-urlencoded"}
ACCOUNT_PATH = "/account"
MYPAGE_PATH = "/mypage"  # the resident's own pages (bank.mypage): where /account sends a resident
MAX_FIELD = 512
IDENTITY_STATIC = Path(__file__).parent / "static"

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)


# The page a form's answer's language link leads to: that step's own page (GET) in the other
# language, its return_to kept; never the POST's path, which has no page to show (405), and
# never the address, which stays out of URLs (a page reached so asks for it again).
_PAGE_OF_TEMPLATE = {
    "signin.html": "/signin",
    "totp.html": "/signin/totp",
    "signup.html": "/signup",
    "verify.html": "/signup/verify",
    "reset.html": "/reset",
    "reset_confirm.html": "/reset/confirm",
    "message.html": "/signin",  # a reset's "done": the next step is signing in
}


def safe_return_to(value: str | None) -> str:
    """Only our own authorization endpoint, account page or マイページ: never an open redirect."""
    if not value or len(value) > 4096:
        return ACCOUNT_PATH
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//") or "\\" in value:
        return ACCOUNT_PATH
    if parts.path in {AUTHORIZE_PATH, ACCOUNT_PATH, MYPAGE_PATH}:
        return value
    if parts.path.startswith(f"{MYPAGE_PATH}/") and ".." not in parts.path.split("/"):
        return value
    return ACCOUNT_PATH


def _redirect_source(uri: str) -> str | None:
    """The CSP source expression for a redirect URI (an origin, or a private-use scheme)."""
    parts = urlsplit(uri)
    if parts.scheme in {"http", "https"} and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    if parts.scheme and "." in parts.scheme:
        return f"{parts.scheme}:"
    return None


async def _form_targets(db: DbSession, return_to: str) -> list[str]:
    """Chromium applies form-action to the redirects after a POST, so a sign-in that ends at
    the app's redirect URI must allow it; only a URI registered for that client qualifies."""
    parts = urlsplit(return_to)
    if parts.path != AUTHORIZE_PATH:
        return []
    query = parse_qs(parts.query)
    client_id = (query.get("client_id") or [""])[0]
    redirect_uri = (query.get("redirect_uri") or [""])[0]
    if not client_id or not redirect_uri:
        return []
    registered = await db.scalar(
        select(OAuthClient.redirect_uris).where(
            OAuthClient.client_id == client_id, OAuthClient.status == ClientStatus.ACTIVE.value
        )
    )
    source = _redirect_source(redirect_uri)
    # A native app's loopback redirect matches its registration on any port (RFC 8252 §7.3).
    allowed = registered and any(redirect_uri_matches(known, redirect_uri) for known in registered)
    return [source] if allowed and source else []


def content_security_policy(form_targets: list[str]) -> str:
    form_action = " ".join(["'self'", *form_targets])
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


@dataclass(frozen=True)
class PageContext:
    language: str
    cookies: CookieNames
    csrf: str
    set_csrf: bool
    set_language: bool
    switch_url: str


@dataclass(frozen=True)
class LanguageChoice:
    """The language a page is shown in, and its link to the same page in the other one."""

    language: str
    other: str
    set_language: bool  # chosen by `?lang=` just now: remember it in the cookie
    switch_url: str  # this path and query, `lang` set to the other language


def language_choice(request: Request[Any, Any, Any]) -> LanguageChoice:
    """Every page's language (bank.identity.i18n says in which order it is chosen)."""
    query_lang = request.query_params.get("lang")
    language = choose_language(
        query_lang, request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )
    other = next(code for code in LANGUAGES if code != language)
    params = {key: value for key, value in request.query_params.items() if key != "lang"}
    params["lang"] = other
    return LanguageChoice(
        language=language,
        other=other,
        set_language=query_lang in LANGUAGES,
        switch_url=f"{request.url.path}?{urlencode(params)}",
    )


def page_context(request: Request[Any, Any, Any], state: State) -> PageContext:
    """A form page's language, cookie names and CSRF token (the cookie's, or a new one)."""
    names = CookieNames.for_url(state.settings.public_url)
    choice = language_choice(request)
    existing = request.cookies.get(names.csrf)
    return PageContext(
        language=choice.language,
        cookies=names,
        csrf=existing or new_csrf_token(),
        set_csrf=existing is None,
        set_language=choice.set_language,
        switch_url=choice.switch_url,
    )


def _field(form: Any, name: str) -> str:
    value = form.get(name) or ""
    return str(value)[:MAX_FIELD]


class IdentityPages(Controller):
    include_in_schema = False  # pages for browsers, not API operations

    async def _render(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db: DbSession,
        template: str,
        *,
        title: str,
        status: int = 200,
        return_to: str = ACCOUNT_PATH,
        error: str | None = None,
        notice: str | None = None,
        **context: Any,
    ) -> Response[str]:
        page = page_context(request, state)
        t = translator(page.language)
        other = next(code for code in LANGUAGES if code != page.language)
        switch_url = page.switch_url
        if request.method != "GET":
            query = urlencode({"return_to": return_to, "lang": other})
            switch_url = f"{_PAGE_OF_TEMPLATE.get(template, '/signin')}?{query}"
        html = _TEMPLATES.get_template(template).render(
            lang=page.language,
            other_lang=other,
            switch_url=switch_url,
            t=t,
            title=t[title],
            error=t[error] if error else None,
            notice=t[notice] if notice else None,
            csrf=page.csrf,
            return_to=return_to,
            **context,
        )
        cookies = []
        secure = page.cookies.session.startswith("__Host-")
        if page.set_csrf:
            cookies.append(
                Cookie(
                    key=page.cookies.csrf, value=page.csrf, httponly=True, secure=secure,
                    samesite="strict", path="/",
                )
            )  # fmt: skip
        if page.set_language:
            cookies.append(
                Cookie(
                    key=LANGUAGE_COOKIE, value=page.language, secure=secure, samesite="lax",
                    path="/", max_age=365 * 24 * 3600,
                )
            )  # fmt: skip
        return Response(
            html,
            status_code=status,
            media_type=HTML,
            cookies=cookies,
            headers={
                "Content-Security-Policy": content_security_policy(
                    await _form_targets(db, return_to)
                ),
                "Cache-Control": "no-store",
            },
        )

    async def _checked_form(
        self, request: Request[Any, Any, Any], state: State
    ) -> tuple[dict[str, str], bool]:
        form = await request.form()
        fields = {key: _field(form, key) for key in form}
        names = CookieNames.for_url(state.settings.public_url)
        return fields, csrf_matches(request.cookies.get(names.csrf), fields.get("csrf"))

    def _accounts(self, state: State, db: DbSession) -> Accounts:
        return Accounts(db, state.account_secrets, Throttles(state.database))

    async def _replace_session(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db: DbSession,
        account_id: uuid.UUID,
    ) -> str:
        """A fresh session id on every sign-in (no fixation); the browser's old one ends."""
        names = CookieNames.for_url(state.settings.public_url)
        await end_session(db, request.cookies.get(names.session))
        return await start_session(db, account_id)

    def _signed_in_redirect(self, state: State, cookie: str, return_to: str) -> Response[Any]:
        names = CookieNames.for_url(state.settings.public_url)
        return Redirect(
            return_to,
            status_code=303,
            cookies=[
                Cookie(
                    key=names.session,
                    value=cookie,
                    httponly=True,
                    secure=names.session.startswith("__Host-"),
                    samesite="lax",
                    path="/",
                )
            ],
        )

    # -- sign-in -----------------------------------------------------------------------------

    @get("/signin")
    async def signin_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        return_to = safe_return_to(request.query_params.get("return_to"))
        return await self._render(
            request, state, db_session, "signin.html", title="signin_title",
            return_to=return_to, email="",
        )  # fmt: skip

    @post("/signin", opt=FORM, status_code=303)
    async def signin(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        if not csrf_ok:
            return await self._render(
                request, state, db_session, "signin.html", title="signin_title", status=403,
                return_to=return_to, error="csrf_failed", email="",
            )  # fmt: skip
        email = fields.get("email", "")
        address = client_address(request)
        accounts = self._accounts(state, db_session)
        try:
            account = await accounts.authenticate(email, fields.get("password", ""), address)
        except SignInFailed:
            return await self._render(
                request, state, db_session, "signin.html", title="signin_title", status=401,
                return_to=return_to, error="signin_failed", email=email,
            )  # fmt: skip
        except EmailNotVerified:
            found = await accounts.find(email)
            if found is not None:
                await accounts.send_code(found, "verify_email")
            # 200, not 4xx: the new code's mail must be committed with this response.
            return await self._render(
                request, state, db_session, "verify.html", title="verify_title",
                return_to=return_to, error="not_verified", email=email,
            )  # fmt: skip
        cookie = await self._replace_session(request, state, db_session, account.id)
        if account.kind == "operator":
            target = f"/signin/totp?{urlencode({'return_to': return_to})}"
            return self._signed_in_redirect(state, cookie, target)
        return self._signed_in_redirect(state, cookie, return_to)

    @get("/signin/totp")
    async def totp_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        return_to = safe_return_to(request.query_params.get("return_to"))
        return await self._render(
            request, state, db_session, "totp.html", title="totp_title", return_to=return_to
        )

    @post("/signin/totp", opt=FORM, status_code=303)
    async def totp(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        names = CookieNames.for_url(state.settings.public_url)
        signed = await current_session(db_session, request.cookies.get(names.session))
        if signed is None:
            return Redirect(f"/signin?{urlencode({'return_to': return_to})}", status_code=303)
        if not csrf_ok:
            return await self._render(
                request, state, db_session, "totp.html", title="totp_title", status=403,
                return_to=return_to, error="csrf_failed",
            )  # fmt: skip
        address = client_address(request)
        accounts = self._accounts(state, db_session)
        if not await accounts.second_factor(signed.account, fields.get("code", ""), address):
            return await self._render(
                request, state, db_session, "totp.html", title="totp_title", status=401,
                return_to=return_to, error="totp_failed",
            )  # fmt: skip
        await confirm_second_factor(db_session, signed.session_hash)
        return Redirect(return_to, status_code=303)

    @post("/signout", opt=FORM, status_code=303)
    async def signout(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        _, csrf_ok = await self._checked_form(request, state)
        names = CookieNames.for_url(state.settings.public_url)
        if csrf_ok:
            await end_session(db_session, request.cookies.get(names.session))
        response: Response[Any] = Redirect("/signin", status_code=303)
        response.delete_cookie(names.session, path="/")
        return response

    @get(ACCOUNT_PATH)
    async def account_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        names = CookieNames.for_url(state.settings.public_url)
        signed = await current_session(db_session, request.cookies.get(names.session))
        if signed is None:
            return Redirect(f"/signin?{urlencode({'return_to': ACCOUNT_PATH})}", status_code=303)
        if signed.account.kind == "resident":
            return Redirect(MYPAGE_PATH, status_code=303)
        return await self._render(
            request, state, db_session, "message.html", title="account_title",
            notice="signed_in_as", signed_in=True,
        )  # fmt: skip

    # -- sign-up and verification ------------------------------------------------------------

    @get("/signup")
    async def signup_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        return_to = safe_return_to(request.query_params.get("return_to"))
        return await self._render(
            request, state, db_session, "signup.html", title="signup_title",
            return_to=return_to, email="",
        )  # fmt: skip

    @post("/signup", opt=FORM, status_code=200)
    async def signup(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        email = fields.get("email", "")
        if not csrf_ok:
            return await self._render(
                request, state, db_session, "signup.html", title="signup_title", status=403,
                return_to=return_to, error="csrf_failed", email=email,
            )  # fmt: skip
        language = choose_language(
            request.query_params.get("lang"),
            request.cookies.get(LANGUAGE_COOKIE),
            request.headers.get("accept-language"),
        )
        try:
            await self._accounts(state, db_session).sign_up(
                email, fields.get("password", ""), language
            )
        except (InvalidEmail, WeakPassword) as exc:
            key = "invalid_email" if isinstance(exc, InvalidEmail) else "weak_password"
            return await self._render(
                request, state, db_session, "signup.html", title="signup_title", status=422,
                return_to=return_to, error=key, email=email,
            )  # fmt: skip
        # The same page whether the address was new or taken: the mail tells its owner which.
        return await self._render(
            request, state, db_session, "verify.html", title="verify_title",
            return_to=return_to, notice="verify_sent", email=email,
        )  # fmt: skip

    @get("/signup/verify")
    async def verify_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        """The code form as a page of its own (where a verification page's language link
        leads): the address is asked for again, as it never rides in a URL."""
        return_to = safe_return_to(request.query_params.get("return_to"))
        return await self._render(
            request, state, db_session, "verify.html", title="verify_title",
            return_to=return_to, email="",
        )  # fmt: skip

    @post("/signup/verify", opt=FORM, status_code=303)
    async def verify(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        email = fields.get("email", "")
        if not csrf_ok:
            return await self._render(
                request, state, db_session, "verify.html", title="verify_title", status=403,
                return_to=return_to, error="csrf_failed", email=email,
            )  # fmt: skip
        try:
            account = await self._accounts(state, db_session).verify_email(
                email, fields.get("code", ""), client_address(request)
            )
        except (InvalidCode, InvalidEmail):
            return await self._render(
                request, state, db_session, "verify.html", title="verify_title", status=400,
                return_to=return_to, error="code_failed", email=email,
            )  # fmt: skip
        if account.kind == "operator":
            return Redirect(f"/signin?{urlencode({'return_to': return_to})}", status_code=303)
        # The code proves the mailbox and the password was just chosen: signed in.
        cookie = await self._replace_session(request, state, db_session, account.id)
        return self._signed_in_redirect(state, cookie, return_to)

    @post("/signup/resend", opt=FORM, status_code=200)
    async def resend(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        email = fields.get("email", "")
        if csrf_ok:
            with contextlib.suppress(InvalidEmail):  # the page answers the same either way
                await self._accounts(state, db_session).resend_verification(email)
        return await self._render(
            request, state, db_session, "verify.html", title="verify_title",
            return_to=return_to, notice="verify_sent", email=email,
        )  # fmt: skip

    # -- password reset ----------------------------------------------------------------------

    @get("/reset")
    async def reset_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        return_to = safe_return_to(request.query_params.get("return_to"))
        return await self._render(
            request, state, db_session, "reset.html", title="reset_title",
            return_to=return_to, email="",
        )  # fmt: skip

    @post("/reset", opt=FORM, status_code=200)
    async def reset(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        email = fields.get("email", "")
        if not csrf_ok:
            return await self._render(
                request, state, db_session, "reset.html", title="reset_title", status=403,
                return_to=return_to, error="csrf_failed", email=email,
            )  # fmt: skip
        try:
            await self._accounts(state, db_session).request_password_reset(
                email, client_address(request)
            )
        except InvalidEmail:
            return await self._render(
                request, state, db_session, "reset.html", title="reset_title", status=422,
                return_to=return_to, error="invalid_email", email=email,
            )  # fmt: skip
        return await self._render(
            request, state, db_session, "reset_confirm.html", title="reset_title",
            return_to=return_to, notice="reset_sent", email=email,
        )  # fmt: skip

    @get("/reset/confirm")
    async def reset_confirm_page(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        """The reset code form as a page of its own, the address asked for again."""
        return_to = safe_return_to(request.query_params.get("return_to"))
        return await self._render(
            request, state, db_session, "reset_confirm.html", title="reset_title",
            return_to=return_to, email="",
        )  # fmt: skip

    @post("/reset/confirm", opt=FORM, status_code=200)
    async def reset_confirm(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        fields, csrf_ok = await self._checked_form(request, state)
        return_to = safe_return_to(fields.get("return_to"))
        email = fields.get("email", "")
        if not csrf_ok:
            return await self._render(
                request, state, db_session, "reset_confirm.html", title="reset_title",
                status=403, return_to=return_to, error="csrf_failed", email=email,
            )  # fmt: skip
        try:
            await self._accounts(state, db_session).reset_password(
                email,
                fields.get("code", ""),
                fields.get("password", ""),
                client_address=client_address(request),
            )
        except (InvalidCode, InvalidEmail):
            return await self._render(
                request, state, db_session, "reset_confirm.html", title="reset_title",
                status=400, return_to=return_to, error="code_failed", email=email,
            )  # fmt: skip
        except WeakPassword:
            return await self._render(
                request, state, db_session, "reset_confirm.html", title="reset_title",
                status=422, return_to=return_to, error="weak_password", email=email,
            )  # fmt: skip
        return await self._render(
            request, state, db_session, "message.html", title="reset_title",
            return_to=return_to, notice="reset_done", signed_in=False,
        )  # fmt: skip


def render_error(description: str) -> str:
    """A bilingual page for requests that cannot be answered by redirecting to an app."""
    return _TEMPLATES.get_template("error.html").render(
        ja=translator("ja"), en=translator("en"), description=description
    )
