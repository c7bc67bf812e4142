"""The synthetic city: deterministic, valid for the bank's rules, and shaped like a city."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bank.auth.passwords import check_new_password
from bank.demo import (
    Checkup,
    StepDay,
    SyntheticCity,
    SyntheticResident,
    Tap,
    checkups_for,
    make_resident,
    steps_for,
    taps_for,
)
from bank.demo.synth_checkups import all_clinics
from bank.demo.synth_days import day_off, plans
from bank.demo.synth_people import NEAREST_STATIONS
from bank.demo.synth_subway import FARES, best_ride, fare_for, route, same_place
from bank.reference import checkup_items, station_codes, stations, wards
from bank.vault.links import member_key, normalise_card_number
from bank.vault.rules.steps import StepDayIn, validate_step_day

TOKYO = ZoneInfo("Asia/Tokyo")
URINE = {"-", "±", "+", "2+", "3+"}
seeds = st.integers(min_value=0, max_value=2**63)
starts = st.dates(min_value=date(2022, 1, 1), max_value=date(2026, 12, 31))


def _values(checkup: Checkup) -> dict[str, float | str]:
    return {v.item: v.value for v in checkup.items}


def _num(checkup: Checkup, item: str) -> float:
    value = _values(checkup)[item]
    assert isinstance(value, float)
    return value


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags)


# -- samples shared by the distribution tests (fixed seeds: the figures are reproducible) -------


@pytest.fixture(scope="module")
def population() -> list[SyntheticResident]:
    return list(SyntheticCity(2024, 3000).residents())


@pytest.fixture(scope="module")
def step_days(population: list[SyntheticResident]) -> list[tuple[SyntheticResident, StepDay]]:
    return [(r, d) for r in population[:400] for d in steps_for(r, date(2024, 11, 1), 90)]


@pytest.fixture(scope="module")
def taps(population: list[SyntheticResident]) -> list[tuple[SyntheticResident, Tap]]:
    return [(r, t) for r in population[:300] for t in taps_for(r, date(2025, 4, 7), 56)]


@pytest.fixture(scope="module")
def checkups(population: list[SyntheticResident]) -> list[tuple[SyntheticResident, Checkup]]:
    return [(r, c) for r in population for c in checkups_for(r, date(2024, 1, 1), 366)]


@pytest.fixture(scope="module")
def midlife(checkups: list[tuple[SyntheticResident, Checkup]]) -> list[Checkup]:
    """Checkups at the 特定健診 ages, 40-74."""
    return [c for r, c in checkups if 40 <= r.age_in(c.exam_date.year) <= 74]


# -- determinism --------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=seeds, size=st.integers(1, 6), start=starts, days=st.integers(1, 20))
def test_the_same_seed_builds_the_same_city(seed: int, size: int, start: date, days: int) -> None:
    first = list(SyntheticCity(seed, size).window(start, days))
    second = list(SyntheticCity(seed, size).window(start, days))
    assert first == second
    assert [w.resident.password for w in first] == [w.resident.password for w in second]


@settings(max_examples=15, deadline=None)
@given(a=seeds, b=seeds)
def test_different_seeds_build_different_cities(a: int, b: int) -> None:
    if a == b:
        return
    one, other = SyntheticCity(a, 10), SyntheticCity(b, 10)
    assert [r.card_number for r in one.residents()] != [r.card_number for r in other.residents()]
    assert [(r.birth_year, r.ward_code, r.steps_profile.mean_steps) for r in one.residents()] != [
        (r.birth_year, r.ward_code, r.steps_profile.mean_steps) for r in other.residents()
    ]
    assert {r.password for r in one.residents()}.isdisjoint(r.password for r in other.residents())


@settings(max_examples=5, deadline=None)
@given(seed=seeds)
def test_resident_i_is_the_same_in_a_small_and_a_large_city(seed: int) -> None:
    small, large = (
        list(SyntheticCity(seed, 50).residents()),
        list(SyntheticCity(seed, 500).residents()),
    )
    assert small == large[:50]
    start = date(2025, 3, 1)
    assert list(SyntheticCity(seed, 50).window(start, 14)) == list(
        itertools.islice(SyntheticCity(seed, 500).window(start, 14), 50)  # streamed lazily
    )


@settings(max_examples=15, deadline=None)
@given(seed=seeds, index=st.integers(0, 10_000), start=starts, split=st.integers(1, 20))
def test_a_day_reads_the_same_in_every_window(
    seed: int, index: int, start: date, split: int
) -> None:
    resident = make_resident(seed, index)
    middle = start + timedelta(days=split)
    whole_steps = list(steps_for(resident, start, 30))
    assert whole_steps == list(steps_for(resident, start, split)) + list(
        steps_for(resident, middle, 30 - split)
    )
    whole_taps = list(taps_for(resident, start, 30))
    assert whole_taps == list(taps_for(resident, start, split)) + list(
        taps_for(resident, middle, 30 - split)
    )
    late = date(start.year, 1, 1)
    assert list(checkups_for(resident, late, 730)) == list(checkups_for(resident, late, 365)) + (
        list(checkups_for(resident, late + timedelta(days=365), 365))
    )


def test_the_city_hands_out_its_residents_by_index() -> None:
    city = SyntheticCity(5, 3)
    assert len(city) == 3
    assert city.resident(2) == make_resident(5, 2)
    assert [r.index for r in city.residents()] == [0, 1, 2]
    with pytest.raises(IndexError):
        city.resident(3)
    with pytest.raises(ValueError, match="residents"):
        SyntheticCity(5, -1)


# -- residents ----------------------------------------------------------------------------------


def test_wards_follow_their_population_shares(population: list[SyntheticResident]) -> None:
    counts = Counter(r.ward_code for r in population)
    total = sum(w.population for w in wards())
    for ward in wards():
        assert counts[ward.code] / len(population) == pytest.approx(
            ward.population / total, abs=0.02
        )


def test_ages_and_sexes_look_like_an_adult_city(population: list[SyntheticResident]) -> None:
    ages = [r.age_in(2025) for r in population]
    assert min(ages) >= 20
    assert max(ages) <= 89
    bands = Counter(age // 10 * 10 for age in ages)
    assert bands[40] > bands[20]  # the pyramid bulges in the middle
    assert bands[80] < bands[70]  # and thins among the oldest
    women = [r.sex == "female" for r in population]
    assert 0.50 <= _share(women) <= 0.58
    old = [r.sex == "female" for r in population if r.age_in(2025) >= 80]
    assert _share(old) > _share(women)


def test_home_stations_are_in_or_near_the_home_ward(population: list[SyntheticResident]) -> None:
    ward_of = {s.code: s.ward_code for s in stations()}
    for resident in population:
        if resident.ward_code in NEAREST_STATIONS:
            assert resident.home_station in NEAREST_STATIONS[resident.ward_code]
        else:
            assert ward_of[resident.home_station] == resident.ward_code
    assert {r.ward_code for r in population} == {w.code for w in wards()}


def test_commuting_depends_on_age(population: list[SyntheticResident]) -> None:
    young = [r.work_station is not None for r in population if 25 <= r.age_in(2025) < 60]
    old = [r.work_station is not None for r in population if r.age_in(2025) >= 75]
    assert 0.35 <= _share(young) <= 0.6
    assert _share(old) < 0.1
    for resident in population:
        assert (resident.work_station is None) == (resident.commute is None)
        if resident.work_station is not None:
            assert resident.employed
            assert not same_place(resident.home_station, resident.work_station)


def test_card_and_member_numbers_are_unique_and_well_formed(
    population: list[SyntheticResident],
) -> None:
    cards = [r.card_number for r in population]
    members = [(r.insurer_number, r.member_number) for r in population]
    assert len(set(cards)) == len(cards)
    assert len({m for _, m in members}) == len(members)
    assert len({r.email for r in population}) == len(population)
    for resident in population[:200]:
        assert len(resident.card_number) == 17
        assert normalise_card_number(resident.card_number) == resident.card_number
        member_key(resident.insurer_number, resident.member_number)  # does not raise
    assert population[7].email == "resident000007@demo.city-bank.example"


def test_passwords_pass_the_policy_and_stay_out_of_repr(
    population: list[SyntheticResident],
) -> None:
    for resident in population[:100]:
        check_new_password(resident.password, email=resident.email)
        assert resident.password not in repr(resident)
    assert len({r.password for r in population}) == len(population)


# -- steps --------------------------------------------------------------------------------------


def _valid(day: StepDay, today: date) -> bool:
    item = StepDayIn(day.day, day.steps, day.hourly, day.platform, day.method, day.device_id)
    return validate_step_day(item, today=today, path="$") == []


@settings(max_examples=20, deadline=None)
@given(seed=seeds, size=st.integers(1, 5), start=starts, days=st.integers(1, 40))
def test_every_step_day_passes_the_banks_rules(
    seed: int, size: int, start: date, days: int
) -> None:
    today = start + timedelta(days=days - 1)
    for resident in SyntheticCity(seed, size).residents():
        pushed = list(steps_for(resident, start, days))
        assert len({d.day for d in pushed}) == len(pushed)
        for day in pushed:
            assert start <= day.day <= today
            assert _valid(day, today)
            assert day.platform == resident.steps_profile.platform
            assert day.device_id == resident.steps_profile.device_id
            if day.hourly is not None:
                assert len(day.hourly) == 24
                assert all(isinstance(h, int) and 0 <= h <= 20_000 for h in day.hourly)
                assert sum(day.hourly) == day.steps


def test_the_large_sample_is_valid_too(
    step_days: list[tuple[SyntheticResident, StepDay]],
) -> None:
    today = date(2024, 11, 1) + timedelta(days=89)
    assert all(_valid(day, today) for _, day in step_days)


def test_daily_steps_have_a_realistic_spread(
    step_days: list[tuple[SyntheticResident, StepDay]],
) -> None:
    steps = [d.steps for _, d in step_days]
    assert 4_000 <= statistics.median(steps) <= 10_000
    assert _share([2_000 <= s <= 15_000 for s in steps]) >= 0.90
    assert 0 < sum(s > 20_000 for s in steps) < 0.02 * len(steps)  # a few outliers
    assert max(steps) <= 45_000


def test_some_days_are_missing_and_a_few_typed_in(
    step_days: list[tuple[SyntheticResident, StepDay]],
) -> None:
    expected = 400 * 90
    assert 0.95 * expected <= len(step_days) < expected  # phone left at home
    manual = [d for _, d in step_days if d.method == "manual"]
    assert 0 < len(manual) < 0.03 * len(step_days)
    assert all(d.hourly is None and d.steps % 100 == 0 for d in manual)


def test_older_residents_walk_less(step_days: list[tuple[SyntheticResident, StepDay]]) -> None:
    by_age: dict[str, list[int]] = defaultdict(list)
    for resident, day in step_days:
        age = resident.age_in(day.day.year)
        by_age["young" if age < 60 else "old" if age >= 70 else "between"].append(day.steps)
    assert statistics.mean(by_age["old"]) < 0.85 * statistics.mean(by_age["young"])


def test_winter_days_have_fewer_steps(population: list[SyntheticResident]) -> None:
    def mean(start: date) -> float:
        return statistics.mean(d.steps for r in population[:150] for d in steps_for(r, start, 28))

    assert mean(date(2025, 1, 13)) < 0.9 * mean(date(2025, 5, 12))


def test_hours_follow_the_day(step_days: list[tuple[SyntheticResident, StepDay]]) -> None:
    def shares(days: list[StepDay]) -> list[float]:
        totals = [sum(d.hourly[h] for d in days if d.hourly) for h in range(24)]
        return [t / sum(totals) for t in totals]

    commuting = shares([d for r, d in step_days if r.commute and not day_off(d.day)])
    off = shares([d for _, d in step_days if day_off(d.day)])
    assert commuting[7] + commuting[8] > 2 * (commuting[10] + commuting[11])  # the morning ride
    assert commuting[17] + commuting[18] + commuting[19] > commuting[14] + commuting[15]
    assert sum(off[1:5]) < 0.01  # asleep
    assert sum(commuting[1:5]) < 0.01
    assert sum(off[:9]) < sum(commuting[:9])  # days off start later
    assert max(off) < max(commuting)  # and are flatter


# -- taps ---------------------------------------------------------------------------------------


def _rides(taps: list[tuple[SyntheticResident, Tap]]) -> list[tuple[Tap, Tap]]:
    by_card_day: dict[tuple[str, date], list[Tap]] = defaultdict(list)
    for _, tap in taps:
        by_card_day[(tap.card_number, tap.tapped_at.date())].append(tap)
    rides = []
    for day_taps in by_card_day.values():
        ordered = sorted(day_taps, key=lambda t: t.tapped_at)
        assert [t.tap_type for t in ordered] == ["entry", "exit"] * (len(ordered) // 2)
        rides += list(zip(ordered[::2], ordered[1::2], strict=True))
    return rides


def test_every_entry_has_an_exit_later_that_day_elsewhere(
    taps: list[tuple[SyntheticResident, Tap]],
) -> None:
    rides = _rides(taps)
    assert len(rides) * 2 == len(taps)
    for entry, exit_ in rides:
        assert entry.tapped_at < exit_.tapped_at
        assert entry.tapped_at.date() == exit_.tapped_at.date()
        assert not same_place(entry.station, exit_.station)
        assert entry.fare_product == exit_.fare_product
        passed = route(entry.station, exit_.station)
        minutes = (exit_.tapped_at - entry.tapped_at).total_seconds() / 60
        assert 2 * passed.stations_passed + 4 * passed.transfers + 1 <= minutes
        assert minutes <= 2 * passed.stations_passed + 4 * passed.transfers + 4
        if exit_.fare_product == "commuter_pass":
            assert exit_.fare_yen == 0
        else:
            assert exit_.fare_yen == fare_for(passed.stations_passed)


def test_taps_are_well_formed(taps: list[tuple[SyntheticResident, Tap]]) -> None:
    ids = [t.tap_id for _, t in taps]
    assert len(set(ids)) == len(ids)
    for resident, tap in taps:
        assert tap.operator == "sapporo-subway"
        assert tap.card_number == resident.card_number
        assert tap.station in station_codes()
        assert tap.line == tap.station[0]
        assert tap.line in {"N", "T", "H"}
        assert tap.tapped_at.tzinfo == TOKYO
        assert tap.fare_product in {"commuter_pass", "stored_value"}
        if tap.tap_type == "entry":
            assert tap.fare_yen is None
        else:
            assert tap.fare_yen == 0 or tap.fare_yen in FARES
        assert 0 < len(tap.tap_id) <= 64


def test_commuters_ride_to_work_on_most_weekdays(
    taps: list[tuple[SyntheticResident, Tap]],
) -> None:
    mornings: dict[int, set[date]] = defaultdict(set)
    for resident, tap in taps:
        if resident.work_station and tap.tap_type == "entry" and tap.tapped_at.hour < 9:
            assert 7 <= tap.tapped_at.hour <= 8
            assert same_place(tap.station, resident.home_station)
            mornings[resident.index].add(tap.tapped_at.date())
    window = (date(2025, 4, 7) + timedelta(days=n) for n in range(56))
    weekdays = [d for d in window if not day_off(d)]
    full_time = {r.index for r, _ in taps if r.commute and r.commute.work_days == 5}
    assert statistics.mean(len(mornings[i]) / len(weekdays) for i in full_time) >= 0.8
    passes = [
        t.fare_product == "commuter_pass" for r, t in taps if r.commute and r.commute.commuter_pass
    ]
    assert _share(passes) > 0.6


def test_everyone_rides_to_town_now_and_then(taps: list[tuple[SyntheticResident, Tap]]) -> None:
    riders = {r.index for r, t in taps if t.fare_product == "stored_value"}
    non_commuters = {r.index for r, _ in taps if r.commute is None}
    assert len(riders & non_commuters) > 0.5 * len(non_commuters)
    destinations = Counter(t.station for r, t in taps if r.commute is None and t.tap_type == "exit")
    assert destinations.most_common(1)[0][0] in {"N07", "T09", "H08", "N08", "N06", "H07"}


@settings(max_examples=15, deadline=None)
@given(seed=seeds, index=st.integers(0, 10_000), start=starts)
def test_no_rides_on_days_away(seed: int, index: int, start: date) -> None:
    resident = make_resident(seed, index)
    away = {p.day for p in plans(resident, start, 120) if p.away or p.sick}
    assert not {t.tapped_at.date() for t in taps_for(resident, start, 120)} & away


# -- subway -------------------------------------------------------------------------------------


def test_fares_follow_the_bands() -> None:
    assert [fare_for(n) for n in (1, 3, 4, 7, 8, 11, 12, 16, 17, 19)] == [
        210, 210, 250, 250, 290, 290, 320, 320, 360, 360,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="at least one"):
        fare_for(0)
    assert route("N01", "N16").stations_passed == 15
    assert route("T01", "T19").fare_yen == 360
    assert route("N03", "T08") == route("T08", "N03")
    assert route("N03", "T08").transfers == 1
    assert route("N03", "T08").stations_passed == 4 + 1  # Kita-24-jo → Odori → Nishi-11-chome
    assert best_ride("H07", "N08")[:2] == ("N06", "N08")  # Sapporo: board the line going there


# -- checkups -----------------------------------------------------------------------------------


def test_checkups_carry_every_reference_item_in_its_unit(
    checkups: list[tuple[SyntheticResident, Checkup]],
) -> None:
    reference = [(i.item, i.unit) for i in checkup_items()]
    assert len(reference) == 16
    exam_ids = [c.exam_id for _, c in checkups]
    assert len(set(exam_ids)) == len(exam_ids)
    for resident, checkup in checkups:
        assert [(v.item, v.unit) for v in checkup.items] == reference
        assert len(checkup.institution_code) == 10
        assert checkup.institution_code in all_clinics()
        assert checkup.member_number == resident.member_number
        assert checkup.insurer_number == resident.insurer_number
        assert checkup.sex == resident.sex
        assert date(2024, 1, 1) <= checkup.exam_date <= date(2024, 12, 31)
        values = _values(checkup)
        assert values["urine_glucose"] in URINE
        assert values["urine_protein"] in URINE


def test_values_are_plausible_and_consistent(
    checkups: list[tuple[SyntheticResident, Checkup]],
) -> None:
    ranges = {
        "height": (100, 230), "weight": (20, 250), "bmi": (10, 80), "waist": (40, 200),
        "sbp": (60, 300), "dbp": (30, 200), "tg": (10, 3000), "hdl": (10, 200),
        "ldl": (20, 500), "ast": (3, 2000), "alt": (3, 2000), "ggt": (3, 2000),
        "fpg": (40, 600), "hba1c": (3.5, 18),
    }  # fmt: skip
    for _, checkup in checkups:
        for item, (low, high) in ranges.items():
            assert low <= _num(checkup, item) <= high, item
        height = _num(checkup, "height") / 100
        assert abs(_num(checkup, "weight") / height**2 - _num(checkup, "bmi")) <= 0.1
        assert _num(checkup, "dbp") < _num(checkup, "sbp")


def test_values_are_correlated_like_bodies(
    checkups: list[tuple[SyntheticResident, Checkup]],
) -> None:
    def corr(a: str, b: str) -> float:
        exams = [c for _, c in checkups]
        return statistics.correlation([_num(c, a) for c in exams], [_num(c, b) for c in exams])

    assert corr("bmi", "waist") > 0.6
    assert corr("bmi", "sbp") > 0.1
    assert corr("bmi", "tg") > 0.1
    assert corr("bmi", "hdl") < -0.1
    assert corr("fpg", "hba1c") > 0.6
    assert corr("ast", "alt") > 0.4
    assert corr("dbp", "sbp") > 0.5


def test_shares_at_or_above_guidance_are_plausible(midlife: list[Checkup]) -> None:
    men = [c for c in midlife if c.sex == "male"]
    women = [c for c in midlife if c.sex == "female"]
    assert 0.22 <= _share([_num(c, "bmi") >= 25 for c in men]) <= 0.42
    assert 0.12 <= _share([_num(c, "bmi") >= 25 for c in women]) <= 0.32
    assert 0.30 <= _share([_num(c, "waist") >= 85 for c in men]) <= 0.60
    assert 0.08 <= _share([_num(c, "waist") >= 90 for c in women]) <= 0.30
    assert 0.30 <= _share([_num(c, "sbp") >= 130 for c in midlife]) <= 0.60
    assert 0.30 <= _share([_num(c, "ldl") >= 120 for c in midlife]) <= 0.65
    assert 0.30 <= _share([_num(c, "hba1c") >= 5.6 for c in midlife]) <= 0.70
    assert 0.03 <= _share([_num(c, "hba1c") >= 6.5 for c in midlife]) <= 0.15
    assert _share([_num(c, "ggt") >= 51 for c in men]) > 2 * _share(
        [_num(c, "ggt") >= 51 for c in women]
    )
    assert _share([_num(c, "hdl") < 40 for c in men]) < 0.2
    assert _share([_values(c)["urine_protein"] == "-" for c in midlife]) >= 0.85
    assert _share([_values(c)["urine_glucose"] == "-" for c in midlife]) >= 0.9
    assert _share([c.fasting for c in midlife]) >= 0.8


def test_about_half_of_the_checkup_ages_attend(
    population: list[SyntheticResident], checkups: list[tuple[SyntheticResident, Checkup]]
) -> None:
    eligible = [r for r in population if 40 <= r.age_in(2024) <= 74]
    attended = {r.index for r, _ in checkups}
    midlife_share = _share([r.index in attended for r in eligible])
    assert 0.45 <= midlife_share <= 0.65
    for outside in ([r for r in population if r.age_in(2024) < 40],
                    [r for r in population if r.age_in(2024) > 74]):  # fmt: skip
        assert _share([r.index in attended for r in outside]) < midlife_share - 0.1
    per_resident = Counter(r.index for r, _ in checkups)
    assert max(per_resident.values()) == 1  # one a year
