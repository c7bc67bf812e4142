"""Representations (pure): each code's invariants over any valid set of opened records, the
registry a consent will name them by, and the month summary's rounding over HTTP."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from random import Random
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import bank.vault.checkups as vault_checkups
import bank.vault.steps as vault_steps
import bank.vault.transit as vault_transit
from bank.reference import checkup_items
from bank.vault.checkups import CheckupPayload, ItemPayload
from bank.vault.representations import REPRESENTATIONS, Representation, for_kind
from bank.vault.representations import checkups as represent_checkups
from bank.vault.representations import steps as represent_steps
from bank.vault.representations import transit as represent_transit
from bank.vault.representations.steps import mean_half_even
from bank.vault.rules.judgement import URINE_LEVELS, Judgement, judge
from bank.vault.rules.steps import PLATFORMS
from bank.vault.rules.transit import MAX_RIDE
from bank.vault.steps import StepPayload, StoredStepDay
from bank.vault.transit import TapPayload
from tests.bank.vault.conftest import Residents

TOKYO = ZoneInfo("Asia/Tokyo")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "vault.md"

# --- records as the vault opens them ------------------------------------------------------------

# A window over a year's end and across ISO weeks that straddle months and years (2026-W01 starts
# on 2025-12-29).
_DAYS = st.dates(min_value=date(2025, 11, 20), max_value=date(2026, 3, 10))


@st.composite
def _step_day(draw: st.DrawFn, day: date, source: str) -> StoredStepDay:
    steps = draw(st.integers(0, 100_000))
    return StoredStepDay(
        day=day, source=source, revision=draw(st.integers(1, 3)),
        payload=StepPayload(steps=steps, hourly=None, method=draw(st.sampled_from(["automatic",
                            "manual"])), device_id=draw(st.none() | st.text(max_size=8))),
    )  # fmt: skip


@st.composite
def step_days(draw: st.DrawFn) -> list[StoredStepDay]:
    """A resident's days: at most one record per (day, source), as the natural key guarantees."""
    keys = draw(
        st.lists(st.tuples(_DAYS, st.sampled_from(sorted(PLATFORMS))), unique=True, max_size=60)
    )
    return [draw(_step_day(day, source)) for day, source in keys]


_CARDS = ("1111", "2222", "3333")
_OPERATORS = ("sapporo-subway", "jotetsu-bus")
_T0 = datetime(2025, 11, 30, 20, 0, tzinfo=UTC)  # Tokyo's December begins 4 hours after


@st.composite
def taps(draw: st.DrawFn) -> list[TapPayload]:
    """Taps of a few cards and operators within a day across a month's end (in Tokyo); tap ids
    unique per operator, as the natural key guarantees; times often equal, to test the ties."""
    count = draw(st.integers(0, 30))
    out = []
    for number in range(count):
        tap_type = draw(st.sampled_from(["entry", "exit"]))
        product = draw(st.sampled_from(["stored_value", "commuter_pass"]))
        out.append(
            TapPayload(
                operator=draw(st.sampled_from(_OPERATORS)), tap_id=f"t{number}",
                card_last4=draw(st.sampled_from(_CARDS)), tap_type=tap_type,
                tapped_at=_T0 + timedelta(minutes=draw(st.integers(0, 24 * 60)) // 5 * 5),
                station="N07", line="N",
                fare_yen=None if tap_type == "entry" else (0 if product == "commuter_pass"
                                                           else 250),
                fare_product=product,
            )
        )  # fmt: skip
    return out


_ITEMS = checkup_items()


@st.composite
def _checkup_item(draw: st.DrawFn) -> ItemPayload:
    reference = draw(st.sampled_from(_ITEMS))
    value: float | str = (
        draw(st.sampled_from(URINE_LEVELS))
        if reference.item.startswith("urine_")
        else draw(st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 1)))
    )
    return ItemPayload(item=reference.item, value=value, unit=reference.unit,
                       jlac10=reference.jlac10, loinc=reference.loinc)  # fmt: skip


