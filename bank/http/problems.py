"""The one translator from exceptions to RFC 9457 problem+json responses.

Bodies carry a stable `type` (`/problems/<code>`, documented at that path), a human `detail`, the
request id and, for validation, the location and JSON path of each bad field. They never echo
submitted values, internal messages or stack traces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from bank.crypto.provider import KeyProviderError
from bank.errors import (
    KEY_PROVIDER_RETRY_AFTER_S,
    KEY_PROVIDER_UNAVAILABLE,
    PROBLEM_TYPES,
    DomainError,
    Language,
    ProblemType,
)
from bank.http.context import request_id, route_template
from bank.http.json_guard import InputRefused
from bank.http.language import preferred_language
from bank.logs import get_logger, safe_traceback

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = get_logger("bank.http")

_CODE_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    500: "internal-error",
    503: "service-unavailable",
}
# msgspec reports where a value failed as "... - at `$.items[0].steps`".
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)


class FieldError(msgspec.Struct, frozen=True):
    location: str
    path: str
    detail: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: list[FieldError] | None = None


def problem_type_uri(code: str) -> str:
    return f"/problems/{code}"


def _problem_for_status(status: int) -> ProblemType:
    code = _CODE_BY_STATUS.get(status)
    if code is not None:
        return PROBLEM_TYPES[code]
    return ProblemType(f"http-{status}", status, f"HTTP {status}", "See the detail member.")


def problem_body(
    problem: ProblemType,
    *,
    detail: str,
    rid: str,
    status: int | None = None,
    errors: list[FieldError] | None = None,
    language: Language = "en",
) -> Problem:
    return Problem(
        type=problem_type_uri(problem.code),
        title=problem.title_in(language),
        status=status or problem.status,
        detail=detail,
        code=problem.code,
        request_id=rid,
        errors=errors,
    )


def problem_response(body: Problem, *, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(
        content=body,
        status_code=body.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers or {},
    )


def _field_errors(exc: ValidationException) -> list[FieldError]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    found: list[FieldError] = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        raw_source = item.get("source") or "body"
        # Litestar gives query/path/header sources as ParamType enum members.
        source = str(getattr(raw_source, "value", raw_source))
        message, path = _split_msgspec_message(str(item.get("message", "invalid value")))
        if path is None:
            path = _body_path(str(item.get("key") or "")) if source == "body" else item.get("key")
            path = str(path or "")
        missing = _MISSING_FIELD.search(message)
        if missing and source == "body":
            path = f"{path}.{missing.group(1)}"
        found.append(FieldError(location=source, path=path, detail=message))
    return found


def _body_path(key: str) -> str:
    """Litestar reports `items[1].steps` for a body field and `data` for the whole body."""
    if key in {"", "data"}:
        return "$"
    return key if key.startswith("$") else f"$.{key}"


def _split_msgspec_message(message: str) -> tuple[str, str | None]:
    match = _MSGSPEC_PATH.match(message)
    if match is None:
        return message, None
    return match.group("message").strip(), match.group("path")


# Litestar's message for an absent required parameter names it (never a value): safe to relay.
_MISSING_PARAMETER = re.compile(
    r"^Missing required (?P<location>query|header|cookie|path) parameter '(?P<name>[^']{1,100})'"
)


def _missing_parameter(exc: ValidationException) -> list[FieldError]:
    match = _MISSING_PARAMETER.match(str(exc.detail))
    if match is None:
        return []
    return [FieldError(location=match["location"], path=match["name"], detail="is required")]


def language(request: Request[Any, Any, Any]) -> Language:
    """The language a problem answers in: the request's Accept-Language, else English."""
    return preferred_language(request.headers.get("accept-language"))


def _handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = _field_errors(exc) or _missing_parameter(exc)
    lang = language(request)
    if not errors:
        # Litestar raises a bare ValidationException for bodies it cannot parse at all.
        return problem_response(
            problem_body(
                PROBLEM_TYPES["bad-request"],
                detail="The request body could not be parsed as the declared media type."
                if lang == "en"
                else "リクエスト本文を、宣言されたメディアタイプとして読み取れませんでした。",
                rid=request_id(request.scope),
                language=lang,
            )
        )
    return problem_response(
        problem_body(
            PROBLEM_TYPES["validation-failed"],
            detail=f"{len(errors)} field(s) are missing or invalid."
            if lang == "en"
            else f"{len(errors)} 件の項目に、欠けているものか誤りがあります。",
            rid=request_id(request.scope),
            errors=errors,
            language=lang,
        )
    )


_SAFE_HTTP_DETAILS = {
    404: ("No resource exists at this path.", "このパスにはリソースがありません。"),
    405: (
        "This path does not accept the {method} method.",
        "このパスは {method} メソッドを受け付けません。",
    ),
    413: (
        "The request body is larger than the {limit}-byte limit.",
        "リクエスト本文が上限の {limit} バイトを超えています。",
    ),
}


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    problem = _problem_for_status(status)
    lang = language(request)
    templates = _SAFE_HTTP_DETAILS.get(status)
    if templates is not None:
        template = templates[0] if lang == "en" else templates[1]
        detail = template.format(method=request.method, limit=request.app.request_max_body_size)
    elif lang == "en":
        # Our own HTTPExceptions carry safe, fixed messages; Litestar's carry no values either.
        detail = exc.detail
    elif status == 400 and not hasattr(exc, "detail_ja"):
        # Litestar's own 400s are bodies its decoder could not read.
        detail = "リクエスト本文を、宣言されたメディアタイプとして読み取れませんでした。"
    else:
        # Ours may carry a Japanese one (`detail_ja`); Litestar's get the type's description.
        detail = getattr(exc, "detail_ja", None) or problem.description_in("ja")
    headers = {
        k: v for k, v in (exc.headers or {}).items() if k.lower() in {"allow", "retry-after"}
    }
    body = problem_body(
        problem, detail=detail, rid=request_id(request.scope), status=status, language=lang
    )
    return problem_response(body, headers=headers)


