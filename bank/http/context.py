"""Per-request context that every response carries: request id, security headers, one log event.

These run as a Litestar `before_send` hook, which wraps the ASGI `send` of every request, so they
also apply to 404/405 answers that never reach a route's middleware.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import Message, Scope

from bank.logs import get_logger

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = "bank.request_id"
_STARTED_KEY = "bank.started_ns"
# A caller-supplied id is echoed only if it cannot smuggle anything into logs or headers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI needs its own scripts and styles and one inline bootstrap script.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

_HSTS = b"max-age=63072000; includeSubDomains"
_DOCS_HEADERS = tuple(
    (name.lower().encode(), value.encode())
    for name, value in {**_ALWAYS, "Content-Security-Policy": _DOCS_CSP}.items()
)
# Responses may carry personal data: no shared or browser caches.
_API_HEADERS = tuple(
    (name.lower().encode(), value.encode())
    for name, value in {
        **_ALWAYS,
        "Content-Security-Policy": _API_CSP,
        "Cache-Control": "no-store",
    }.items()
)

access_log = get_logger("bank.http")


def request_id(scope: Scope) -> str:
    """The request's id: the caller's `X-Request-ID` if it is safe, else a new UUID."""
    state = scope.setdefault("state", {})
    existing: str | None = state.get(_REQUEST_ID_KEY)
    if existing is not None:
        return existing
    new_id = uuid.uuid4().hex
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                new_id = candidate
            break
    state[_REQUEST_ID_KEY] = new_id
    state.setdefault(_STARTED_KEY, time.perf_counter_ns())
    return new_id


def mark_request_start(scope: Scope) -> None:
    """Called as early as the route stack allows, so durations include the whole handler."""
    scope.setdefault("state", {}).setdefault(_STARTED_KEY, time.perf_counter_ns())
    request_id(scope)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's address as uvicorn saw it (X-Forwarded-For applied by --proxy-headers)."""
    return request.client.host if request.client else "unknown"


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/things/{id}`), never the raw path with its values."""
    template = scope.get("path_template")
    return template if isinstance(template, str) else "<unmatched>"


def make_before_send(*, https: bool) -> Callable[[Message, Scope], Coroutine[Any, Any, None]]:
    """Build the hook that stamps headers on every response start and logs the request."""

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("type") != ScopeType.HTTP:
            return
        rid = request_id(scope)
        path: str = scope.get("path", "")
        is_docs = path == "/docs" or path.startswith("/docs/")
        # Raw header tuples, not MutableScopeHeaders: this runs on every response and the
        # helper rescans the whole list for each header it sets.
        headers = list(message.get("headers") or ())
        present = {name.lower() for name, _ in headers}
        headers.append((b"x-request-id", rid.encode("latin-1")))
        for name, value in _DOCS_HEADERS if is_docs else _API_HEADERS:
            if name not in present:
                headers.append((name, value))
        if https and b"strict-transport-security" not in present:
            headers.append((b"strict-transport-security", _HSTS))
        message["headers"] = headers
        started = scope["state"].get(_STARTED_KEY)
        duration_ms = (time.perf_counter_ns() - started) / 1e6 if started else None
        access_log.info(
            "http.request",
            request_id=rid,
            method=scope.get("method"),
            route=route_template(scope),
            status=message["status"],
            duration_ms=round(duration_ms, 3) if duration_ms is not None else None,
        )

    return before_send
