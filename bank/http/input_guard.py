"""Refuse hostile input at the edge, once: NUL in paths, query strings and forms; deep,
duplicate-keyed or NUL-carrying JSON bodies (see `bank.http.json_guard`); query strings that are
not UTF-8 once percent-decoded and empty JSON bodies, which cannot be read (400, not 422: see
docs/decisions.md, "OpenAPI and errors").

PostgreSQL cannot store NUL in `text` or `jsonb`; without this, such a value travels to the
first query that uses it and fails there as a 500. Paths and query strings are checked by a
middleware; bodies where Litestar reads them (`GuardedRequest`), because that is where the JSON
is decoded, so the checks around decoding cost no second decode.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from litestar import Request
from litestar.datastructures import FormMultiDict, Headers
from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

from bank.errors import VALIDATION_FAILED, DomainError, FieldProblem
from bank.http.json_guard import (
    MalformedJson,
    MalformedQuery,
    UnstorableCharacter,
    check_body_after_decoding,
    check_body_before_decoding,
)
from bank.http.media import METHODS_WITH_BODY, announces_body, declared_media_type

JSON = RequestEncodingType.JSON.value


def _carries_nul(urlencoded: bytes) -> bool:
    # `%00` is the only way to write NUL in a query string or form; `+` and other escapes
    # decode to storable text (undecodable bytes become U+FFFD).
    return b"%00" in urlencoded or b"\x00" in urlencoded


def _is_utf8(urlencoded: bytes) -> bool:
    """Whether a query string's names and values are UTF-8 once percent-decoded (`%ff` is not:
    Litestar would quietly read it as U+FFFD, and the parameter would then be judged a value
    that breaks the schema, when it is text that cannot be read at all)."""
    try:
        unquote_to_bytes(urlencoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RepeatedParameter(DomainError):
    """A query parameter that takes one value, given more than once: the request reads, but
    breaks the schema (which says one value), so 422 rather than the first value quietly."""

    problem = VALIDATION_FAILED

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The query parameter {name} is given more than once.",
            ja=f"クエリパラメータ {name} が2回以上指定されています。",
            errors=[FieldProblem("query", name, "is given more than once")],
        )


def _repeated_single_parameter(scope: Scope) -> str | None:
    """The name of a query parameter the route takes once that the query string repeats."""
    query = scope.get("query_string", b"")
    handler = scope.get("route_handler")
    if b"&" not in query or not isinstance(handler, HTTPRouteHandler):
        return None
    names = [name for name, _ in parse_qsl(query.decode("utf-8"), keep_blank_values=True)]
    repeated = {name for name in names if names.count(name) > 1}
    if not repeated:
        return None
    for field_name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        name = kwarg.query if isinstance(kwarg, ParameterKwarg) and kwarg.query else field_name
        if name in repeated and not field.is_non_string_sequence:
            return name
    return None


def _lacks_its_json_body(scope: Scope) -> bool:
    """A request to a route that takes a JSON body, whose headers announce no body at all."""
    handler = scope.get("route_handler")
    return (
        scope.get("method") in METHODS_WITH_BODY
        and isinstance(handler, HTTPRouteHandler)
        and declared_media_type(handler) == JSON
        and not announces_body(Headers.from_scope(scope))
    )


def input_guard_middleware(app: ASGIApp) -> ASGIApp:
    """NUL in the path (path parameters) or the query string, or a query string that is not
    UTF-8: 400 before the handler runs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            if "\x00" in scope["path"]:
                raise UnstorableCharacter(
                    "The path contains NUL (%00).", ja="パスに NUL(%00)が含まれています。"
                )
            query = scope.get("query_string", b"")
            if _carries_nul(query):
                raise UnstorableCharacter(
                    "The query string contains NUL (%00).",
                    ja="クエリ文字列に NUL(%00)が含まれています。",
                )
            if (b"%" in query or not query.isascii()) and not _is_utf8(query):
                raise MalformedQuery(
                    "The query string is not UTF-8 once percent-decoded.",
                    ja="クエリ文字列がパーセントデコード後に UTF-8 になりません。",
                )
            repeated = _repeated_single_parameter(scope)
            if repeated is not None:
                raise RepeatedParameter(repeated)
            if _lacks_its_json_body(scope):
                # Litestar would read no body as a missing `data` field: a 422 naming `'data'`.
                # A body that is not there cannot be read: 400, as for bad JSON.
                raise MalformedJson(
                    "The request body is empty; this operation takes a JSON document.",
                    ja="リクエスト本文が空です。この操作には JSON 文書が必要です。",
                )
        await app(scope, receive, send)

    return middleware


class GuardedRequest(Request[Any, Any, Any]):
    """Litestar's request, checking form and JSON bodies when a handler first reads them."""

    async def json(self) -> Any:
        if self._json is not Empty or self._connection_state.json is not Empty:
            return await super().json()
        body = await self.body()
        if not body.strip():
            # Litestar would read no body as `null` and refuse it as a 422 of field `'data'`.
            raise MalformedJson(
                "The request body is empty; this operation takes a JSON document.",
                ja="リクエスト本文が空です。この操作には JSON 文書が必要です。",
            )
        skeleton = check_body_before_decoding(body)
        try:
            decoded = await super().json()
        except UnicodeDecodeError:
            # msgspec raises this (not its DecodeError) for some invalid UTF-8 inside strings,
            # and Litestar turns only DecodeError into a 400.
            raise MalformedJson(
                "The request body is not UTF-8.", ja="リクエスト本文が UTF-8 ではありません。"
            ) from None
        check_body_after_decoding(body, skeleton, decoded)
        return decoded

    async def form(self) -> FormMultiDict:
        if (
            self._form is Empty
            and self._connection_state.form is Empty
            and self.content_type[0] == RequestEncodingType.URL_ENCODED
            and _carries_nul(await self.body())
        ):
            raise UnstorableCharacter(
                "A form field contains NUL (%00).", ja="フォーム項目に NUL(%00)が含まれています。"
            )
        return await super().form()
