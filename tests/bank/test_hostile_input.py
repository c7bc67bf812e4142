"""Hostile input on every route, as every principal: a 4xx problem (or OAuth error), never a 5xx.

The routes are read from the app itself, so a new route is covered the day it is added. The
findings of issue 10 (NUL reaching PostgreSQL, JSON nested past the decoder's recursion limit,
duplicate keys) get exact answers; the cases that already passed (oversized, undecodable, NaN,
huge numbers, traversal, overlong strings) are kept passing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import Registration
from bank.auth.jwks import JwksFetcher, JwksUnavailable
from bank.auth.models import ClientKind
from bank.auth.principals import PrincipalType
from bank.http.json_guard import MAX_JSON_DEPTH
from bank.http.media import declared_media_type
from tests.bank.auth.factories import TOKEN_ENDPOINT, add_client, new_key, token_form
from tests.bank.vault.conftest import Clients, Residents, _minter, _Registrar

T = TypeVar("T")
Client = httpx.AsyncClient

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PROBLEM = "application/problem+json"
DEEP = 5_000  # far past the ~970 levels where the decoders raised RecursionError
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    media_type: str | None

    def path(self, value: str | None = None) -> str:
        """The path with every parameter set to `value` (or a well-formed one of its type)."""

        def fill(match: re.Match[str]) -> str:
            if value is not None:
                return value
            return str(uuid.uuid4()) if match.group(2) == "uuid" else "x"

        return _PARAM.sub(fill, self.template)

    @property
    def has_parameters(self) -> bool:
        return bool(_PARAM.search(self.template))


def routes_of(app: Litestar) -> list[Route]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            assert isinstance(handler, HTTPRouteHandler)
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append(Route(method, route.path, declared_media_type(handler)))
    return found


async def principals(app: Litestar, db_session: AsyncSession) -> dict[str, dict[str, str]]:
    """Headers for no token and for a valid token of each principal type, every scope held."""

    async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        result = await work(db_session)
        await db_session.commit()  # releases the savepoint: the app's requests see it
        return result

    registrar = _Registrar(write, await _minter(app, write))
    resident = await Residents(registrar, app.state.account_secrets).new()
    source = await Clients(registrar, PrincipalType.SOURCE).new()
    partner = await Clients(registrar, PrincipalType.PARTNER).new()
    console = await registrar.register(
        Registration(
            kind=ClientKind.OPERATOR_CONSOLE,
            name="Operators' console",
            scopes=("admin:clients", "admin:keys"),
            redirect_uris=("https://console.bank.example.jp/oauth/callback",),
        )
    )
    operator = registrar.minter.headers(
        PrincipalType.OPERATOR,
        subject=str(uuid.uuid4()),
        client_id=console,
        scopes=("admin:clients", "admin:keys"),
    )
    return {
        "nobody": {},
        "resident": resident.headers(),
        "source": source.headers("ingest:transit", "ingest:checkups"),
        "partner": partner.headers("partner:data"),
        "operator": operator,
    }


def assert_refused(response: httpx.Response, route: Route, *, code: str | None = None) -> None:
    """A 4xx in the route's error format; with `code`, exactly that refusal (400)."""
    where = f"{route.method} {route.template}"
    assert 400 <= response.status_code < 500, (where, response.status_code, response.text[:300])
    content_type = response.headers.get("content-type", "")
    if route.template.startswith("/oauth/"):
        body = response.json()
        assert "error" in body, (where, body)
        if code is not None:
            assert (response.status_code, body["error"]) in {
                (400, "invalid_request"),
                (401, "invalid_client"),  # inside a client assertion (RFC 7523 §3.2)
            }, (where, body)
        return
    assert content_type.startswith(PROBLEM), (where, content_type, response.text[:300])
    if code is not None:
        assert (response.status_code, response.json()["code"]) == (400, code), (
            where,
            response.text,
        )


