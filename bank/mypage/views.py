"""What each page shows, from opened records: pure, and numbers only from the representations.

Every count, total, mean and judgement here comes from `bank.vault.representations`, the
functions the resident API (and a partner's release) answers with, so a page, its chart and the
API always agree. This module only picks the month, adds the reference's names (stations,
checkup items) and the words, and lays out the charts (`bank.mypage.charts`).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bank import reference
from bank.mypage.charts import Chart, Column, Fill, Segment, bar_chart
from bank.mypage.i18n import format_day, format_month, format_number, format_time, short_month
from bank.vault.representations import checkups as represent_checkups
from bank.vault.representations import steps as represent_steps
from bank.vault.representations import transit as represent_transit
from bank.vault.representations.checkups import CheckupRecord
from bank.vault.representations.steps import StepDayRecord
from bank.vault.representations.transit import TapRecord
from bank.vault.rules.judgement import URINE_LEVELS, Judgement, Level, judgement_rule
from bank.vault.rules.transit import SUBWAY, Ride

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
YEAR_OF_MONTHS = 12  # the by-month charts: the shown month and the eleven before it


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str | None, today: date) -> Month:
        """`2026-11`; anything else (absent, malformed, after this month) is this month."""
        match = _MONTH.match(text or "")
        this_month = cls.of(today)
        if match is None:
            return this_month
        chosen = cls(int(match[1]), int(match[2]))
        return chosen if chosen.year >= 1900 and chosen <= this_month else this_month

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last

    def year_ending(self) -> tuple[Month, ...]:
        """This month and the eleven before it, oldest first."""
        return tuple(self.shifted(-back) for back in range(YEAR_OF_MONTHS - 1, -1, -1))


@dataclass(frozen=True)
class MonthNav:
    shown: Month
    label: str
    previous: Month
    following: Month | None  # None: the shown month is this month


def month_nav(shown: Month, today: date, language: str) -> MonthNav:
    following = shown.shifted(1)
    return MonthNav(
        shown=shown,
        label=format_month(shown.year, shown.month, language),
        previous=shown.shifted(-1),
        following=following if following <= Month.of(today) else None,
    )


# --- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepDayRow:
    day: str
    steps: str
    sources: str


@dataclass(frozen=True)
class MonthRow:
    month: str
    first: str  # the figure (mean steps, rides)
    second: str  # the second figure (days recorded, complete rides)


@dataclass(frozen=True)
class StepsView:
    nav: MonthNav
    days: tuple[StepDayRow, ...]
    days_recorded: int
    total_steps: int
    mean_steps: int
    day_chart: Chart
    months: tuple[MonthRow, ...]
    month_chart: Chart


def _source_words(source: str, method: str, t: dict[str, str]) -> str:
    words = t.get(f"platform_{source}", source)
    return f"{words} ({t['method_manual']})" if method == "manual" else words


def steps_view(
    records: Sequence[StepDayRecord], shown: Month, today: date, language: str, t: dict[str, str]
) -> StepsView:
    """`records`: the resident's step days over the year ending with `shown`."""
    in_month = [record for record in records if shown.contains(record.day)]
    totals = represent_steps.daily_total(in_month)
    sources: dict[date, list[str]] = defaultdict(list)
    for source_day in represent_steps.daily(in_month):
        sources[source_day.day].append(_source_words(source_day.source, source_day.method, t))
    by_day = {total.day: total.steps for total in totals}
    means = {mean.month: mean for mean in represent_steps.monthly_mean(records)}
    shown_mean = means.get(shown.key)
    day_columns = []
    for number in range(1, shown.last.day + 1):
        day = date(shown.year, shown.month, number)
        steps = by_day.get(day)
        said = t["no_record"] if steps is None else t["steps_n"].format(n=format_number(steps))
        day_columns.append(
            Column(
                label=str(number) if number == 1 or number % 5 == 0 else "",
                title=f"{format_day(day, language)}: {said}",
                segments=(Segment(steps),) if steps is not None else (),
            )
        )
    month_rows: list[MonthRow] = []
    month_columns: list[Column] = []
    for month in shown.year_ending():
        mean = means.get(month.key)
        label = format_month(month.year, month.month, language)
        month_rows.append(
            MonthRow(label, format_number(mean.mean_steps) if mean else "-",
                     str(mean.days_covered) if mean else "0")
        )  # fmt: skip
        month_columns.append(
            Column(
                label=short_month(month.month, language),
                title=f"{label}: "
                + (
                    t["mean_steps_n"].format(n=format_number(mean.mean_steps))
                    if mean
                    else t["no_record"]
                ),
                segments=(Segment(mean.mean_steps),) if mean else (),
            )
        )
    return StepsView(
        nav=month_nav(shown, today, language),
        days=tuple(
            StepDayRow(
                format_day(total.day, language),
                format_number(total.steps),
                ("、" if language == "ja" else ", ").join(sources[total.day]),
            )
            for total in totals
        ),
        days_recorded=shown_mean.days_covered if shown_mean else 0,
        total_steps=sum(total.steps for total in totals),
        mean_steps=shown_mean.mean_steps if shown_mean else 0,
        day_chart=bar_chart(day_columns),
        months=tuple(month_rows),
        month_chart=bar_chart(month_columns),
    )


