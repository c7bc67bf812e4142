"""The checked-in OpenAPI document is what the app generates; every error is problem+json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs

from bank.app import create_app
from bank.cli import render_openapi
from bank.errors import PROBLEM_TYPES
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
                if path.startswith("/oauth/") and status in {"400", "401"}:
                    # RFC 6749's error format, which OAuth client libraries read.
                    assert content["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/OAuthError"
                    }, (path, method, status)
                    continue
                assert list(content) == ["application/problem+json"], (path, method, status)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_lists_its_problem_codes_each_linked_to_its_page(
    settings: Settings,
) -> None:
    document = _generated(settings)
    for path, method, operation in _operations(document):
        assert "500" in operation["responses"], (path, method)
        for status, response in operation["responses"].items():
            problem = response.get("content", {}).get("application/problem+json")
            if problem is None:
                continue
            examples = problem["examples"]
            assert examples, (path, method, status)
            for code, shown in examples.items():
                registered = PROBLEM_TYPES[code]
                assert registered.status == int(status), (path, method, code)
                assert f"[`{code}`](/problems/{code})" in response["description"]
                assert shown["value"]["type"] == f"/problems/{code}"
                assert shown["value"]["code"] == code
                assert shown["value"]["status"] == int(status)


def test_guarded_operations_list_the_guards_problems(settings: Settings) -> None:
    for path, method, operation in _operations(_generated(settings)):
        if not operation.get("security"):
            continue
        codes = {
            code
            for response in operation["responses"].values()
            for code in response.get("content", {})
            .get("application/problem+json", {})
            .get("examples", {})
        }
        assert {"unauthenticated", "invalid-token", "insufficient-scope"} <= codes, (path, method)


def test_every_operation_taking_a_body_documents_413_and_415(settings: Settings) -> None:
    taking = [(p, m, o) for p, m, o in _operations(_generated(settings)) if "requestBody" in o]
    assert len(taking) >= 10
    for path, method, operation in taking:
        assert {"413", "415"} <= set(operation["responses"]), (path, method)


def test_every_tag_is_described(settings: Settings) -> None:
    document = _generated(settings)
    described = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    used = {tag for _, _, operation in _operations(document) for tag in operation["tags"]}
    assert used <= set(described), used - set(described)
    assert all(len(described[tag]) > 40 for tag in used)


def test_the_oauth_endpoints_document_their_forms_and_every_answer(settings: Settings) -> None:
    document = _generated(settings)
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        operation = document["paths"][path]["post"]
        form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
        assert form["schema"]["properties"], path
        assert form["examples"], path
        assert {"200", "400", "401", "413", "415"} <= set(operation["responses"]), path
    token = document["paths"]["/oauth/token"]["post"]
    grants = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(grants["properties"]["grant_type"]["enum"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }


_BINARY = {"application/zip", "text/html"}


def test_every_body_has_an_example(settings: Settings) -> None:
    for path, method, operation in _operations(_generated(settings)):
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            assert content.get("examples"), (path, method, media_type)
        for status, response in operation["responses"].items():
            if int(status) >= 300:
                continue
            for media_type, content in response.get("content", {}).items():
                if media_type not in _BINARY:
                    assert content.get("examples"), (path, method, status, media_type)


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(
        {"components": document["components"], **schema}, validate_formats=True
    )


def test_every_example_is_valid_against_its_schema(settings: Settings) -> None:
    """Request examples, success answers and problems alike: a generated client that validates
    would accept each as it is."""
    document = _generated(settings)
    checked = 0
    for path, method, operation in _operations(document):
        bodies = [
            ("request", media, content)
            for media, content in operation.get("requestBody", {}).get("content", {}).items()
        ] + [
            (status, media, content)
            for status, response in operation["responses"].items()
            for media, content in response.get("content", {}).items()
        ]
        for where, media, content in bodies:
            if media in _BINARY or "schema" not in content:
                continue
            validator = _validator(document, content["schema"])
            for name, shown in content.get("examples", {}).items():
                errors = [str(e) for e in validator.iter_errors(shown["value"])]
                assert not errors, (path, method, where, name, errors)
                checked += 1
    assert checked > 100


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
