"""What the pages show, from opened records: the representations' numbers, the reference's
names and plain words (pure; hypothesis where inputs vary)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.identity.i18n import MESSAGES as SIGN_IN_MESSAGES
from bank.mypage.i18n import MESSAGES, format_day, format_month, translator
from bank.mypage.views import (
    Month,
    checkup_view,
    rides_view,
    standard_words,
    station_words,
    steps_view,
)
from bank.vault.checkups import CheckupPayload, ItemPayload
from bank.vault.representations import steps as represent_steps
from bank.vault.rules.judgement import Judgement
from bank.vault.steps import StepPayload, StoredStepDay
from bank.vault.transit import TapPayload

ZONE = ZoneInfo("Asia/Tokyo")
TODAY = date(2026, 12, 7)
JA, EN = translator("ja"), translator("en")


def test_every_word_has_both_languages_and_none_shadows_a_sign_in_pages_word() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == {"ja", "en"}, key
        assert all(text.strip() for text in texts.values()), key
    assert not set(MESSAGES) & set(SIGN_IN_MESSAGES)


@given(st.text(max_size=12))
def test_a_month_that_is_not_one_is_this_month(text: str) -> None:
    shown = Month.parse(text, TODAY)
    assert shown == Month(2026, 12) or text == shown.key


@given(st.integers(min_value=1900, max_value=2100), st.integers(min_value=1, max_value=12))
def test_a_month_is_itself_unless_it_is_to_come(year: int, month: int) -> None:
    shown = Month.parse(f"{year:04d}-{month:02d}", TODAY)
    assert shown == (
        Month(year, month) if Month(year, month) <= Month(2026, 12) else Month(2026, 12)
    )
    year_of = shown.year_ending()
    assert len(year_of) == 12
    assert year_of[-1] == shown
    assert all(a.shifted(1) == b for a, b in itertools.pairwise(year_of))


step_days = st.lists(
    st.tuples(
        st.dates(min_value=date(2025, 12, 1), max_value=date(2026, 12, 7)),
        st.sampled_from(["healthkit", "health_connect", "tracker"]),
        st.integers(min_value=0, max_value=100_000),
    ),
    max_size=60,
    unique_by=lambda t: (t[0], t[1]),
)


@given(step_days, st.integers(min_value=0, max_value=12))
def test_the_steps_page_shows_exactly_the_representations_numbers(
    rows: list[tuple[date, str, int]], back: int
) -> None:
    records = [
        StoredStepDay(day=d, source=s, payload=StepPayload(n, None, "automatic", None), revision=1)
        for d, s, n in rows
    ]
    shown = Month(2026, 12).shifted(-back)
    view = steps_view(records, shown, TODAY, "en", EN)
    in_month = [r for r in records if shown.contains(r.day)]
    totals = represent_steps.daily_total(in_month)
    assert [row.steps for row in view.days] == [f"{t.steps:,}" for t in totals]
    assert view.total_steps == sum(t.steps for t in totals)
    means = {m.month: m for m in represent_steps.monthly_mean(in_month)}
    assert view.mean_steps == (means[shown.key].mean_steps if means else 0)
    # The chart: a column per day of the month, a bar exactly where a day has steps.
    assert len(view.day_chart.columns) == shown.last.day
    by_day = {t.day.day: t.steps for t in totals}
    for number, column in enumerate(view.day_chart.columns, start=1):
        assert len(column.rects) == (1 if by_day.get(number) else 0)
    yearly = {m.month: m.mean_steps for m in represent_steps.monthly_mean(records)}
    assert [row.first for row in view.months] == [
        f"{yearly[m.key]:,}" if m.key in yearly else "-" for m in shown.year_ending()
    ]


def _tap(
    tap_id: str, kind: str, at: datetime, station: str, operator: str = "sapporo-subway"
) -> TapPayload:
    return TapPayload(
        operator=operator, tap_id=tap_id, card_last4="4242", tap_type=kind, tapped_at=at,
        station=station, line=station[0], fare_yen=250 if kind == "exit" else None,
        fare_product="stored_value",
    )  # fmt: skip


def test_rides_name_subway_stations_and_leave_another_operators_stops_as_they_are() -> None:
    start = datetime(2026, 11, 30, 23, 50, tzinfo=ZONE)
    taps = [
        (start.date(), _tap("a", "entry", start, "N07")),
        (start.date(), _tap("b", "exit", start + timedelta(minutes=15), "H14")),
        (
            date(2026, 11, 2),
            _tap("c", "entry", datetime(2026, 11, 2, 8, tzinfo=ZONE), "N07", "city-bus"),
        ),
    ]
    view = rides_view(taps, Month(2026, 11), TODAY, ZONE, "ja", JA)
    assert view.ride_count == 2
    assert view.complete_count == 1
    assert view.fares_yen == 250
    named = [(r.from_station, r.to_station) for r in view.rides]
    assert ("N07", "記録なし") in named  # a bus stop reading N07 is not the station
    assert ("大通 (N07, 南北線)", "福住 (H14, 東豊線)") in named
    assert view.rides[-1].exited == "2026年12月1日 00:05"  # local time, past midnight
    assert [row.first for row in view.months][-1] == "2"
    assert station_words("sapporo-subway", "N07", "en", EN) == "Odori (N07, Namboku Line)"


def _exam(**values: float | str) -> CheckupPayload:
    units = {"hba1c": "%", "hdl": "mg/dL", "tg": "mg/dL", "urine_glucose": "", "height": "cm"}
    return CheckupPayload(
        institution_code="0112345678", exam_id="E1", exam_date=date(2026, 11, 3),
        insurer_number="06139981", sex="female", fasting=None,
        items=tuple(ItemPayload(k, v, units[k], "", "") for k, v in values.items()),
    )  # fmt: skip


def test_each_checkup_value_is_judged_in_words_with_the_standard_values_that_apply() -> None:
    view = checkup_view(_exam(hba1c=5.8, hdl=38, tg=160, urine_glucose="-", height=160.0), "ja", JA)
    rows = {row.name: row for row in view.items}
    assert rows["HbA1c(NGSP)"].judgement is Judgement.GUIDANCE
    assert rows["HbA1c(NGSP)"].words.startswith("保健指導の対象となる値です")
    assert rows["HbA1c(NGSP)"].standard == "保健指導: 5.6以上 / 受診勧奨: 6.5以上"
    assert rows["HDLコレステロール"].standard == "保健指導: 40未満"
    assert rows["HDLコレステロール"].judgement is Judgement.GUIDANCE
    # Fasting unrecorded: the non-fasting value (175) applies, so 160 is normal.
    assert rows["中性脂肪"].standard == "保健指導: 175以上 / 受診勧奨: 300以上"
    assert rows["中性脂肪"].judgement is Judgement.NORMAL
    assert rows["尿糖"].value == "\u2212(陰性)"
    assert rows["尿糖"].standard == "保健指導: +以上"
    assert rows["身長"].words == "判定の基準がない項目です"
    assert rows["身長"].standard == ""
    assert rows["身長"].value == "160 cm"
    assert standard_words("waist", sex="male", fasting=None, t=EN) == "guidance: 85 or more"


@pytest.mark.parametrize(
    ("language", "day", "month"),
    [("ja", "2026年11月3日", "2026年11月"), ("en", "3 Nov 2026", "November 2026")],
)
def test_dates_read_naturally_in_each_language(language: str, day: str, month: str) -> None:
    assert format_day(date(2026, 11, 3), language) == day
    assert format_month(2026, 11, language) == month