def _handle_domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    lang = language(request)
    errors = [FieldError(e.location, e.path, e.detail) for e in exc.errors] or None
    body = problem_body(
        exc.problem,
        detail=exc.detail_in(lang),
        rid=request_id(request.scope),
        errors=errors,
        language=lang,
    )
    return problem_response(body, headers=exc.headers())


def _handle_refused_input(request: Request[Any, Any, Any], exc: InputRefused) -> Response[Any]:
    if request.scope["path"].startswith("/oauth/"):
        # OAuth clients expect RFC 6749's error format from every /oauth endpoint.
        oauth_error = {"error": "invalid_request", "error_description": exc.detail}
        return Response(oauth_error, status_code=exc.problem.status)
    return _handle_domain(request, exc)


def internal_error_body(rid: str, language: Language = "en") -> Problem:
    return problem_body(
        PROBLEM_TYPES["internal-error"],
        detail=f"Unexpected error. Nothing was saved. Reference: {rid}."
        if language == "en"
        else f"予期しないエラーが起きました。何も保存していません。参照番号: {rid}",
        rid=rid,
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        language=language,
    )


def is_unavailable(exc: BaseException) -> bool:
    """True when the database could not be reached or did not answer in time."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, ConnectionError | OSError)
    return isinstance(exc, OSError)


def unavailable_body(rid: str, language: Language = "en") -> Problem:
    return problem_body(
        PROBLEM_TYPES["service-unavailable"],
        detail="The database is unavailable. Nothing was saved; retry shortly."
        if language == "en"
        else "データベースが利用できません。何も保存していません。"
        "しばらくしてから再送してください。",
        rid=rid,
        language=language,
    )


def _handle_key_provider(request: Request[Any, Any, Any], exc: KeyProviderError) -> Response[Any]:
    """The key provider failed: 503 with Retry-After, the request's other work rolled back. The
    provider's message names a KEK version or a token label at most, but stays in no answer."""
    rid = request_id(request.scope)
    log.error(
        "http.key_provider_unavailable",
        request_id=rid,
        route=route_template(request.scope),
        error_type=type(exc).__qualname__,
        stack=safe_traceback(exc),
    )
    lang = language(request)
    body = problem_body(
        KEY_PROVIDER_UNAVAILABLE,
        detail="The key service is unavailable. Nothing was read or saved; retry shortly."
        if lang == "en"
        else "鍵管理サービスが利用できません。何も読み書きしていません。"
        "しばらくしてから再送してください。",
        rid=rid,
        language=lang,
    )
    return problem_response(body, headers={"Retry-After": str(KEY_PROVIDER_RETRY_AFTER_S)})


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id(request.scope)
    unavailable = is_unavailable(exc)
    log.error(
        "http.unavailable" if unavailable else "http.unhandled_error",
        request_id=rid,
        route=route_template(request.scope),
        error_type=type(exc).__qualname__,
        stack=safe_traceback(exc),
    )
    lang = language(request)
    if unavailable:
        return problem_response(unavailable_body(rid, lang), headers={"Retry-After": "5"})
    return problem_response(internal_error_body(rid, lang))


def exception_handlers() -> ExceptionHandlersMap:
    return {
        ValidationException: _handle_validation,
        DomainError: _handle_domain,
        InputRefused: _handle_refused_input,
        HTTPException: _handle_http,
        KeyProviderError: _handle_key_provider,
        Exception: _handle_unexpected,
    }


ProblemSource = ProblemType | type[DomainError] | int


@dataclass
class ProblemResponse(ResponseSpec):
    """An error status of an operation and the problem codes it answers under it."""

    problems: tuple[ProblemType, ...] = ()


def problem_for_status(status: int) -> ProblemType:
    """The generic problem the HTTP layer answers with `status` (404: `not-found`, ...)."""
    return _problem_for_status(status)


def _as_problem_type(source: ProblemSource) -> ProblemType:
    if isinstance(source, ProblemType):
        return source
    if isinstance(source, int):
        return problem_for_status(source)
    return source.problem


def problem_responses(*problems: ProblemSource) -> dict[int, ResponseSpec]:
    """OpenAPI entries for a route's own problems: a domain error class, a problem type, or a
    status (its generic problem). The problems every route of its shape can answer (its
    guards', its body's, the server's) are added by `bank.http.openapi.OperationDocs`."""
    by_status: dict[int, set[ProblemType]] = {}
    for source in problems:
        problem = _as_problem_type(source)
        by_status.setdefault(problem.status, set()).add(problem)
    return {status: problem_response_spec(status, found) for status, found in by_status.items()}


def problem_response_spec(status: int, problems: Iterable[ProblemType]) -> ProblemResponse:
    """The document's entry for `status`: problem+json, each code linked to its page."""
    ordered = tuple(sorted(set(problems), key=lambda p: p.code))
    links = ", ".join(f"[`{p.code}`]({problem_type_uri(p.code)})" for p in ordered)
    return ProblemResponse(
        data_container=Problem,
        media_type=PROBLEM_MEDIA_TYPE,
        description=f"{HTTPStatus(status).phrase}. Problem codes: {links}.",
        generate_examples=False,
        problems=ordered,
    )
