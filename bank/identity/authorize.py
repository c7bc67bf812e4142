"""The authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 9207) for the public apps.

authlib validates the request (client, exact redirect URI or a loopback one on any port,
response type, scope, PKCE S256). Then: nobody signed in, or the wrong kind of account, or an
operator without a second factor → the sign-in page, which comes back here; otherwise a code is
saved and the browser is sent to the app with `code`, `state` and `iss`. Redirects are 303 (never
authlib's 302, which would let a browser replay a POST). Errors that cannot be trusted to reach
the right app (unknown client, unregistered redirect URI) are shown as a page instead.

It is where a browser's sign-in (identity) meets the OAuth server (auth), so it lives in identity,
which builds on auth (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error, OAuth2Request
from litestar import Request, Response, get
from litestar.datastructures import State

from bank.auth.controllers import AUTHORIZE_PATH, build_server
from bank.auth.grants import GrantUser, account_kind_for
from bank.auth.server import BankAuthorizationServer, FormRequest, RegisteredClient, run_authlib
from bank.http.transaction import DbSession
from bank.identity.browser import CookieNames, SignedIn, current_session
from bank.identity.pages import HTML, content_security_policy, render_error
from bank.identity.totp import scopes_for_roles
from bank.logs import get_logger

log = get_logger("bank.auth")


@dataclass(frozen=True)
class SendToApp:
    location: str


@dataclass(frozen=True)
class NeedsSignIn:
    pass


@dataclass(frozen=True)
class ShowError:
    description: str


Outcome = SendToApp | NeedsSignIn | ShowError


class QueryRequest(FormRequest):
    """An authorization request: its parameters come from the query string."""

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data


def grant_user_for(signed: SignedIn | None, client: RegisteredClient) -> GrantUser | None:
    """The account this browser may authorize `client` for, if any."""
    if signed is None or signed.account.kind != account_kind_for(client.kind):
        return None
    if signed.account.kind == "operator":
        if not signed.second_factor:
            return None
        return GrantUser(
            account_id=signed.account.id,
            kind="operator",
            allowed_scopes=scopes_for_roles(signed.account.roles),
        )
    return GrantUser(account_id=signed.account.id, kind="resident")


def decide(
    server: BankAuthorizationServer,
    request: OAuth2Request,
    user_for: Callable[[RegisteredClient], GrantUser | None],
) -> Outcome:
    """Runs in a worker thread (authlib is synchronous)."""
    try:
        grant = server.get_consent_grant(request)
    except OAuth2Error as error:
        if error.redirect_uri:
            return SendToApp(_error_location(server.issuer, error))
        return ShowError(error.description or error.error)
    user = user_for(grant.request.client)
    if user is None:
        return NeedsSignIn()
    try:
        _status, _body, headers = grant.create_authorization_response(grant.redirect_uri, user)
    except OAuth2Error as error:
        error.redirect_uri = error.redirect_uri or grant.redirect_uri
        error.state = request.payload.state
        return SendToApp(_error_location(server.issuer, error))
    location = dict(headers)["Location"]
    return SendToApp(add_params_to_uri(location, [("iss", server.issuer)]))


def _error_location(issuer: str, error: OAuth2Error) -> str:
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if error.state:
        params.append(("state", error.state))
    params.append(("iss", issuer))
    return str(add_params_to_uri(error.redirect_uri, params))


@get(AUTHORIZE_PATH, operation_id="Authorize", tags=["oauth"], include_in_schema=False)
async def authorize(
    request: Request[Any, Any, Any], state: State, db_session: DbSession
) -> Response[Any]:
    issuer: str = state.settings.public_url
    params = {key: request.query_params.getall(key) for key in request.query_params}
    oauth_request = QueryRequest(
        method="GET", uri=f"{issuer}{AUTHORIZE_PATH}", headers=request.headers, form=params
    )
    names = CookieNames.for_url(issuer)
    signed = await current_session(db_session, request.cookies.get(names.session))
    server = await build_server(state, db_session)
    outcome = await run_authlib(
        decide, server, oauth_request, lambda client: grant_user_for(signed, client)
    )
    if isinstance(outcome, NeedsSignIn):
        return_to = f"{AUTHORIZE_PATH}?{request.url.query}"
        return _see_other(f"/signin?{urlencode({'return_to': return_to})}")
    if isinstance(outcome, ShowError):
        log.info("auth.authorize_refused")
        return Response(
            render_error(outcome.description),
            status_code=400,
            media_type=HTML,
            headers={"Content-Security-Policy": content_security_policy([])},
        )
    return _see_other(outcome.location)


def _see_other(location: str) -> Response[Any]:
    return Response(b"", status_code=303, headers={"Location": location})
