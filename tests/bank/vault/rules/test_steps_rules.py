"""Steps rules (pure): a day is refused exactly when one of its fields is impossible."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.vault.rules.steps import (
    MAX_DEVICE_ID,
    MAX_STEPS_PER_DAY,
    MAX_STEPS_PER_HOUR,
    OLDEST_DAY,
    PLATFORMS,
    StepDayIn,
    validate_step_day,
)

TODAY = date(2026, 11, 30)
PATH = "$.days[0]"


def _day(**fields: object) -> StepDayIn:
    base = StepDayIn(
        day=TODAY, steps=24, hourly=[1] * 24, platform="healthkit", method="automatic",
        device_id="iPhone15,2",
    )  # fmt: skip
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def _fields(item: StepDayIn) -> list[str]:
    return [refusal.field for refusal in validate_step_day(item, today=TODAY, path=PATH)]


@pytest.mark.parametrize(
    "item",
    [
        _day(),
        _day(hourly=None),
        _day(device_id=None, method="manual"),
        _day(device_id=" ~Pixel 8 (#1)"),
        _day(day=TODAY - OLDEST_DAY, platform="tracker"),
        _day(steps=0, hourly=[0] * 24),
        _day(steps=MAX_STEPS_PER_DAY, hourly=None),
        _day(steps=MAX_STEPS_PER_HOUR, hourly=[MAX_STEPS_PER_HOUR] + [0] * 23),
    ],
)
def test_possible_days_are_valid(item: StepDayIn) -> None:
    assert _fields(item) == []


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (_day(day=TODAY + timedelta(days=1)), "day"),
        (_day(day=TODAY - OLDEST_DAY - timedelta(days=1)), "day"),
        (_day(steps=-1, hourly=None), "steps"),
        (_day(steps=MAX_STEPS_PER_DAY + 1, hourly=None), "steps"),
        (_day(hourly=[1] * 23), "hourly"),
        (_day(hourly=[1] * 25), "hourly"),
        (_day(steps=23, hourly=[-1] + [1] * 23), "hourly"),
        (_day(steps=MAX_STEPS_PER_HOUR + 24, hourly=[MAX_STEPS_PER_HOUR + 1] + [1] * 23), "hourly"),
        (_day(steps=25), "hourly"),
        (_day(platform="fitbit"), "platform"),
        (_day(method="estimated"), "method"),
        (_day(device_id=""), "device_id"),
        (_day(device_id="x" * (MAX_DEVICE_ID + 1)), "device_id"),
        (_day(device_id="phone\n1"), "device_id"),
        (_day(device_id="phone\x7f"), "device_id"),
        (_day(device_id="端末1"), "device_id"),
    ],
)
def test_each_impossible_field_is_refused_by_its_path(item: StepDayIn, field: str) -> None:
    assert _fields(item) == [f"{PATH}.{field}"]


def _hourly_is_possible(hourly: list[int] | None, steps: int) -> bool:
    if hourly is None:
        return True
    return (
        len(hourly) == 24
        and all(0 <= count <= MAX_STEPS_PER_HOUR for count in hourly)
        and sum(hourly) == steps
    )


@given(
    steps=st.integers(-10, MAX_STEPS_PER_DAY + 10),
    hourly=st.none()
    | st.lists(st.integers(-5, MAX_STEPS_PER_HOUR + 5), min_size=22, max_size=26)
    | st.lists(st.integers(0, 900), min_size=24, max_size=24),
    offset=st.integers(-3, int(OLDEST_DAY.days) + 3),
    platform=st.sampled_from([*sorted(PLATFORMS), "garmin"]),
)
def test_a_day_is_refused_exactly_when_a_rule_says_it_is_impossible(
    steps: int, hourly: list[int] | None, offset: int, platform: str
) -> None:
    if hourly is not None and steps == 0:
        steps = sum(hourly)  # often consistent, so that the other rules get their say
    item = _day(steps=steps, hourly=hourly, day=TODAY - timedelta(days=offset), platform=platform)
    expected = [
        field
        for field, possible in (
            ("day", 0 <= offset <= OLDEST_DAY.days),
            ("steps", 0 <= steps <= MAX_STEPS_PER_DAY),
            ("hourly", _hourly_is_possible(hourly, steps)),
            ("platform", platform in PLATFORMS),
        )
        if not possible
    ]
    assert _fields(item) == [f"{PATH}.{field}" for field in expected]