@st.composite
def checkups(draw: st.DrawFn) -> list[CheckupPayload]:
    count = draw(st.integers(0, 4))
    return [
        CheckupPayload(
            institution_code=draw(st.sampled_from(["0110000001", "0110000002"])),
            exam_id=f"e{number}", exam_date=draw(_DAYS), insurer_number="06010014",
            sex=draw(st.sampled_from(["male", "female"])), fasting=draw(st.none() | st.booleans()),
            items=tuple(draw(st.lists(_checkup_item(), max_size=16))),
        )
        for number in range(count)
    ]  # fmt: skip


def _apply_all(kind: str, records: Sequence[object]) -> dict[str, tuple[object, ...]]:
    return {r.code: r.apply(records, TOKYO) for r in for_kind(kind)}


# --- steps ----------------------------------------------------------------------------------


@given(step_days())
def test_the_daily_total_is_the_highest_source_of_each_day(days: list[StoredStepDay]) -> None:
    by_day: dict[date, list[int]] = defaultdict(list)
    for day in days:
        by_day[day.day].append(day.payload.steps)
    totals = represent_steps.daily_total(days)
    assert [(t.day, t.steps) for t in totals] == [(d, max(s)) for d, s in sorted(by_day.items())]


@given(step_days())
def test_raw_days_release_every_record_once_without_its_revision(
    days: list[StoredStepDay],
) -> None:
    released = represent_steps.daily(days)
    assert sorted((d.day, d.source, d.steps) for d in released) == sorted(
        (d.day, d.source, d.payload.steps) for d in days
    )
    assert "revision" not in {f.name for f in dataclasses.fields(represent_steps.StepDay)}


@given(step_days())
def test_a_monthly_mean_times_its_days_is_the_months_total_within_rounding(
    days: list[StoredStepDay],
) -> None:
    sums: dict[str, list[int]] = defaultdict(list)
    for total in represent_steps.daily_total(days):
        sums[f"{total.day:%Y-%m}"].append(total.steps)
    means = represent_steps.monthly_mean(days)
    assert [m.month for m in means] == sorted(sums)
    for mean in means:
        month = sums[mean.month]
        assert mean.days_covered == len(month)  # days without data are not counted
        assert 2 * abs(mean.mean_steps * mean.days_covered - sum(month)) <= mean.days_covered
        assert mean.mean_steps == round(Fraction(sum(month), len(month)))  # half to even


@given(step_days())
def test_a_weekly_mean_covers_the_days_with_data_of_one_iso_week(
    days: list[StoredStepDay],
) -> None:
    totals = represent_steps.daily_total(days)
    weeks = represent_steps.weekly_mean(days)
    assert sum(w.days_covered for w in weeks) == len(totals)
    assert [w.week for w in weeks] == sorted({f"{t.day:%G-W%V}" for t in totals})
    for week in weeks:
        assert week.first_day.isoweekday() == 1  # Monday
        inside = [t.steps for t in totals if 0 <= (t.day - week.first_day).days < 7]
        assert week.week == f"{week.first_day:%G-W%V}"
        assert week.days_covered == len(inside)
        assert week.mean_steps == round(Fraction(sum(inside), len(inside)))


def test_an_iso_week_spans_the_years_end_and_means_round_half_to_even() -> None:
    def day(on: date, steps: int, source: str = "healthkit") -> StoredStepDay:
        return StoredStepDay(on, source, StepPayload(steps, None, "automatic", None), 1)

    days = [
        day(date(2025, 12, 29), 1000),  # Monday of 2026-W01
        day(date(2025, 12, 29), 4000, "tracker"),  # the same day seen twice: 4000 counts
        day(date(2026, 1, 4), 3001),  # its Sunday
        day(date(2026, 1, 5), 10),  # Monday of 2026-W02
    ]
    assert represent_steps.weekly_mean(days) == (
        represent_steps.WeeklyMean("2026-W01", date(2025, 12, 29), 2, 3500),  # 3500.5 -> 3500
        represent_steps.WeeklyMean("2026-W02", date(2026, 1, 5), 1, 10),
    )
    assert represent_steps.monthly_mean(days) == (
        represent_steps.MonthlyMean("2025-12", 1, 4000),
        represent_steps.MonthlyMean("2026-01", 2, 1506),  # 1505.5 -> 1506
    )


