"""Refuse request bodies whose Content-Type the route does not declare (415).

Litestar decodes a body as the route's declared encoding whatever the header says; a production
API should instead tell the client plainly that it sent the wrong media type.
"""

from __future__ import annotations

import re

from litestar.datastructures import Headers
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.params import BodyKwarg
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Receive, Scope, Send

METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,62}/[a-z0-9][a-z0-9.+-]{0,62}")


class UnsupportedMediaType(HTTPException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE

    def __init__(self, expected: str, sent: str) -> None:
        super().__init__(detail=f"Content-Type must be {expected}; got {sent}.")
        self.detail_ja = f"Content-Type は {expected} にしてください(受け取ったのは {sent})。"


def declared_media_type(route_handler: HTTPRouteHandler) -> str | None:
    """The media type a route accepts for its body, or None if it takes no body."""
    data_field = route_handler.parsed_data_field
    if data_field is None:
        # Handlers that read the body themselves (the OAuth token endpoint) declare it in `opt`.
        declared = route_handler.opt.get("body_media_type")
        return str(declared) if declared else None
    kwarg = data_field.kwarg_definition
    media_type = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    return str(media_type.value if isinstance(media_type, RequestEncodingType) else media_type)


def announces_body(headers: Headers) -> bool:
    """Whether the request's headers say a body follows."""
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _describe(sent: str) -> str:
    # Echo the header only when it is a plain media type, never arbitrary client text.
    return sent if _MEDIA_TYPE.fullmatch(sent) else "an unrecognised value"


def media_type_middleware(app: ASGIApp) -> ASGIApp:
    """A body must come with the Content-Type its route declares (JSON unless it says otherwise).

    A middleware rather than a `before_request` hook because Litestar keeps only the innermost
    layer's hook, and a controller's own hook would silently switch this check off.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in METHODS_WITH_BODY:
            expected = declared_media_type(scope["route_handler"])  # type: ignore[arg-type]
            if expected is not None:
                headers = Headers.from_scope(scope)
                sent = headers.get("content-type", "").split(";", 1)[0].strip().lower()
                has_body = announces_body(headers)
                if (sent or has_body) and sent != expected:
                    raise UnsupportedMediaType(expected, _describe(sent or "none"))
        await app(scope, receive, send)

    return middleware