# --- rides ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RideRow:
    entered: str
    from_station: str
    exited: str
    to_station: str
    fare: str
    operator: str
    complete: bool


@dataclass(frozen=True)
class RidesView:
    nav: MonthNav
    rides: tuple[RideRow, ...]
    ride_count: int
    complete_count: int
    fares_yen: int
    months: tuple[MonthRow, ...]
    month_chart: Chart


@functools.cache
def _stations() -> dict[str, reference.Station]:
    return {station.code: station for station in reference.stations()}


def station_words(operator: str, code: str | None, language: str, t: dict[str, str]) -> str:
    """A subway station's name beside its code (大通 (N07)); another operator's stop id as it
    is: the reference covers the municipal subway only, and a bus stop reading N07 is not it."""
    if code is None:
        return t["no_tap"]
    station = _stations().get(code) if operator == SUBWAY else None
    if station is None:
        return code
    name = station.name_ja if language == "ja" else station.name_en
    line = t["line_suffix"].format(line=station.line_ja if language == "ja" else station.line_en)
    return f"{name} ({code}, {line})"


def _operator_words(operator: str, t: dict[str, str]) -> str:
    return t.get(f"operator_{operator.replace('-', '_')}", operator)


def _moment(moment: datetime | None, zone: ZoneInfo, language: str, t: dict[str, str]) -> str:
    return t["no_tap"] if moment is None else format_time(moment.astimezone(zone), language)


def _ride_row(ride: Ride, zone: ZoneInfo, language: str, t: dict[str, str]) -> RideRow:
    fare = "-" if ride.fare_yen is None else f"{format_number(ride.fare_yen)}"
    return RideRow(
        entered=_moment(ride.entered_at, zone, language, t),
        from_station=station_words(ride.operator, ride.from_station, language, t),
        exited=_moment(ride.exited_at, zone, language, t),
        to_station=station_words(ride.operator, ride.to_station, language, t),
        fare=fare if language == "en" or fare == "-" else f"{fare}円",
        operator=_operator_words(ride.operator, t),
        complete=ride.complete,
    )


def _month_counts(taps: Sequence[TapRecord], zone: ZoneInfo) -> tuple[int, int]:
    """A month's taps' rides and complete rides, added up as the API's month of rides adds
    them (`transit.monthly_rides` over the taps stored under the month's days)."""
    counts = represent_transit.monthly_rides(taps, zone=zone)
    return sum(c.rides for c in counts), sum(c.complete_rides for c in counts)


def rides_view(
    records: Sequence[tuple[date, TapRecord]],
    shown: Month,
    today: date,
    zone: ZoneInfo,
    language: str,
    t: dict[str, str],
) -> RidesView:
    """`records`: (local day, tap) of the resident's taps over the year ending with `shown`."""
    by_month: dict[Month, list[TapRecord]] = defaultdict(list)
    for day, tap in records:
        by_month[Month.of(day)].append(tap)
    shown_taps = by_month.get(shown, [])
    rides = represent_transit.rides(shown_taps)
    ride_count, complete_count = _month_counts(shown_taps, zone)
    rows: list[MonthRow] = []
    columns: list[Column] = []
    for month in shown.year_ending():
        total, complete = _month_counts(by_month.get(month, []), zone)
        label = format_month(month.year, month.month, language)
        rows.append(MonthRow(label, str(total), str(complete)))
        columns.append(
            Column(
                label=short_month(month.month, language),
                title=f"{label}: {t['rides_n'].format(n=total, complete=complete)}",
                segments=(Segment(complete), Segment(total - complete, Fill.HATCHED)),
            )
        )
    return RidesView(
        nav=month_nav(shown, today, language),
        rides=tuple(_ride_row(ride, zone, language, t) for ride in rides),
        ride_count=ride_count,
        complete_count=complete_count,
        fares_yen=sum(ride.fare_yen or 0 for ride in rides),
        months=tuple(rows),
        month_chart=bar_chart(columns),
    )


