"""Steps representations: raw days, daily totals (highest source), weekly and monthly means."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol


class StepValues(Protocol):
    """What a representation reads of an opened day's sealed values."""

    @property
    def steps(self) -> int: ...
    @property
    def hourly(self) -> Sequence[int] | None: ...
    @property
    def method(self) -> str: ...
    @property
    def device_id(self) -> str | None: ...


class StepDayRecord(Protocol):
    """An opened day of steps: the local date, the source platform and the values."""

    @property
    def day(self) -> date: ...
    @property
    def source(self) -> str: ...
    @property
    def payload(self) -> StepValues: ...


@dataclass(frozen=True)
class StepDay:
    """`steps.daily`: one source's day as pushed (the revision number stays inside the bank)."""

    day: date
    source: str
    steps: int
    hourly: tuple[int, ...] | None
    method: str
    device_id: str | None


@dataclass(frozen=True)
class DailyTotal:
    """`steps.daily_total`: the day's steps from its highest source (never a sum of sources)."""

    day: date
    steps: int


@dataclass(frozen=True)
class WeeklyMean:
    """`steps.weekly_mean`: the mean daily total over the days of an ISO week that have data."""

    week: str  # ISO 8601 week, 2026-W48
    first_day: date  # its Monday
    days_covered: int  # 1-7: days without data are left out of the mean, not counted as 0
    mean_steps: int


@dataclass(frozen=True)
class MonthlyMean:
    """`steps.monthly_mean`: the mean daily total over the days of a month that have data."""

    month: str  # 2026-11
    days_covered: int  # 1-31
    mean_steps: int


def mean_half_even(total: int, count: int) -> int:
    """total / count rounded to the nearest integer, halves to the even one (Python's `round`),
    in integers so that no float decides a tie. `count` must be positive."""
    quotient, remainder = divmod(total, count)
    if 2 * remainder > count or (2 * remainder == count and quotient % 2 == 1):
        return quotient + 1
    return quotient


def daily(records: Iterable[StepDayRecord]) -> tuple[StepDay, ...]:
    days = (
        StepDay(
            day=r.day, source=r.source, steps=r.payload.steps,
            hourly=None if r.payload.hourly is None else tuple(r.payload.hourly),
            method=r.payload.method, device_id=r.payload.device_id,
        )
        for r in records
    )  # fmt: skip
    return tuple(sorted(days, key=lambda d: (d.day, d.source, d.steps, d.method)))


def daily_total(records: Iterable[StepDayRecord]) -> tuple[DailyTotal, ...]:
    """One total a day, ordered by day: the highest source's steps. Phone and tracker count the
    same walk, so adding them would double it; the highest is the most complete record."""
    totals: dict[date, int] = {}
    for record in records:
        steps = record.payload.steps
        totals[record.day] = max(totals.get(record.day, steps), steps)
    return tuple(DailyTotal(day, steps) for day, steps in sorted(totals.items()))


def weekly_mean(records: Iterable[StepDayRecord]) -> tuple[WeeklyMean, ...]:
    """One mean per ISO week (Monday first) that has data, ordered by week."""
    weeks: dict[tuple[int, int], list[int]] = defaultdict(list)
    for total in daily_total(records):
        year, week, _ = total.day.isocalendar()
        weeks[year, week].append(total.steps)
    return tuple(
        WeeklyMean(
            week=f"{year:04d}-W{week:02d}",
            first_day=date.fromisocalendar(year, week, 1),
            days_covered=len(steps),
            mean_steps=mean_half_even(sum(steps), len(steps)),
        )
        for (year, week), steps in sorted(weeks.items())
    )


def monthly_mean(records: Iterable[StepDayRecord]) -> tuple[MonthlyMean, ...]:
    """One mean per calendar month that has data, ordered by month."""
    months: dict[tuple[int, int], list[int]] = defaultdict(list)
    for total in daily_total(records):
        months[total.day.year, total.day.month].append(total.steps)
    return tuple(
        MonthlyMean(
            month=f"{year:04d}-{month:02d}",
            days_covered=len(steps),
            mean_steps=mean_half_even(sum(steps), len(steps)),
        )
        for (year, month), steps in sorted(months.items())
    )
