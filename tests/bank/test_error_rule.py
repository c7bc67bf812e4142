"""One rule for 400 and 422, for bodies and query strings alike; problems in Japanese or English.

400: the request cannot be read (a body that is not JSON, cut short, not UTF-8 or empty; a query
string that is not UTF-8 once percent-decoded; input the guards refuse before decoding).
422: it can be read, and breaks the schema. The property tests decide which with reference
decoders (msgspec for the body, strict UTF-8 for the query) and compare with the answer.
A 422 is `validation-failed` here; the read routes' rules no schema can state (a range's order
and length, a cursor) are 422 `invalid-query` (tests/bank/vault/test_steps_api.py).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bank.errors import PROBLEM_TYPES
from bank.http.json_guard import InputRefused, check_json
from bank.http.language import preferred_language
from tests.bank.probe_routes import ReadingBatch
from tests.bank.test_problems import assert_problem

Client = httpx.AsyncClient
JSON = {"content-type": "application/json"}
_FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"device": "d", "items": [', b"nope", b"\xff\xfe", b"", b"   ", b'{"a": NaN}'],
)
async def test_a_body_that_cannot_be_read_is_400(probe_client: Client, body: bytes) -> None:
    response = await probe_client.post("/v1/test/readings", content=body, headers=JSON)
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "$"),
        ({"device": "d"}, "$.items"),
        ({"device": "d", "items": [{"day": "2026-11-01", "steps": -1}]}, "$.items[0].steps"),
        ({"device": "d", "items": [{"day": "2026-11-31", "steps": 1}]}, "$.items[0].day"),
        ({"device": 7, "items": []}, "$.device"),
    ],
)
async def test_a_readable_body_that_breaks_the_schema_is_422(
    probe_client: Client, body: Any, path: str
) -> None:
    response = await probe_client.post("/v1/test/readings", json=body)
    problem = assert_problem(response, 422, "validation-failed")
    assert [error["path"] for error in problem["errors"]] == [path]


@pytest.mark.parametrize("query", [b"day=%ff", b"day=2026-11-01&limit=%c3%28", b"%80=1"])
async def test_a_query_string_that_is_not_utf8_is_400(probe_client: Client, query: bytes) -> None:
    response = await probe_client.get("/v1/test/search?" + query.decode("ascii"))
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"day": "2026-13-01"}, "day"),
        ({"day": "天気"}, "day"),
        ({}, "day"),
        ({"day": "2026-11-01", "limit": "0"}, "limit"),
        ({"day": "2026-11-01", "limit": "ten"}, "limit"),
    ],
)
async def test_a_readable_query_that_breaks_the_schema_is_422(
    probe_client: Client, params: dict[str, str], name: str
) -> None:
    response = await probe_client.get("/v1/test/search", params=params)
    problem = assert_problem(response, 422, "validation-failed")
    assert [(e["location"], e["path"]) for e in problem["errors"]] == [("query", name)]


@pytest.mark.parametrize(
    "query", ["day=2026-11-01&day=2026-11-02", "day=2026-11-01&limit=3&limit=3"]
)
async def test_a_parameter_taken_once_given_twice_is_422(probe_client: Client, query: str) -> None:
    response = await probe_client.get(f"/v1/test/search?{query}")
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["errors"][0]["location"] == "query"
    assert problem["errors"][0]["detail"] == "is given more than once"


async def test_a_parameter_the_route_does_not_take_is_ignored(probe_client: Client) -> None:
    response = await probe_client.get("/v1/test/search?day=2026-11-01&x=1&x=2")
    assert response.status_code == 200, response.text


def _expected_for_body(body: bytes) -> int:
    """What the rule says a body earns, decided without the app: 400 if it cannot be read (the
    decoder or the guard refuses it), 422 if it reads but is not a ReadingBatch, else 201."""
    try:
        check_json(body)
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, InputRefused, UnicodeDecodeError):
        return 400
    try:
        msgspec.convert(decoded, ReadingBatch)
    except msgspec.ValidationError:
        return 422
    return 201


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_READINGS = st.fixed_dictionaries(
    {
        "device": st.text(max_size=70),
        "items": st.lists(
            st.fixed_dictionaries(
                {"day": st.dates().map(str) | st.text(max_size=10), "steps": st.integers()}
            ),
            max_size=3,
        ),
    }
)


@_FAST
@given(
    body=st.binary(max_size=40)
    | _JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | _READINGS.map(lambda v: json.dumps(v, ensure_ascii=False).encode())
    | _READINGS.map(lambda v: json.dumps(v).encode()[:-1])  # cut short
)
async def test_any_body_is_400_exactly_when_it_cannot_be_read_and_422_when_it_breaks_the_schema(
    probe_client: Client, body: bytes
) -> None:
    response = await probe_client.post("/v1/test/readings", content=body, headers=JSON)
    assert response.status_code == _expected_for_body(body), response.text
    if response.status_code == 422:
        assert response.json()["code"] == "validation-failed"


def _expected_for_limit(raw: bytes) -> int:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return 400
    if "\x00" in text:
        return 400  # unstorable-character: refused for the whole request
    return 200 if re.fullmatch(r"(?:[1-9]|10)", text) else 422


@_FAST
@given(raw=st.binary(max_size=6) | st.text(max_size=6).map(str.encode) | st.sampled_from([b"3"]))
async def test_any_query_value_is_400_exactly_when_it_cannot_be_read_and_422_when_it_breaks_the_schema(  # noqa: E501
    probe_client: Client, raw: bytes
) -> None:
    query = f"day=2026-11-01&limit={quote_from_bytes(raw, safe='')}"
    response = await probe_client.get(f"/v1/test/search?{query}")
    assert response.status_code == _expected_for_limit(raw), (raw, response.text)


# --- languages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("ja;q=0.4, en;q=0.6", "en"),
        ("fr, ja;q=0.5", "ja"),
        ("fr, de", "en"),
        ("*", "en"),
        ("ja;q=0, en;q=0.1", "en"),
        ("ja;q=garbage, en;q=0.1", "en"),
        ("EN, JA", "en"),
    ],
)
def test_the_preferred_language_follows_accept_language_weights(
    header: str | None, language: str
) -> None:
    assert preferred_language(header) == language


@given(header=st.text(max_size=200))
def test_any_accept_language_gives_one_of_the_two_languages(header: str) -> None:
    assert preferred_language(header) in {"ja", "en"}


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (("POST", "/v1/test/readings", b"{"), 400, "bad-request"),
        (("POST", "/v1/test/readings", b"{}"), 422, "validation-failed"),
        (("GET", "/v1/test/search?day=x", None), 422, "validation-failed"),
        (("GET", "/v1/nothing-here", None), 404, "not-found"),
        (("DELETE", "/health/live", None), 405, "method-not-allowed"),
        (("POST", "/v1/test/readings", b"[" * 40 + b"]" * 40), 400, "json-too-deep"),
    ],
)
async def test_a_problem_answers_in_the_language_asked_for(
    probe_client: Client, request_: tuple[str, str, bytes | None], status: int, code: str
) -> None:
    method, url, body = request_
    answers = {}
    for language in ("ja", "en"):
        headers = {"accept-language": language, **(JSON if body is not None else {})}
        response = await probe_client.request(method, url, content=body, headers=headers)
        answers[language] = assert_problem(response, status, code)
    assert answers["ja"]["title"] == PROBLEM_TYPES[code].title_ja
    assert _JAPANESE.search(answers["ja"]["detail"]), answers["ja"]
    assert answers["en"]["title"] == PROBLEM_TYPES[code].title
    assert not _JAPANESE.search(answers["en"]["detail"]), answers["en"]
    # The code, type and status never change with the language.
    assert {
        k: v for k, v in answers["ja"].items() if k not in {"title", "detail", "request_id"}
    } == {k: v for k, v in answers["en"].items() if k not in {"title", "detail", "request_id"}}
