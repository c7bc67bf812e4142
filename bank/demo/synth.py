"""A deterministic synthetic Sapporo: residents, daily steps, subway taps and yearly checkups.

DEMO DATA, NOT STATISTICS. The shapes below are rounded from public figures so that the demo
and the benchmarks look like a city; no number here describes real people. Sources: the ward
populations, stations and checkup items are the bundled reference tables (bank/data/reference);
the step ranges and flag levels are from the reference README and the team's notes; the age
pyramid, employment, step-by-age and body-measure shapes are rounded recollections of published
national and municipal figures (census, labour force and national nutrition surveys), not cited
values: check them before quoting them anywhere.

Determinism. Every random draw comes from a stream keyed by (city seed, resident index, stream
name[, date or year]) (`synth_people.rng`), so resident i is the same in a city of 50 or of
500, a day's records are the same in every window that contains it, and a city can be streamed
one resident at a time. Standard library only.

Residents (synth_people)
- Age 20-89 by 5-year bands weighted like Sapporo's 2020 census pyramid (peaks at 45-49 and
  65-74), ages as of REFERENCE_YEAR (2025); women 51 % at 20 rising to 63 % from 80.
- Ward by the 2020 census populations in the bundled wards.csv (bank.reference.wards()).
- Home station: a station in the home ward (stations.csv); Teine (01109) and Kiyota (01110) have
  none and use the nearest (Miyanosawa/Hassamu-minami; Fukuzumi/Tsukisamu-chuo/Oyachi).
- Employed (work or study) by age and sex, 80-90 % at 25-59 falling to ~10 % from 75; 55 % of
  them ride the subway to work, to a station weighted towards downtown (Odori, Sapporo,
  Susukino: ~60 %); 85 % of those hold a commuter pass; 80 % work 5 days, the rest 3-4.
- Card numbers (17 digits) and member numbers (8 digits) are affine bijections of the index,
  hence unique within a city; insurer numbers are fictional (NHI, a health insurance society,
  the 75+ scheme). Passwords are derived from the seed: demo accounts only.

Steps (synth_steps; reference README and notes/points-records-opendata.md §a.5: healthy adults
walk 4,000-18,000 a day, older adults 2,000-9,000, programmes flag days above ~30-50k and hours
above ~12k)
- A resident's typical day: ~8,000 for men under 50, fewer towards 65, then ~130 fewer a year
  of age (≈4,000 at 89); women 14 % fewer (shape of Japan's national nutrition survey), times
  a lognormal personal factor (sigma 0.27).
- A day: that typical value * season (Jan-Feb 0.80, Dec 0.85, Mar 0.88 for Sapporo's snow; May,
  Jun, Sep 1.05) * weekend factor * (working 1.08, outing 1.25, away 1.2, ill 0.3) * a daily
  lognormal (sigma 0.20-0.34). 0.4 % of days (0.1 % from 70) are 20,000-40,000; 2.5 % of days
  are missing (phone at home); 1 % are manual entries (rounded to 100, no hourly counts).
- Hourly: near zero asleep, peaks on each commuter's own ride times on working days, a later
  and flatter day off; no hour above 12,000, no day above 45,000.

Taps (synth_taps, synth_subway): commuters ride home→work on working weekdays leaving 7:00-9:00
and back 17:00-21:00; everyone rides to town (Odori, Susukino, Sapporo, parks, Makomanai, Shin-
Sapporo, Fukuzumi) on ~22 % of days off and ~10 % of weekdays not at work (*1.3 from 65);
no rides on days away (~1.3 trips of 2-6 days a year) or ill. A ride takes 2 min a station and
4 min a transfer plus 1-4 min in the stations; fares follow the 210/250/290/320/360 yen bands
by stations passed; commute rides on a pass are fare 0 with fare_product commuter_pass.

Checkups (synth_checkups; reference checkup_items.csv units and judgement values): one a year
in the resident's usual month (June-November mostly), attended by ~55 % at 40-74 (65 %
employed, 45 % not), 40 %/15 % younger, 25 % from 75; regular attenders mostly come back.
Height by sex and birth cohort; BMI lognormal around 23.5-23.6 for men 40-74 (≈1/3 at or
above 25) and 21.4-22.4 for women; weight = BMI * height²; waist, blood pressure, TG, ALT and
gamma-GT rise and HDL falls with BMI; blood pressure and HbA1c rise with age; FPG follows HbA1c;
gamma-GT is higher in men and drinkers; 5-13 % diabetic by age and sex; urine mostly "-".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from bank.demo.synth_checkups import Checkup, CheckupValue, checkups_for
from bank.demo.synth_days import plans
from bank.demo.synth_people import (
    MAX_RESIDENTS,
    Commute,
    StepsProfile,
    SyntheticResident,
    make_resident,
)
from bank.demo.synth_steps import StepDay, steps_for, steps_of
from bank.demo.synth_taps import Tap, taps_for, taps_of


@dataclass(frozen=True)
class ResidentWindow:
    """One resident's records over a date window."""

    resident: SyntheticResident
    steps: tuple[StepDay, ...]
    taps: tuple[Tap, ...]
    checkups: tuple[Checkup, ...]


class SyntheticCity:
    """`SyntheticCity(seed, residents)`: residents 0..residents-1 of the city of `seed`."""

    __slots__ = ("seed", "size")

    def __init__(self, seed: int, residents: int) -> None:
        if not 0 <= residents <= MAX_RESIDENTS:
            raise ValueError(f"A synthetic city has 0 to {MAX_RESIDENTS:,} residents.")
        self.seed = seed
        self.size = residents

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"SyntheticCity(seed={self.seed}, residents={self.size})"

    def resident(self, index: int) -> SyntheticResident:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return make_resident(self.seed, index)

    def residents(self) -> Iterator[SyntheticResident]:
        return (make_resident(self.seed, index) for index in range(self.size))

    def window(self, start: date, days: int) -> Iterator[ResidentWindow]:
        """Everything each resident records in [start, start + days), one resident at a time."""
        for resident in self.residents():
            day_plans = tuple(plans(resident, start, days))  # planned once for steps and taps
            yield ResidentWindow(
                resident,
                tuple(steps_of(resident, day_plans)),
                tuple(taps_of(resident, day_plans)),
                tuple(checkups_for(resident, start, days)),
            )


__all__ = [
    "Checkup",
    "CheckupValue",
    "Commute",
    "ResidentWindow",
    "StepDay",
    "StepsProfile",
    "SyntheticCity",
    "SyntheticResident",
    "Tap",
    "checkups_for",
    "make_resident",
    "steps_for",
    "taps_for",
]