@given(st.integers(0, 10**12), st.integers(1, 10**6))
@example(5, 2)
@example(7, 2)
@example(0, 1)
def test_the_mean_rounds_half_to_even_exactly(total: int, count: int) -> None:
    assert mean_half_even(total, count) == round(Fraction(total, count))


# --- transit --------------------------------------------------------------------------------


@given(taps())
def test_rides_use_every_tap_once_and_never_pair_across_cards_or_operators(
    tapped: list[TapPayload],
) -> None:
    by_id = {(t.operator, t.tap_id): t for t in tapped}
    rides = represent_transit.rides(tapped)
    used = Counter(
        (ride.operator, tap_id)
        for ride in rides
        for tap_id in (ride.entry_tap_id, ride.exit_tap_id)
        if tap_id is not None
    )
    assert used == Counter(list(by_id))  # every tap in exactly one ride
    for ride in rides:
        sides = [by_id[ride.operator, i] for i in (ride.entry_tap_id, ride.exit_tap_id) if i]
        assert {t.card_last4 for t in sides} == {ride.card}
        assert ride.complete == (len(sides) == 2)
        if ride.complete:
            entry, exit_ = sides
            assert (entry.tap_type, exit_.tap_type) == ("entry", "exit")
            assert timedelta(0) < exit_.tapped_at - entry.tapped_at <= MAX_RIDE


@given(taps())
def test_monthly_rides_count_each_ride_once_in_the_local_month_it_began(
    tapped: list[TapPayload],
) -> None:
    rides = represent_transit.rides(tapped)
    counts = represent_transit.monthly_rides(tapped, zone=TOKYO)
    assert sum(c.rides for c in counts) == len(rides)
    assert sum(c.complete_rides for c in counts) == sum(r.complete for r in rides)
    firsts = [r.entered_at or r.exited_at for r in rides]
    began = Counter(f"{first.astimezone(TOKYO):%Y-%m}" for first in firsts if first is not None)
    assert {c.month: c.rides for c in counts} == began


def test_a_ride_that_begins_on_the_last_evening_of_november_in_utc_is_decembers_in_tokyo() -> None:
    def tap(tap_id: str, tap_type: str, at: datetime) -> TapPayload:
        return TapPayload("sapporo-subway", tap_id, "1111", tap_type, at, "N07", "N",
                          None if tap_type == "entry" else 250, "stored_value")  # fmt: skip

    evening = datetime(2025, 11, 30, 15, 30, tzinfo=UTC)  # 00:30 on 1 December in Tokyo
    tapped = [tap("a", "entry", evening), tap("b", "exit", evening + timedelta(minutes=20))]
    assert represent_transit.monthly_rides(tapped, zone=TOKYO) == (
        represent_transit.MonthlyRides("2025-12", 1, 1),
    )
    assert represent_transit.monthly_rides(tapped, zone=ZoneInfo("UTC")) == (
        represent_transit.MonthlyRides("2025-11", 1, 1),
    )


@given(taps())
def test_raw_taps_release_every_tap_in_time_order(tapped: list[TapPayload]) -> None:
    released = represent_transit.taps(tapped)
    assert Counter((t.operator, t.tap_id) for t in released) == Counter(
        (t.operator, t.tap_id) for t in tapped
    )
    assert [t.tapped_at for t in released] == sorted(t.tapped_at for t in tapped)


# --- checkups -------------------------------------------------------------------------------


@given(checkups())
def test_judgement_flags_never_carry_a_value(exams: list[CheckupPayload]) -> None:
    assert {f.name for f in dataclasses.fields(represent_checkups.JudgementFlags)} == {
        "exam_date", "flags"
    }  # fmt: skip
    assert {f.name for f in dataclasses.fields(represent_checkups.ItemFlag)} == {
        "item", "judgement"
    }  # fmt: skip
    flagged = represent_checkups.judgement_flags(exams)
    released = represent_checkups.values(exams)
    assert [f.exam_date for f in flagged] == [v.exam_date for v in released]
    for flags, exam in zip(flagged, released, strict=True):
        assert [f.item for f in flags.flags] == [i.item for i in exam.items]
        for flag, item in zip(flags.flags, exam.items, strict=True):
            assert type(flag.judgement) is Judgement
            assert flag.judgement is judge(item.item, item.value, sex=exam.sex,
                                           fasting=exam.fasting)  # fmt: skip


