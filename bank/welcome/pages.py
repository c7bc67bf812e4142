"""The landing page (`/`) and, in development, the page the demo app's code lands on and the
mail sink (the outbox's unsent mail, opened through the outbox's own functions).

Both render in the sign-in pages' layout and under their standard: Jinja2 with autoescaping,
their stylesheet, the same CSP (no script at all, styles from our origin), Japanese and English
with the same switch, no caching. The development pages answer 404 in any other environment.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler

from bank.auth.controllers import AUTHORIZE_PATH, TOKEN_PATH
from bank.demo.accounts import DEV_CALLBACK_PATH, demo_accounts
from bank.http.transaction import DbSession
from bank.identity.i18n import LANGUAGE_COOKIE
from bank.identity.outbox import unsent_mail
from bank.identity.pages import IDENTITY_STATIC, content_security_policy, language_choice
from bank.identity.settings import IdentitySettings
from bank.welcome.i18n import translator
from bank.welcome.repository import clients_redirecting_to

WELCOME_STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/static/welcome"
MAX_SHOWN = 512  # longest query value a page repeats back
MAIL_SHOWN = 20  # the mail sink shows the newest mail only
DEV_MAIL_PATH = "/dev/mail"

_TEMPLATES = Environment(
    # The sign-in pages' base.html is the layout (one look, one standard).
    loader=ChoiceLoader(
        [
            FileSystemLoader(Path(__file__).parent / "templates"),
            FileSystemLoader(IDENTITY_STATIC.parent / "templates"),
        ]
    ),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)


def development_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the page exists in development only; elsewhere it is an ordinary 404."""
    if connection.app.state.settings.environment != "development":
        raise NotFoundException()


def _render(
    request: Request[Any, Any, Any], state: State, template: str, *, title: str, **context: Any
) -> Response[str]:
    choice = language_choice(request)
    language = choice.language
    t = translator(language)
    html = _TEMPLATES.get_template(template).render(
        lang=language,
        other_lang=choice.other,
        switch_url=choice.switch_url,
        t=t,
        title=t[title],
        error=None,
        notice=None,
        static=STATIC_PATH,
        **context,
    )
    cookies = []
    if choice.set_language:
        cookies.append(
            Cookie(
                key=LANGUAGE_COOKIE, value=language, samesite="lax", path="/",
                secure=state.settings.public_url.startswith("https://"), max_age=365 * 24 * 3600,
            )
        )  # fmt: skip
    return Response(
        html,
        media_type=MediaType.HTML,  # Litestar adds the charset (utf-8)
        cookies=cookies,
        headers={
            "Content-Security-Policy": content_security_policy([]),
            "Cache-Control": "no-store",
        },
    )


def _shown(request: Request[Any, Any, Any], name: str) -> str | None:
    value = request.query_params.get(name)
    return value[:MAX_SHOWN] if value else None


class WelcomePages(Controller):
    include_in_schema = False  # pages for browsers, not API operations

    @get("/")
    async def landing(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        development = state.settings.environment == "development"
        demo = await demo_accounts(db_session, state.account_secrets) if development else None
        return _render(
            request, state, "landing.html", title="welcome_title",
            development=development, demo=demo, authorize=AUTHORIZE_PATH,
        )  # fmt: skip

    @get(DEV_CALLBACK_PATH, guards=[development_only])
    async def callback(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        """Where the demo app's redirect lands: the code, and the token request to make."""
        # The bank as this browser reached it: a loopback redirect may use any port.
        base = str(request.base_url).rstrip("/")
        redirect_uri = f"{base}{DEV_CALLBACK_PATH}"
        clients = await clients_redirecting_to(db_session, redirect_uri)
        month = (state.settings.local_today() - timedelta(days=1)).strftime("%Y-%m")
        code, error = _shown(request, "code"), _shown(request, "error")
        return _render(
            request, state, "callback.html",
            title="callback_error_title" if error or not code else "callback_title",
            code=code, state_value=_shown(request, "state"), iss=_shown(request, "iss"),
            error_code=error, error_description=_shown(request, "error_description"),
            token_url=f"{base}{TOKEN_PATH}", redirect_uri=redirect_uri,
            client_id=clients[0] if len(clients) == 1 else "YOUR_CLIENT_ID",
            api_url=f"{base}/v1/me/steps/summary?month={month}",
        )  # fmt: skip

    @get(DEV_MAIL_PATH, guards=[development_only])
    async def mail(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[str]:
        """The development mail sink: the mail the bank would have sent, newest first."""
        mails = await unsent_mail(db_session, state.account_secrets, newest=MAIL_SHOWN)
        section = state.sections.get("identity")
        smtp = isinstance(section, IdentitySettings) and section.smtp_host is not None
        return _render(
            request, state, "dev_mail.html", title="mail_title", mails=mails[::-1], smtp=smtp
        )
