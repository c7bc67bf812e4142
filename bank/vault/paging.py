"""Query parameters shared by the vault's read routes: date ranges, months, opaque cursors."""

from __future__ import annotations

import base64
import binascii
import calendar
import re
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import TypeVar

from bank.errors import FieldProblem
from bank.vault.errors import InvalidQuery

MAX_RANGE = timedelta(days=3 * 366)
T = TypeVar("T")
# A month as the read routes take it (`2026-11`): years 0001-9999, as a date has them. The
# routes declare it as the parameter's pattern, so the document states it and a month that
# breaks it is a 422 `validation-failed` before any handler runs.
MONTH_PATTERN = r"^([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)-(0[1-9]|1[0-2])$"
# What a cursor this API returns looks like (base64url of a day and a record key).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,1100}$"
RANGE_RULE = (
    "`to` must not be before `from`, and a range spans at most three years (1,098 days); "
    "otherwise 422 `invalid-query`."
)


def check_range(start: date, end: date) -> None:
    if end < start:
        raise InvalidQuery(
            "`to` must not be before `from`.",
            ja="`to` は `from` より前にできません。",
            errors=[FieldProblem("query", "to", "must not be before `from`")],
        )
    if end - start > MAX_RANGE:
        raise InvalidQuery(
            "Ask for at most three years at a time.",
            ja="一度に指定できる期間は3年までです。",
            errors=[FieldProblem("query", "to", "at most three years after `from`")],
        )


def encode_cursor(day: date, key: str) -> str:
    """Opaque to clients; carries only the day and the record's natural key (the caller's own)."""
    return base64.urlsafe_b64encode(f"{day.isoformat()}|{key}".encode()).decode().rstrip("=")


def split_page(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[date, str]]
) -> tuple[Sequence[T], str | None]:
    """Rows read with `limit + 1`: the page to show and the cursor after it (None: last page)."""
    page = rows[:limit]
    return page, encode_cursor(*position(page[-1])) if len(rows) > limit else None


def decode_cursor(cursor: str, accept: Callable[[str], bool] = str.isprintable) -> tuple[date, str]:
    """`accept` says which record keys a cursor of this route can carry."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, key = raw.split("|", 1)
        # A forged cursor could carry a NUL byte, which PostgreSQL text refuses (a 500).
        if not key.isprintable() or len(key) > 200 or not accept(key):
            raise ValueError("not a key this API returns")
        return date.fromisoformat(day), key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidQuery(
            "cursor is not one this API returned.",
            ja="cursor がこの API の返したものではありません。",
            errors=[FieldProblem("query", "cursor", "is not a cursor this API returned")],
        ) from None


_MONTH = re.compile(MONTH_PATTERN)


def month_range(month: str) -> tuple[date, date]:
    """The first and last day of `month`; the routes' pattern has refused any other text
    already, so the refusal here only guards callers that skip it."""
    try:
        if not _MONTH.match(month):
            raise ValueError("not YYYY-MM")
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise InvalidQuery(
            "month must look like 2026-11.",
            ja="month は 2026-11 の形で指定してください。",
            errors=[FieldProblem("query", "month", "must look like 2026-11")],
        ) from None
    # monthrange, not "the first of the next month minus a day": 9999-12 has no next month.
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])
