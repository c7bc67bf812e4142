"""What every マイページ page shares: the resident's browser session, the language, CSRF, and
rendering under the sign-in pages' standard (their layout and stylesheet, a strict CSP, no
script, no caching, nothing from another origin).

The session is the sign-in pages' cookie (bank.identity.browser): a request without a live
resident session is sent to sign in and brought back. Only residents have these pages; an
operator is sent to the account page of the sign-in pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from litestar.response import Redirect

from bank.http.transaction import DbSession
from bank.identity.browser import (
    CookieNames,
    SignedIn,
    csrf_matches,
    current_session,
)
from bank.identity.i18n import LANGUAGE_COOKIE, LANGUAGES
from bank.identity.pages import (
    ACCOUNT_PATH,
    HTML,
    IDENTITY_STATIC,
    MAX_FIELD,
    MYPAGE_PATH,
    content_security_policy,
    page_context,
)
from bank.mypage.i18n import translator

MYPAGE_STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/static/mypage"

_TEMPLATES = Environment(
    # The sign-in pages' base.html is the layout every page extends (one look, one standard).
    loader=ChoiceLoader(
        [
            FileSystemLoader(Path(__file__).parent / "templates"),
            FileSystemLoader(IDENTITY_STATIC.parent / "templates"),
        ]
    ),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)

# The page a form's answer shows, by template: its language switch leads there (a GET), not to
# the form's action. After the session ends, to the sign-in page.
_PAGE_OF_TEMPLATE = {
    "links.html": f"{MYPAGE_PATH}/links",
    "export.html": f"{MYPAGE_PATH}/export",
    "account.html": f"{MYPAGE_PATH}/account",
    "farewell.html": "/signin",
}

# (path, key of its name): the navigation, in order. Consents, provision history and points
# join it when their issues build them; no page stands in for them before.
NAVIGATION = (
    (MYPAGE_PATH, "nav_home"),
    (f"{MYPAGE_PATH}/steps", "nav_steps"),
    (f"{MYPAGE_PATH}/rides", "nav_rides"),
    (f"{MYPAGE_PATH}/checkup", "nav_checkup"),
    (f"{MYPAGE_PATH}/links", "nav_links"),
    (f"{MYPAGE_PATH}/export", "nav_export"),
    (f"{MYPAGE_PATH}/account", "nav_account"),
)


class SignInNeeded(Exception):
    """No live resident session: the controller answers with a redirect (`to_sign_in`)."""

    def __init__(self, return_to: str, *, operator: bool = False) -> None:
        super().__init__("sign in needed")
        self.return_to = return_to
        self.operator = operator


def to_sign_in(request: Request[Any, Any, Any], exc: SignInNeeded) -> Response[Any]:
    """A browser without a session goes to sign in, and comes back here after; a signed-in
    operator (these pages are residents') to the sign-in pages' account page."""
    if exc.operator:
        return Redirect(ACCOUNT_PATH, status_code=303)
    return Redirect(f"/signin?{urlencode({'return_to': exc.return_to})}", status_code=303)


@dataclass(frozen=True)
class Page:
    """One request's page settings: language, cookies, CSRF token, and the signed-in resident."""

    language: str
    cookies: CookieNames
    csrf: str
    set_csrf: bool
    set_language: bool
    switch_url: str
    path: str
    method: str
    signed: SignedIn

    @property
    def t(self) -> dict[str, str]:
        return translator(self.language)

    @property
    def secure(self) -> bool:
        return self.cookies.session.startswith("__Host-")


async def provide_page(
    request: Request[Any, Any, Any], state: State, db_session: DbSession
) -> Page:
    """The page of a signed-in resident; SignInNeeded otherwise."""
    names = CookieNames.for_url(state.settings.public_url)
    path = request.url.path
    if request.method == "POST":
        # The form is read (and refused if hostile: NUL, too large) before anything is decided,
        # as on every form route, whether or not a session comes with it.
        await request.form()
    signed = await current_session(db_session, request.cookies.get(names.session))
    if signed is None or signed.account.kind != "resident":
        # Only a page's own path comes back (never its query: nothing of the request is echoed).
        raise SignInNeeded(
            path if request.method == "GET" else MYPAGE_PATH, operator=signed is not None
        )
    context = page_context(request, state)
    return Page(
        language=context.language,
        cookies=context.cookies,
        csrf=context.csrf,
        set_csrf=context.set_csrf,
        set_language=context.set_language,
        switch_url=context.switch_url,
        path=path,
        method=request.method,
        signed=signed,
    )


# Handlers declare `page: ResidentPage` to receive the signed-in resident's page (`provide_page`).
ResidentPage: TypeAlias = NamedDependency[Page]


async def checked_form(request: Request[Any, Any, Any], page: Page) -> tuple[dict[str, str], bool]:
    """The form's fields (each cut to MAX_FIELD) and whether its CSRF token matches the cookie."""
    form = await request.form()
    fields = {key: str(form.get(key) or "")[:MAX_FIELD] for key in form}
    return fields, csrf_matches(request.cookies.get(page.cookies.csrf), fields.get("csrf"))


def render(
    page: Page,
    template: str,
    *,
    title: str,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    end_session: bool = False,
    **context: Any,
) -> Response[str]:
    """A page in the sign-in pages' layout, with the マイページ navigation (none once the
    session has ended: `end_session` also clears its cookie)."""
    t = page.t
    other = next(code for code in LANGUAGES if code != page.language)
    switch_url = page.switch_url
    if page.method != "GET":
        switch_url = f"{_PAGE_OF_TEMPLATE.get(template, MYPAGE_PATH)}?{urlencode({'lang': other})}"
    html = _TEMPLATES.get_template(template).render(
        lang=page.language,
        other_lang=other,
        switch_url=switch_url,
        t=t,
        title=t[title],
        error=t[error] if error else None,
        notice=t[notice] if notice else None,
        csrf=page.csrf,
        navigation=() if end_session else NAVIGATION,
        current=page.path,
        mypage=MYPAGE_PATH,
        static=STATIC_PATH,
        **context,
    )
    cookies = []
    if page.set_csrf:
        cookies.append(
            Cookie(
                key=page.cookies.csrf, value=page.csrf, httponly=True, secure=page.secure,
                samesite="strict", path="/",
            )
        )  # fmt: skip
    if page.set_language:
        cookies.append(
            Cookie(
                key=LANGUAGE_COOKIE, value=page.language, secure=page.secure, samesite="lax",
                path="/", max_age=365 * 24 * 3600,
            )
        )  # fmt: skip
    response = Response(
        html,
        status_code=status,
        media_type=HTML,
        cookies=cookies,
        headers={
            "Content-Security-Policy": content_security_policy([]),
            "Cache-Control": "no-store",
        },
    )
    if end_session:
        response.delete_cookie(page.cookies.session, path="/")
    return response


def see_other(path: str, notice: str | None = None) -> Response[Any]:
    """After a form: back to a page (Post/Redirect/Get), with a fixed notice key at most."""
    return Redirect(f"{path}?{urlencode({'done': notice})}" if notice else path, status_code=303)


def notice_of(request: Request[Any, Any, Any], allowed: frozenset[str]) -> str | None:
    """The notice a redirect asked for, if it is one of the page's own."""
    done = request.query_params.get("done")
    return done if done in allowed else None