def deep_array(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int = DEEP) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# Bodies that already failed cleanly before issue 10; they must keep doing so.
ALREADY_REFUSED_JSON = {
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
    "NaN": b'{"steps": NaN}',
    "Infinity": b'{"steps": -Infinity}',
    "1e999": b'{"steps": 1e999}',
    "10**400": b'{"steps": 1' + b"0" * 400 + b"}",
    "overlong string": b'{"name": "' + b"a" * 1_000_000 + b'"}',
    "not an object": b'"just a string"',
    "truncated": b'{"days": [',
}
ALREADY_REFUSED_FORM = {
    "invalid UTF-8": b"client_id=%ff%fe&grant_type=%ed%a0%80",
    "overlong string": b"client_id=" + b"a" * 1_000_000,
    "no equals": b"&&&=&==",
}


# --- the findings, one request each ------------------------------------------------------------


async def test_nul_in_client_id_is_refused_at_every_oauth_endpoint(client: Client) -> None:
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        response = await client.post(
            path,
            content=b"grant_type=client_credentials&token=x&client_id=%00",
            headers={"content-type": FORM},
        )
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == "invalid_request"
    response = await client.get("/oauth/authorize?response_type=code&client_id=%00")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_nul_in_an_admin_path_parameter_or_field_is_a_400_problem(
    client: Client, app: Litestar, db_session: AsyncSession
) -> None:
    operator = (await principals(app, db_session))["operator"]
    response = await client.get("/v1/admin/clients/abc%00def", headers=operator)
    assert response.json()["code"] == "unstorable-character"
    assert response.status_code == 400
    key = dict(new_key().as_dict(private=False))
    key["kid"] = "k\x00"  # inside jwks: a jsonb column
    body = {
        "kind": "partner",
        "name": "Wellness\x00KK",
        "scopes": ["partner:data"],
        "corporate_number": "7000012050002",
        "contact_email": "desk@example.jp",
        "certifications": [],
        "jwks": {"keys": [key]},
    }
    response = await client.post("/v1/admin/clients", json=body, headers=operator)
    assert (response.status_code, response.json()["code"]) == (400, "unstorable-character")
    assert "Wellness" not in response.text
    assert "desk@" not in response.text


async def test_nul_or_a_surrogate_in_a_client_assertion_is_invalid_client(
    client: Client, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    await db_session.commit()
    for overrides in (
        {"iss": "\x00", "sub": "\x00"},
        {"jti": "replay\x00-0000"},
        {"sub": "\ud800"},
    ):
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_ENDPOINT,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
            **overrides,
        }
        # Signed by the client's own key: only the claims are hostile.
        payload = json.dumps(claims).encode()  # ensure_ascii: NUL and surrogates as escapes
        signed = jws.serialize_compact({"alg": "ES256", "kid": key.kid}, payload, key)
        response = await client.post("/oauth/token", data=token_form(signed))
        assert response.status_code == 401, (overrides, response.text)
        assert response.json()["error"] == "invalid_client"


def _unsigned_assertion(payload: bytes) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(b'{"alg":"ES256","kid":"k"}')
    return f"{header}.{b64(payload)}.{b64(b'sig')}"


async def test_a_deep_or_repeating_client_assertion_is_refused_before_its_signature(
    client: Client,
) -> None:
    now = int(time.time())
    repeated = f'{{"sub":"a","sub":"b","exp":{now + 60}}}'.encode()
    for payload in (deep_array(), deep_object(), repeated):
        for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
            form = token_form(_unsigned_assertion(payload), token="x")
            response = await client.post(path, data=form)
            assert response.status_code == 401, (path, response.text)
            assert response.json()["error"] == "invalid_client"


async def test_a_deep_access_token_header_is_an_invalid_token(client: Client) -> None:
    header = base64.urlsafe_b64encode(deep_object()).rstrip(b"=").decode()
    response = await client.get(
        "/v1/me/steps", headers={"Authorization": f"Bearer {header}.e30.c2ln"}
    )
    assert response.status_code == 401
    assert response.json()["code"] != "internal-error"


