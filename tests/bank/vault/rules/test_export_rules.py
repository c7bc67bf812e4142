"""The daily export limit (pure): the local day's bounds, and the 429's Retry-After."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.vault.errors import ExportLimitReached
from bank.vault.rules.exports import check_daily_limit, day_start, next_day_start, shown_status

TOKYO = ZoneInfo("Asia/Tokyo")
# The city's zone, UTC, and one with daylight saving (changing at night, not at midnight), so
# the bounds hold wherever BANK_LOCAL_TIMEZONE usually points.
ZONES = st.sampled_from([TOKYO, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")])
NOWS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@given(now=NOWS, zone=ZONES)
def test_the_day_holds_now_and_starts_at_local_midnight(now: datetime, zone: ZoneInfo) -> None:
    start, end = day_start(now, zone), next_day_start(now, zone)
    assert start <= now < end
    assert start.astimezone(zone).time() == time(0)
    assert end.astimezone(zone).time() == time(0)
    assert start.astimezone(zone).date() == now.astimezone(zone).date()
    assert end.astimezone(zone).date() == now.astimezone(zone).date() + timedelta(days=1)


@given(now=NOWS, per_day=st.integers(1, 50), data=st.data())
def test_below_the_limit_nothing_is_raised(
    now: datetime, per_day: int, data: st.DataObject
) -> None:
    check_daily_limit(data.draw(st.integers(0, per_day - 1)), per_day, now, TOKYO)


@given(now=NOWS, per_day=st.integers(1, 50), over=st.integers(0, 600))
def test_at_the_limit_retry_after_is_the_whole_seconds_until_local_midnight(
    now: datetime, per_day: int, over: int
) -> None:
    with pytest.raises(ExportLimitReached) as raised:
        check_daily_limit(per_day + over, per_day, now, TOKYO)
    wait = raised.value.retry_after_s
    midnight = next_day_start(now, TOKYO)
    assert wait == max(1, math.ceil((midnight - now).total_seconds()))
    assert 1 <= wait <= 24 * 3600  # Tokyo keeps no daylight saving: a day is 24 hours
    assert now + timedelta(seconds=wait) >= midnight  # retrying then is never refused again
    assert raised.value.headers() == {"Retry-After": str(wait)}
    assert raised.value.problem.status == 429
    assert "Asia/Tokyo" in raised.value.detail


def test_a_second_before_midnight_waits_one_second_and_midnight_a_whole_day() -> None:
    midnight = datetime(2026, 12, 8, tzinfo=TOKYO)
    for now, wait in ((midnight - timedelta(seconds=1), 1), (midnight, 86_400)):
        with pytest.raises(ExportLimitReached) as raised:
            check_daily_limit(5, 5, now, TOKYO)
        assert raised.value.retry_after_s == wait
    with pytest.raises(ExportLimitReached) as raised:
        check_daily_limit(5, 5, midnight - timedelta(microseconds=1), TOKYO)
    assert raised.value.retry_after_s == 1  # never 0: a client would retry at once


@given(stored=st.sampled_from(["pending", "ready"]), building=st.booleans())
def test_an_export_is_failed_only_when_pending_with_no_build_at_work(
    stored: str, building: bool
) -> None:
    shown = shown_status(stored, building)
    assert (shown == "failed") == (stored == "pending" and not building)
    assert (shown == "ready") == (stored == "ready")
