"""The query parameters the vault's read routes share, with the patterns and ranges the
document states: a value these allow is one the routes accept, except the rules no schema can
state (a range's order and length, a cursor this API never returned: 422 `invalid-query`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar.openapi.spec import Example
from litestar.params import QueryParameter

from bank.vault.paging import CURSOR_PATTERN, MONTH_PATTERN, RANGE_RULE

From = Annotated[
    date,
    QueryParameter(
        name="from",
        description="The first day of the range (inclusive), a calendar date in the city's "
        "time zone. " + RANGE_RULE,
        examples=[Example(summary="From 1 November", value="2026-11-01")],
    ),
]
To = Annotated[
    date,
    QueryParameter(
        name="to",
        description="The last day of the range (inclusive), a calendar date in the city's "
        "time zone. " + RANGE_RULE,
        examples=[Example(summary="To 30 November", value="2026-11-30")],
    ),
]
Month = Annotated[
    str,
    QueryParameter(
        pattern=MONTH_PATTERN,
        min_length=7,
        max_length=7,
        description="The month, `YYYY-MM` (years 0001-9999), in the city's time zone.",
        examples=[Example(summary="November 2026", value="2026-11")],
    ),
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        pattern=CURSOR_PATTERN,
        description="`next_cursor` of the previous page, as it was given; absent for the first "
        "page. A cursor this API did not return is 422 `invalid-query`.",
    ),
]
