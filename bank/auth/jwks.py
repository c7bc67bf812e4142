"""Fetching a client's `jwks_uri`, carefully: it is a URL chosen by someone outside the bank."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from bank.http.json_guard import InputRefused, check_json

MAX_JWKS_BYTES = 64 * 1024
CACHE_SECONDS = 300.0


class JwksUnavailable(Exception):
    """The document could not be fetched or is not a JWKS; the client cannot authenticate."""


def check_jwks_uri(uri: str, *, allow_http_loopback: bool) -> None:
    """Registration-time check: https only (http to loopback only in development)."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return
    if (
        allow_http_loopback
        and parts.scheme == "http"
        and parts.hostname in {"127.0.0.1", "localhost"}
    ):
        return
    raise ValueError("jwks_uri must be an https:// URL")


class JwksFetcher:
    """Fetches with a short timeout and a size cap, no redirects, and caches for five minutes."""

    def __init__(self, *, timeout_s: float = 3.0) -> None:
        self._timeout = timeout_s
        self._cache: dict[str, tuple[float, Mapping[str, Any]]] = {}

    async def fetch(self, uri: str) -> Mapping[str, Any]:
        cached = self._cache.get(uri)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            async with (
                httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client,
                client.stream("GET", uri, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise JwksUnavailable("jwks_uri did not answer 200")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksUnavailable("jwks_uri document is too large")
            check_json(body)  # a document nested past the decoder's recursion limit: refused
            document = httpx.Response(200, content=body).json()
        except (httpx.HTTPError, ValueError, InputRefused) as exc:
            raise JwksUnavailable("jwks_uri could not be fetched") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailable("jwks_uri did not return a JWKS")
        self._cache[uri] = (time.monotonic(), document)
        return document
