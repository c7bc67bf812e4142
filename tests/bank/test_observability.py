"""Request ids, security headers, CORS, one structured log event per request, metrics."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection

from bank.app import create_app
from bank.db import Database
from bank.http.context import request_id
from bank.logs import get_logger
from bank.settings import Settings
from tests.bank.probe_routes import PERSONAL_VALUE
from tests.conftest import savepoint_sessions, serve


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def test_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    first = await client.get("/health/live")
    second = await client.get("/health/live")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_safe_caller_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"x-request-id": "app-7f3a9c21.retry-2"})
    assert response.headers["x-request-id"] == "app-7f3a9c21.retry-2"


@given(st.text(max_size=80))
@hypothesis_settings(max_examples=300)
def test_only_safe_request_ids_are_echoed(candidate: str) -> None:
    scope: Any = {"headers": [(b"x-request-id", candidate.encode("utf-8", "replace"))]}
    chosen = request_id(scope)
    assert chosen.isascii()
    assert all(c.isalnum() or c in "._-" for c in chosen)
    assert 8 <= len(chosen) <= 64
    if chosen != candidate:
        assert len(chosen) == 32  # replaced by a fresh UUID


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/health/live"), await client.get("/nowhere")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "server" not in response.headers


async def test_cors_is_off_unless_configured(
    client: httpx.AsyncClient, settings: Settings, connection: AsyncConnection
) -> None:
    preflight = {"origin": "https://app.example.jp", "access-control-request-method": "GET"}
    response = await client.options("/health/live", headers=preflight)
    assert "access-control-allow-origin" not in response.headers

    configured = settings.model_copy(update={"cors_origins": ["https://app.example.jp"]})
    app = create_app(configured, database=Database(sessions=savepoint_sessions(connection)))
    async with serve(app) as cors_client:
        response = await cors_client.options("/health/live", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "https://app.example.jp"


async def test_one_structured_event_per_request_without_personal_values(
    probe_client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    body = {"device": PERSONAL_VALUE, "items": [{"day": PERSONAL_VALUE, "steps": 1}]}
    response = await probe_client.post(
        f"/v1/test/readings?email={PERSONAL_VALUE}",
        json=body,
        headers={"x-request-id": "abcdefgh1"},
    )
    assert response.status_code == 422
    crash = await probe_client.get("/v1/test/crash")
    assert crash.status_code == 500
    output = capsys.readouterr().out
    assert PERSONAL_VALUE not in output
    requests = [e for e in _events(output) if e["event"] == "http.request"]
    assert [(e["route"], e["status"]) for e in requests] == [
        ("/v1/test/readings", 422),
        ("/v1/test/crash", 500),
    ]
    assert requests[0]["request_id"] == "abcdefgh1"
    assert requests[1]["request_id"] == crash.headers["x-request-id"]
    assert all(e["duration_ms"] >= 0 for e in requests)
    errors = [e for e in _events(output) if e["event"] == "http.unhandled_error"]
    assert len(errors) == 1
    assert errors[0]["error_type"] == "ValueError"
    assert errors[0]["request_id"] == crash.headers["x-request-id"]


def test_exception_messages_never_reach_the_log(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    create_app(settings)  # configures logging
    capsys.readouterr()
    try:
        raise RuntimeError(f"failed for {PERSONAL_VALUE}")
    except RuntimeError:
        logging.getLogger("procrastinate.worker").exception("Job ended with status: Error")
        get_logger("bank.test").exception("test.failed", email=PERSONAL_VALUE)
    output = capsys.readouterr().out
    assert PERSONAL_VALUE not in output
    events = _events(output)
    assert [e["error_type"] for e in events] == ["RuntimeError", "RuntimeError"]
    assert all(any("test_observability.py" in line for line in e["stack"]) for e in events)


async def test_metrics_count_requests_by_route_template(
    probe_client: httpx.AsyncClient,
) -> None:
    await probe_client.get("/problems/not-found")
    await probe_client.get("/problems/validation-failed")
    metrics = (await probe_client.get("/metrics")).text
    lines = [line for line in metrics.splitlines() if line.startswith("bank_requests_total")]
    assert any('path="/problems/{code}"' in line for line in lines), lines
    assert not any("validation-failed" in line for line in lines)
    assert "bank_request_duration_seconds_bucket" in metrics