# --- checkups --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgedRow:
    name: str
    value: str
    judgement: Judgement
    words: str
    standard: str


@dataclass(frozen=True)
class CheckupView:
    exam_date: str
    institution_code: str
    fasting: str
    items: tuple[JudgedRow, ...]


def _number(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _value_words(value: float | str, unit: str, t: dict[str, str]) -> str:
    """A value with its unit; a urine result (ordinal, no unit) with its meaning in words."""
    if value == "-":
        return t["urine_negative"]
    if value == "±":
        return t["urine_trace"]
    if isinstance(value, str) and value in URINE_LEVELS:
        return t["urine_positive"].format(level=value)
    return f"{_number(value)} {unit}".strip()


def _level_words(level: Level) -> str:
    return URINE_LEVELS[int(level.value)] if level.ordinal else _number(level.value)


def standard_words(item: str, *, sex: str, fasting: bool | None, t: dict[str, str]) -> str:
    """The standard's guidance and referral values that apply to this resident, in words
    (保健指導: 100以上 / 受診勧奨: 126以上); "" for an item with none."""
    found = next((row for row in reference.checkup_items() if row.item == item), None)
    rule = judgement_rule(found) if found is not None else None
    if rule is None:
        return ""
    parts = []
    named = (("standard_guidance", rule.guidance), ("standard_referral", rule.referral))
    for key, threshold in named:
        level = threshold.at(sex=sex, fasting=fasting) if threshold is not None else None
        if threshold is None or level is None:
            continue
        words = _level_words(level)
        bound = t["below" if threshold.below else "at_or_above"].format(value=words)
        parts.append(t[key].format(value=bound))
    return " / ".join(parts)


def checkup_view(exam: CheckupRecord, language: str, t: dict[str, str]) -> CheckupView:
    """The checkup's every value beside its judgement, in the checkup's own item order."""
    (values,) = represent_checkups.values([exam])
    (flags,) = represent_checkups.judgement_flags([exam])
    names = {item.item: item for item in reference.checkup_items()}
    rows = []
    for value, flag in zip(values.items, flags.flags, strict=True):
        named = names.get(value.item)
        name = value.item if named is None else named.name_ja if language == "ja" else named.name_en
        rows.append(
            JudgedRow(
                name=name,
                value=_value_words(value.value, value.unit, t),
                judgement=flag.judgement,
                words=t[f"judged_{flag.judgement.value}"],
                standard=standard_words(value.item, sex=values.sex, fasting=values.fasting, t=t),
            )
        )
    fasting = {True: t["fasting_yes"], False: t["fasting_no"], None: ""}[values.fasting]
    return CheckupView(
        exam_date=format_day(values.exam_date, language),
        institution_code=values.institution_code,
        fasting=fasting,
        items=tuple(rows),
    )


# --- home ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holdings:
    step_days: int
    steps_span: tuple[date, date] | None
    rides: int
    rides_span: tuple[date, date] | None
    checkups: int
    latest_checkup: date | None
    cards: int
    memberships: int


def holdings(
    steps: Sequence[StepDayRecord],
    taps: Sequence[tuple[date, TapRecord]],
    exams: Sequence[CheckupRecord],
    *,
    cards: int,
    memberships: int,
) -> Holdings:
    totals = represent_steps.daily_total(steps)
    exam_values = represent_checkups.values(exams)
    tap_days = sorted(day for day, _ in taps)
    return Holdings(
        step_days=len(totals),
        steps_span=(totals[0].day, totals[-1].day) if totals else None,
        rides=len(represent_transit.rides([tap for _, tap in taps])),
        rides_span=(tap_days[0], tap_days[-1]) if tap_days else None,
        checkups=len(exam_values),
        latest_checkup=exam_values[-1].exam_date if exam_values else None,
        cards=cards,
        memberships=memberships,
    )