async def test_json_nested_past_the_limit_is_refused_and_at_the_limit_parsed(
    client: Client, app: Litestar, db_session: AsyncSession
) -> None:
    resident = (await principals(app, db_session))["resident"]
    headers = {**resident, "content-type": JSON}
    for body in (deep_array(), deep_object(), deep_array(MAX_JSON_DEPTH + 1)):
        response = await client.post("/v1/me/steps", content=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, "json-too-deep")
    at_limit = b'{"days":' + deep_array(MAX_JSON_DEPTH - 1) + b"}"
    response = await client.post("/v1/me/steps", content=at_limit, headers=headers)
    assert (response.status_code, response.json()["code"]) == (422, "validation-failed")


async def test_a_duplicate_key_is_refused_with_its_path_and_no_value(
    client: Client, app: Litestar, db_session: AsyncSession
) -> None:
    resident = (await principals(app, db_session))["resident"]
    body = (
        b'{"days": [{"day": "2025-01-01", "steps": 1, "platform": "healthkit"},'
        b' {"day": "2025-01-02", "steps": 2, "steps" : 31337, "platform": "healthkit"}]}'
    )
    response = await client.post(
        "/v1/me/steps", content=body, headers={**resident, "content-type": JSON}
    )
    assert (response.status_code, response.json()["code"]) == (400, "duplicate-key")
    assert "$.days[1].steps" in response.json()["detail"]
    assert "31337" not in response.text


async def test_the_new_problem_codes_are_in_the_catalogue(client: Client) -> None:
    for code in ("unstorable-character", "json-too-deep", "duplicate-key"):
        response = await client.get(f"/problems/{code}")
        assert response.status_code == 200, code


# --- every route, every principal --------------------------------------------------------------


async def test_every_route_refuses_hostile_input_as_every_principal(
    client: Client, app: Litestar, db_session: AsyncSession
) -> None:
    callers = await principals(app, db_session)
    routes = routes_of(app)
    assert len(routes) > 40
    reached: dict[Route, set[str]] = {}  # which guard codes each body route answered
    for route in routes:
        for headers in callers.values():
            await _hostile_path_and_query(client, route, headers)
            if route.media_type == JSON:
                reached.setdefault(route, set()).update(await _hostile_json(client, route, headers))
            elif route.media_type == FORM:
                reached.setdefault(route, set()).update(await _hostile_form(client, route, headers))
    for route, codes in reached.items():
        # Some principal got past the guards to the body each time: the checks ran there.
        expected = (
            {"unstorable-character", "json-too-deep", "duplicate-key"}
            if route.media_type == JSON
            else {"unstorable-character"}
        )
        assert expected <= codes, (route, codes)


async def _send(
    client: Client, route: Route, path: str, headers: dict[str, str], body: bytes | None = None
) -> httpx.Response:
    if body is not None:
        headers = {**headers, "content-type": route.media_type or JSON}
    return await client.request(route.method, path, content=body, headers=headers)


