"""Native apps' loopback redirect URIs match on any port (RFC 8252 §7.3); nothing else is relaxed.

The rule is pure, so it is tested exhaustively with hypothesis; then once through the
authorization endpoint with authlib's client, as a native app listening on a fresh port would.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from hypothesis import example, given
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.auth.clients import ClientRegistry, Registration, redirect_uri_is_acceptable
from bank.auth.models import ClientKind, ClientStatus
from bank.auth.redirects import redirect_uri_matches
from tests.bank.identity.flows import committed, new_email, query_of, sign_up_and_verify
from tests.conftest import serve

_LOOPBACK_HOSTS = ["127.0.0.1", "[::1]"]
_OTHER_HOSTS = [
    "localhost",
    "127.0.0.2",
    "[::2]",
    "127.1",
    "0x7f000001",
    "2130706433",
    "[::ffff:127.0.0.1]",
    "127.0.0.1.nip.io",
    "user@127.0.0.1",
    "127.0.0.1@evil.example",
    "evil.example",
    "LOCALHOST",
]
ports = st.integers(min_value=1, max_value=65535)
optional_ports = st.none() | ports
# Path and query text as apps use them, plus characters that could confuse a parser.
_PATH_CHARS = "abcXYZ019-._~/%:@!$&'()*+,;="
paths = st.text(st.sampled_from(_PATH_CHARS), max_size=12).map(lambda text: "/" + text)
queries = st.none() | st.text(st.sampled_from(_PATH_CHARS + "?"), max_size=12)


def _uri(scheme: str, host: str, port: int | None, path: str, query: str | None) -> str:
    authority = host if port is None else f"{host}:{port}"
    return f"{scheme}://{authority}{path}" + ("" if query is None else f"?{query}")


@given(
    host=st.sampled_from(_LOOPBACK_HOSTS),
    registered_port=optional_ports,
    requested_port=ports,
    path=paths,
    query=queries,
)
@example(host="127.0.0.1", registered_port=None, requested_port=53124, path="/callback", query=None)
@example(host="[::1]", registered_port=8080, requested_port=1, path="/callback", query="a=b")
def test_any_port_matches_a_loopback_redirect(
    host: str, registered_port: int | None, requested_port: int, path: str, query: str | None
) -> None:
    registered = _uri("http", host, registered_port, path, query)
    assert redirect_uri_matches(registered, _uri("http", host, requested_port, path, query))
    assert redirect_uri_matches(registered, _uri("http", host, None, path, query))


@given(
    registered_host=st.sampled_from(_LOOPBACK_HOSTS),
    registered_port=optional_ports,
    registered_path=paths,
    registered_query=queries,
    scheme=st.sampled_from(["http", "https", "HTTP", "ftp", "jp.sapporo.bank.app"]),
    host=st.sampled_from(_LOOPBACK_HOSTS + _OTHER_HOSTS),
    port=optional_ports,
    path=paths,
    query=queries,
)
def test_only_the_port_of_a_loopback_redirect_may_change(
    registered_host: str,
    registered_port: int | None,
    registered_path: str,
    registered_query: str | None,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    query: str | None,
) -> None:
    registered = _uri("http", registered_host, registered_port, registered_path, registered_query)
    requested = _uri(scheme, host, port, path, query)
    same_but_port = (scheme, host, path, query) == (
        "http",
        registered_host,
        registered_path,
        registered_query,
    )
    assert redirect_uri_matches(registered, requested) == same_but_port


@given(
    host=st.sampled_from([*_OTHER_HOSTS, "app.example.jp"]),
    scheme=st.sampled_from(["http", "https"]),
    registered_port=optional_ports,
    port=optional_ports,
    path=paths,
)
def test_other_hosts_match_only_exactly(
    host: str, scheme: str, registered_port: int | None, port: int | None, path: str
) -> None:
    registered = _uri(scheme, host, registered_port, path, None)
    requested = _uri(scheme, host, port, path, None)
    assert redirect_uri_matches(registered, requested) == (registered == requested)


@given(registered=st.text(max_size=40), requested=st.text(max_size=40))
def test_any_two_strings_match_only_exactly_or_as_the_same_loopback_uri(
    registered: str, requested: str
) -> None:
    if redirect_uri_matches(registered, requested) and registered != requested:
        for uri in (registered, requested):
            assert uri.startswith(("http://127.0.0.1", "http://[::1]"))


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:0/callback",  # no such port
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:/callback",
        "http://127.0.0.1:8080.evil.example/callback",
        "http://127.0.0.1:8080/callback#fragment",
        "http://127.0.0.1:8080/callback/",
        "http://127.0.0.1:8080/Callback",
        "http://127.0.0.1:8080/callback?",
        "http://[::1]:8080/callback",  # the other loopback address is another registration
    ],
)
def test_near_misses_do_not_match(requested: str) -> None:
    assert not redirect_uri_matches("http://127.0.0.1/callback", requested)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8080/callback",
        "http://[::1]/callback",
        "http://[::1]:8080/callback",
    ],
)
def test_registration_accepts_loopback_redirects_with_or_without_a_port(uri: str) -> None:
    assert redirect_uri_is_acceptable(uri)


# --- through the authorization endpoint -------------------------------------------------------

REGISTERED = "http://127.0.0.1/callback"


@pytest.fixture
async def api(committing_app: Litestar) -> Any:
    async with serve(committing_app) as client:
        yield client


@pytest.fixture
async def native_app_id(engine: AsyncEngine) -> str:
    async def add(session: AsyncSession) -> str:
        registry = ClientRegistry(session)
        client = await registry.register(
            Registration(
                kind=ClientKind.RESIDENT_APP,
                name="Sapporo Health desktop",
                scopes=("records:read",),
                redirect_uris=(REGISTERED,),
            )
        )
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        return client.client_id

    return await committed(engine, add)


async def test_a_native_app_on_any_loopback_port_gets_its_code_and_token(
    api: httpx.AsyncClient, committing_app: Litestar, engine: AsyncEngine, native_app_id: str
) -> None:
    signed_up = await sign_up_and_verify(api, engine, committing_app, new_email())
    assert signed_up.status_code == 303
    redirect_uri = "http://127.0.0.1:53124/callback"  # the port the app's listener got
    async with AsyncOAuth2Client(
        client_id=native_app_id,
        token_endpoint_auth_method="none",
        redirect_uri=redirect_uri,
        scope="records:read",
        code_challenge_method="S256",
        transport=httpx2.ASGITransport(app=cast("Any", committing_app)),
    ) as oauth:
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(
            "http://127.0.0.1:8000/oauth/authorize", code_verifier=verifier
        )
        redirect = await api.get(url.removeprefix("http://127.0.0.1:8000"))
        assert redirect.status_code == 303, redirect.text
        location = redirect.headers["location"]
        assert location.startswith(f"{redirect_uri}?")
        assert query_of(location)["state"] == state
        token = await oauth.fetch_token(
            "http://127.0.0.1:8000/oauth/token",
            authorization_response=location,
            code_verifier=verifier,
        )
    assert token["access_token"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:53124/callback",
        "http://[::1]:53124/callback",
        "https://127.0.0.1:53124/callback",
        "http://127.0.0.1:53124/callback/other",
    ],
)
async def test_other_changes_to_a_loopback_redirect_stay_refused(
    api: httpx.AsyncClient, native_app_id: str, redirect_uri: str
) -> None:
    response = await api.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": native_app_id,
            "redirect_uri": redirect_uri,
            "scope": "records:read",
            "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 400  # a page on the bank, never a redirect to that URI
    assert "location" not in response.headers


async def test_the_sign_in_page_lets_a_native_app_redirect_to_its_port_of_the_day(
    api: httpx.AsyncClient, native_app_id: str
) -> None:
    """Chromium applies the sign-in page's form-action to the redirect after the POST: the
    loopback origin on today's port must be in it, as the registered one would be."""
    redirect_uri = "http://127.0.0.1:53124/callback"
    query = {
        "response_type": "code", "client_id": native_app_id, "redirect_uri": redirect_uri,
        "scope": "records:read", "state": "s", "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }  # fmt: skip
    to_sign_in = await api.get("/oauth/authorize", params=query)
    assert to_sign_in.status_code == 303
    page = await api.get(to_sign_in.headers["location"])
    policy = page.headers["content-security-policy"]
    assert "form-action 'self' http://127.0.0.1:53124;" in policy, policy
