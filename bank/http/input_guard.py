"""Refuse hostile input at the edge, once: NUL in paths, query strings and forms; deep,
duplicate-keyed or NUL-carrying JSON bodies (see `bank.http.json_guard`).

PostgreSQL cannot store NUL in `text` or `jsonb`; without this, such a value travels to the
first query that uses it and fails there as a 500. Paths and query strings are checked by a
middleware; bodies where Litestar reads them (`GuardedRequest`), because that is where the JSON
is decoded, so the checks around decoding cost no second decode.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.enums import RequestEncodingType, ScopeType
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

from bank.http.json_guard import (
    MalformedJson,
    UnstorableCharacter,
    check_body_after_decoding,
    check_body_before_decoding,
)


def _carries_nul(urlencoded: bytes) -> bool:
    # `%00` is the only way to write NUL in a query string or form; `+` and other escapes
    # decode to storable text (undecodable bytes become U+FFFD).
    return b"%00" in urlencoded or b"\x00" in urlencoded


def input_guard_middleware(app: ASGIApp) -> ASGIApp:
    """NUL in the path (path parameters) or the query string: 400 before the handler runs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            if "\x00" in scope["path"]:
                raise UnstorableCharacter("The path contains NUL (%00).")
            if _carries_nul(scope.get("query_string", b"")):
                raise UnstorableCharacter("The query string contains NUL (%00).")
        await app(scope, receive, send)

    return middleware


class GuardedRequest(Request[Any, Any, Any]):
    """Litestar's request, checking form and JSON bodies when a handler first reads them."""

    async def json(self) -> Any:
        if self._json is not Empty or self._connection_state.json is not Empty:
            return await super().json()
        body = await self.body()
        skeleton = check_body_before_decoding(body)
        try:
            decoded = await super().json()
        except UnicodeDecodeError:
            # msgspec raises this (not its DecodeError) for some invalid UTF-8 inside strings,
            # and Litestar turns only DecodeError into a 400.
            raise MalformedJson("The request body is not UTF-8.") from None
        check_body_after_decoding(body, skeleton, decoded)
        return decoded

    async def form(self) -> FormMultiDict:
        if (
            self._form is Empty
            and self._connection_state.form is Empty
            and self.content_type[0] == RequestEncodingType.URL_ENCODED
            and _carries_nul(await self.body())
        ):
            raise UnstorableCharacter("A form field contains NUL (%00).")
        return await super().form()
