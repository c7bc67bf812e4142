"""A request the document allows is one the API accepts: schemathesis generates requests that
conform to the checked-in document (every parameter's pattern and range, every body's types and
stated values) and sends them with a valid token of the operation's principal.

None may be refused as unreadable (400) or as breaking the schema (422 `validation-failed`): the
document is at least as strict as the server. What remains are answers about the world (401 for
a wrong password, 404 for an id that is nobody's, 409 for a number linked elsewhere) and the
rules no JSON Schema can state, each a 422 with a code of its own (a range's order, a cursor
never returned, a corporate number's check digit, a common password). Every problem answered
must be one the operation lists, with its status, in the document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis.generation.case import Case
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bank.test_openapi_examples import World
from tests.bank.test_schemathesis import _request

DOCUMENT = Path(__file__).parents[2] / "openapi" / "openapi.json"
EXAMPLES_PER_OPERATION = 12
# 422s for rules a JSON Schema cannot state; each is listed by the operations that answer it.
RULES = {
    "invalid-query",
    "invalid-link",
    "weak-password",
    "invalid-client-registration",
    "invalid-audit-entry",
}
# Ending the caller's own session would turn every later request into a 401.
SKIPPED = {"SignOut"}

pytestmark = pytest.mark.schemathesis

_SCHEMA = schemathesis.openapi.from_path(DOCUMENT)
_SCHEMA.config.generation.update(allow_x00=False, with_security_parameters=False)
_OPERATIONS = [
    operation
    for result in _SCHEMA.get_all_operations()
    if (operation := result.ok()).definition.raw["operationId"] not in SKIPPED  # type: ignore[union-attr]
]
_STRATEGIES = [operation.as_strategy() for operation in _OPERATIONS]


def _documented(operation: Any) -> dict[int, set[str]]:
    """The problem codes the document lists for an operation, by status."""
    found: dict[int, set[str]] = {}
    for status, response in operation.definition.raw["responses"].items():
        problem = response.get("content", {}).get("application/problem+json")
        if problem is not None:
            found[int(status)] = set(problem.get("examples", {}))
    return found


@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_a_request_the_document_allows_is_one_the_api_accepts(
    client: httpx.AsyncClient, app: Litestar, db_session: AsyncSession, data: st.DataObject
) -> None:
    # Built once for the test: hypothesis runs every example in the same rolled-back transaction.
    world: World | None = app.state.get("schema_allows_world")
    if world is None:
        world = app.state.schema_allows_world = World(app, db_session)
        await world.build()
    for operation, strategy in zip(_OPERATIONS, _STRATEGIES, strict=True):
        case: Case[Any] = data.draw(strategy, label=operation.label)
        raw = operation.definition.raw
        headers = world.headers(raw["operationId"], raw)
        response = await client.request(**_request(case, headers))
        where = (operation.label, response.status_code, response.text[:300])
        assert response.status_code < 500, where
        if operation.path.startswith("/oauth/"):
            # RFC 6749's answers: a generated code or assertion is simply not a valid one.
            assert str(response.status_code) in raw["responses"], where
            continue
        assert response.status_code != 400, where
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = response.json()["code"]
            assert code != "validation-failed", where
            if response.status_code == 422:
                assert code in RULES, where
            assert code in _documented(operation).get(response.status_code, set()), where