@given(checkups())
def test_all_values_release_every_item_of_every_checkup_but_the_insurer(
    exams: list[CheckupPayload],
) -> None:
    released = represent_checkups.values(exams)
    assert sorted((v.exam_id, v.items) for v in released) == sorted(
        (e.exam_id, tuple(represent_checkups.CheckupValue(i.item, i.value, i.unit, i.jlac10,
                                                          i.loinc) for i in e.items))
        for e in exams
    )  # fmt: skip
    assert "insurer_number" not in {
        f.name for f in dataclasses.fields(represent_checkups.CheckupValues)
    }


# --- every representation -------------------------------------------------------------------


@settings(max_examples=50)
@given(step_days(), taps(), checkups(), st.randoms(use_true_random=False))
def test_every_representation_is_deterministic_and_order_blind(
    days: list[StoredStepDay],
    tapped: list[TapPayload],
    exams: list[CheckupPayload],
    random: Random,
) -> None:
    for kind, records in (
        (vault_steps.STEPS.code, days),
        (vault_transit.TAPS.code, tapped),
        (vault_checkups.CHECKUPS.code, exams),
    ):
        once = _apply_all(kind, records)
        shuffled = list(records)
        random.shuffle(shuffled)
        assert _apply_all(kind, shuffled) == once == _apply_all(kind, records)


def test_every_representation_of_no_records_is_empty() -> None:
    for representation in REPRESENTATIONS.values():
        assert representation.apply([], TOKYO) == ()


def test_codes_are_stable_names_of_the_three_record_kinds() -> None:
    assert list(REPRESENTATIONS) == [
        "steps.daily", "steps.daily_total", "steps.weekly_mean", "steps.monthly_mean",
        "transit.taps", "transit.rides", "transit.monthly_rides",
        "checkups.values", "checkups.judgement_flags",
    ]  # fmt: skip
    assert {r.kind for r in REPRESENTATIONS.values()} == {
        vault_steps.STEPS.code, vault_transit.TAPS.code, vault_checkups.CHECKUPS.code
    }  # fmt: skip
    for code, representation in REPRESENTATIONS.items():
        assert representation.code == code
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", code)


@pytest.mark.parametrize("representation", REPRESENTATIONS.values(), ids=REPRESENTATIONS.keys())
def test_docs_list_every_code_and_what_it_releases(representation: Representation) -> None:
    assert f"`{representation.code}`" in DOCS.read_text(encoding="utf-8")


# --- over HTTP: the summary is the representation -------------------------------------------


async def test_the_month_summary_rounds_its_mean_half_to_even(
    client: httpx.AsyncClient, residents: Residents
) -> None:
    resident = await residents.new()
    days = [
        {"day": "2025-01-06", "steps": 1, "platform": "healthkit"},
        {"day": "2025-01-07", "steps": 2, "platform": "healthkit"},  # 1.5 -> 2
        {"day": "2025-02-03", "steps": 2, "platform": "healthkit"},
        {"day": "2025-02-04", "steps": 3, "platform": "healthkit"},  # 2.5 -> 2
        {"day": "2025-02-04", "steps": 1, "platform": "tracker"},  # lower: not counted
    ]
    pushed = await client.post(
        "/v1/me/steps/", json={"days": days}, headers=resident.headers("records:write")
    )
    assert pushed.status_code == 200, pushed.text
    for month, mean in (("2025-01", 2), ("2025-02", 2)):
        summary = await client.get(
            "/v1/me/steps/summary", params={"month": month}, headers=resident.headers()
        )
        assert summary.status_code == 200, summary.text
        assert (summary.json()["days_recorded"], summary.json()["mean_steps"]) == (2, mean)
