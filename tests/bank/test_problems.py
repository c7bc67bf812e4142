"""Every error class answers RFC 9457 problem+json with a stable code and no internals."""

from __future__ import annotations

import json
from typing import Any

import httpx
from httpx import Response

from bank.app import create_app
from bank.db import Database
from bank.settings import Settings
from tests.bank.probe_routes import PERSONAL_VALUE, ProbeController
from tests.conftest import savepoint_sessions, serve

Client = httpx.AsyncClient


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"/problems/{code}"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(client: Client) -> None:
    assert_problem(await client.get("/v1/no-such-thing"), 404, "not-found")


async def test_wrong_method_is_405_problem_with_allow(client: Client) -> None:
    response = await client.delete("/health/live")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_malformed_json_is_400_problem(probe_client: Client) -> None:
    response = await probe_client.post(
        "/v1/test/readings", content=b'{"device": "x", "items": [', headers=_json
    )
    assert_problem(response, 400, "bad-request")


_json = {"content-type": "application/json"}


async def test_validation_names_json_path_of_each_bad_field(probe_client: Client) -> None:
    batch = {
        "device": "watch",
        "items": [{"day": "2026-11-01", "steps": 5000}, {"day": "2026-11-02", "steps": -3}],
    }
    body = assert_problem(
        await probe_client.post("/v1/test/readings", json=batch), 422, "validation-failed"
    )
    assert body["errors"] == [
        {"location": "body", "path": "$.items[1].steps", "detail": "Expected `int` >= 0"}
    ]


async def test_validation_reports_missing_field(probe_client: Client) -> None:
    body = assert_problem(
        await probe_client.post("/v1/test/readings", json={"items": []}), 422, "validation-failed"
    )
    assert [error["path"] for error in body["errors"]] == ["$.device"]
    assert "missing" in body["errors"][0]["detail"]


async def test_validation_reports_missing_nested_field(probe_client: Client) -> None:
    batch = {"device": "d", "items": [{"day": "2026-11-01"}]}
    body = assert_problem(
        await probe_client.post("/v1/test/readings", json=batch), 422, "validation-failed"
    )
    assert [error["path"] for error in body["errors"]] == ["$.items[0].steps"]


async def test_validation_refuses_unknown_fields(probe_client: Client) -> None:
    body = assert_problem(
        await probe_client.post("/v1/test/readings", json={"device": "d", "items": [], "x": 1}),
        422,
        "validation-failed",
    )
    assert "x" in body["errors"][0]["detail"]


async def test_validation_error_never_echoes_submitted_value(probe_client: Client) -> None:
    batch = {"device": "d", "items": [{"day": PERSONAL_VALUE, "steps": 1}]}
    response = await probe_client.post("/v1/test/readings", json=batch)
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["path"] == "$.items[0].day"
    assert PERSONAL_VALUE not in response.text


async def test_oversized_body_is_413_problem(settings: Settings, connection: Any) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1024})
    app = create_app(small, database=Database(sessions=savepoint_sessions(connection)))
    app.register(ProbeController)
    payload = {"device": "d", "items": [{"day": "2026-11-01", "steps": 1}] * 100}
    async with serve(app) as client:
        response = await client.post("/v1/test/readings", json=payload)
    body = assert_problem(response, 413, "payload-too-large")
    assert "1024" in body["detail"]


async def test_wrong_content_type_is_415_problem(probe_client: Client) -> None:
    response = await probe_client.post(
        "/v1/test/readings", content=b"device=d", headers={"content-type": "text/plain"}
    )
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in body["detail"]
    assert "text/plain" in body["detail"]


async def test_json_sent_to_a_form_route_is_415(probe_client: Client) -> None:
    response = await probe_client.post("/v1/test/form", json={"a": "b"})
    assert_problem(response, 415, "unsupported-media-type")
    ok = await probe_client.post("/v1/test/form", data={"a": "b"})
    assert ok.status_code == 201
    assert ok.json() == {"count": 1}


async def test_415_never_echoes_an_arbitrary_content_type(probe_client: Client) -> None:
    response = await probe_client.post(
        "/v1/test/readings", content=b"{}", headers={"content-type": f"x {PERSONAL_VALUE}"}
    )
    assert_problem(response, 415, "unsupported-media-type")
    assert PERSONAL_VALUE not in response.text


async def test_unexpected_failure_is_500_with_reference_and_no_internals(
    probe_client: Client,
) -> None:
    response = await probe_client.get("/v1/test/crash")
    body = assert_problem(response, 500, "internal-error")
    assert body["request_id"] in body["detail"]
    for leak in (PERSONAL_VALUE, "ValueError", "Traceback", "probe_routes"):
        assert leak not in response.text


async def test_problem_types_are_documented_at_their_uri(client: Client) -> None:
    listing = (await client.get("/problems")).json()
    codes = {entry["code"] for entry in listing}
    assert {"not-found", "validation-failed", "internal-error", "unsupported-media-type"} <= codes
    one = await client.get("/problems/validation-failed")
    assert one.json()["status"] == 422
    assert_problem(await client.get("/problems/nonsense"), 404, "not-found")


def test_problem_bodies_are_json_serialisable_documents() -> None:
    # The schema in OpenAPI and the runtime body come from the same msgspec struct.
    from bank.http.problems import internal_error_body

    encoded = json.loads(json.dumps({"x": internal_error_body("abc").__struct_fields__}))
    assert "request_id" in encoded["x"]
