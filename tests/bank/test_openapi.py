"""The checked-in OpenAPI document is what the app generates; every error is problem+json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bank.app import create_app
from bank.cli import render_openapi
from bank.settings import Settings

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def _generated(settings: Settings) -> dict[str, Any]:
    return create_app(settings).openapi_schema.to_schema()


def test_checked_in_openapi_is_current(settings: Settings) -> None:
    generated = render_openapi(_generated(settings))
    assert OPENAPI_FILE.read_text(encoding="utf-8") == generated, (
        "openapi/openapi.json is stale: run `make openapi`"
    )


def test_document_is_openapi_3_1_with_versioned_operation_ids(settings: Settings) -> None:
    document = _generated(settings)
    assert document["openapi"].startswith("3.1")
    operations = [op for path in document["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))


def test_every_documented_error_is_problem_json(settings: Settings) -> None:
    document = _generated(settings)
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/health/ready", "503"):
                    continue  # readiness answers its own document, for load balancers
                content = response.get("content", {})
                assert list(content) == ["application/problem+json"], (path, method, status)


async def test_docs_are_served_with_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/static/docs/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    bundle = await client.get("/static/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    spec = await client.get("/docs/openapi.json")
    assert json.loads(spec.text)["info"]["title"] == "City information bank API"
