"""Swagger UI at /docs, served by us, whose Authorize button can obtain a token.

The OAuth 2 scheme's authorization code flow runs with PKCE (S256) and, in development, with the
demo residents' app filled in: its client_id (read from the database at start-up, `demo_client`)
and its scopes. The code comes back to Swagger UI's own oauth2-redirect.html under /docs, which
the demo app has as a redirect in development (`bank.demo.accounts.demo_app_redirects`). A token
obtained elsewhere (the README's curl) can be pasted into the bearer field instead.
"""

from __future__ import annotations

import copy
from typing import Any

from litestar import Request
from litestar.openapi.plugins import SwaggerRenderPlugin

from bank.demo.accounts import DEMO_APP_SCOPES, SWAGGER_REDIRECT_PATH

DEMO_CLIENT_STATE = "demo_client_id"  # app.state key: the demo app's client_id, in development


class SwaggerUI(SwaggerRenderPlugin):
    """Swagger UI with PKCE, the demo app's client_id (when there is one) and scopes preset."""

    def __init__(self, *, public_url: str, **kwargs: Any) -> None:
        super().__init__(oauth2_redirect_url=f"{public_url}{SWAGGER_REDIRECT_PATH}", **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        init: dict[str, Any] = {"usePkceWithAuthorizationCodeGrant": True}
        client_id = request.app.state.get(DEMO_CLIENT_STATE)
        if isinstance(client_id, str):
            init |= {"clientId": client_id, "scopes": " ".join(DEMO_APP_SCOPES)}
        page = copy.copy(self)  # one plugin serves every request: never change it in place
        page.init_oauth = init
        return SwaggerRenderPlugin.render(page, request, openapi_schema)