async def _hostile_path_and_query(client: Client, route: Route, headers: dict[str, str]) -> None:
    response = await _send(client, route, route.path() + "?q=a%00b&x=1", headers)
    assert_refused(response, route, code="unstorable-character")
    if route.has_parameters:
        response = await _send(client, route, route.path("a%00b"), headers)
        # A typed parameter (uuid) that does not parse matches no route: 404 is right too.
        typed = {kind for _, kind in _PARAM.findall(route.template)} == {"uuid"}
        assert_refused(response, route, code=None if typed else "unstorable-character")
        for traversal in ("..%2f..%2fpyproject.toml", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"):
            response = await _send(client, route, route.path(traversal), headers)
            assert response.status_code < 500, (route, response.text[:300])
            if response.status_code >= 400:
                assert_refused(response, route)


async def _hostile_json(client: Client, route: Route, headers: dict[str, str]) -> set[str]:
    codes: set[str] = set()
    cases = {
        "deep array": deep_array(),
        "deep object": deep_object(),
        "duplicate": b'{"name": "a", "name": "b"}',
        "NUL": b'{"name": "a\\u0000b"}',
        "lone surrogate": b'{"name": "\\ud800"}',
        **ALREADY_REFUSED_JSON,
    }
    for case, body in cases.items():
        response = await _send(client, route, route.path(), headers, body)
        assert 400 <= response.status_code < 500, (route, case, response.text[:300])
        assert_refused(response, route)
        codes.add(response.json().get("code", ""))
    oversized = await _send(client, route, route.path(), headers, b" " * (3 * 1024 * 1024))
    assert oversized.status_code in {401, 403, 413}, (route, oversized.status_code)
    return codes


async def _hostile_form(client: Client, route: Route, headers: dict[str, str]) -> set[str]:
    codes: set[str] = set()
    nul_cases = [
        b"client_id=%00",
        b"grant_type=client_credentials&client_id=abc%00def&token=x",
        b"email=a%40example.jp&password=x%00y&csrf=x",
        b"x=\x00",
    ]
    for body in nul_cases:
        response = await _send(client, route, route.path(), headers, body)
        assert_refused(response, route, code="unstorable-character")
        codes.add("unstorable-character")
    for case, body in ALREADY_REFUSED_FORM.items():
        response = await _send(client, route, route.path(), headers, body)
        assert response.status_code < 500, (route, case, response.text[:300])
    oversized = await _send(client, route, route.path(), headers, b"a=" + b"b" * 3 * 1024 * 1024)
    assert oversized.status_code == 413, (route, oversized.status_code)
    return codes


# --- random strings with NUL in random fields of valid bodies ---------------------------------


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return []


def _with(value: Any, path: tuple[Any, ...], new: str) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _with(value[path[0]], path[1:], new)
    return copy


def _registration() -> dict[str, Any]:
    return {
        "kind": "partner",
        "name": "Sapporo Wellness KK",
        "scopes": ["partner:data"],
        "corporate_number": "7000012050002",
        "contact_email": "privacy-desk@wellness.example.jp",
        "certifications": [{"name": "Pマーク", "number": "17000123", "expires_on": "2099-03-31"}],
        "jwks": {"keys": [dict(new_key().as_dict(private=False))]},
    }


_BODIES: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("operator", "/v1/admin/clients"): _registration,
    ("resident", "/v1/me/steps"): lambda: {
        "days": [{"day": "2025-01-01", "steps": 1, "platform": "healthkit", "device_id": "d"}]
    },
    ("resident", "/v1/me/links"): lambda: {"kind": "transit_card", "card_number": "JE801234"},
}
_NUL_TEXT = st.builds(
    lambda before, after, escaped: f"{before}{chr(0)}{after}" if escaped else before,
    st.text(max_size=8),
    st.text(max_size=8),
    st.just(True),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_nul_anywhere_in_a_valid_body_is_refused_before_the_database(
    client: Client, app: Litestar, db_session: AsyncSession, data: st.DataObject
) -> None:
    callers = await principals(app, db_session)
    (caller, path), make = data.draw(st.sampled_from(sorted(_BODIES.items())), label="route")
    body = make()
    where = data.draw(st.sampled_from(_string_paths(body)), label="field")
    hostile = _with(body, where, data.draw(_NUL_TEXT, label="text"))
    response = await client.post(
        path, content=json.dumps(hostile), headers={**callers[caller], "content-type": JSON}
    )
    assert (response.status_code, response.json()["code"]) == (400, "unstorable-character")


# --- JSON the bank fetches ----------------------------------------------------------------------


async def test_a_deep_or_repeating_jwks_document_is_unavailable_not_a_crash() -> None:
    """A partner's jwks_uri is a URL outside the bank: its document gets the same checks."""
    documents = [b'{"keys": ' + deep_array() + b"}", b'{"keys": [], "keys": []}']
    served = iter(documents)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = next(served)
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for _ in documents:
            with pytest.raises(JwksUnavailable):
                await JwksFetcher().fetch(f"http://127.0.0.1:{port}/jwks.json")
