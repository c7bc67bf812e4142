"""What a synthetic resident does on a day (away, ill, at work, in town), for steps and taps.

A day's plan depends only on (city seed, resident, date), never on the window asked for, so the
steps and the taps of one day agree (a commuter's steps peak when their card taps) and a day
reads the same in every window that contains it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from bank.demo.synth_people import SyntheticResident, rng
from bank.demo.synth_subway import best_ride, ride_minutes, same_place

# Days most workplaces close besides weekends: New Year, Golden Week, Obon. Other national
# holidays are ordinary days here (a simplification).
CLOSED: frozenset[tuple[int, int]] = frozenset(
    {(1, 1), (1, 2), (1, 3), (5, 3), (5, 4), (5, 5), (8, 14), (8, 15), (12, 30), (12, 31)}
)
TRIP_PER_WEEK = 0.025  # a trip out of town of 2-6 days: about 1.3 a year
SICK = 0.015
PHONE_FORGOTTEN = 0.025  # the phone stays home: no steps that day
LEAVE = 0.04  # a working day taken off
# Where people ride for shopping, eating out, parks and events; Odori/Susukino dominate.
OUTINGS: tuple[tuple[str, int], ...] = (
    ("N07", 30), ("N08", 20), ("N06", 20), ("H09", 5), ("T06", 6), ("N09", 6),
    ("N16", 4), ("T19", 5), ("H14", 4),
)  # fmt: skip
LAST_RIDE = 21 * 60 + 30  # every ride ends well before midnight


@dataclass(frozen=True)
class Outing:
    destination: str  # station code of the place
    leave: int  # minutes after midnight: entry tap of the ride out
    back: int  # minutes after midnight: entry tap of the ride home


@dataclass(frozen=True)
class DayPlan:
    day: date
    away: bool  # out of town: steps go on, no subway
    sick: bool
    phone_forgotten: bool
    works: bool  # rides the subway to work today
    leave_home: int  # minutes after midnight (meaningful when works)
    leave_work: int
    outing: Outing | None


def day_off(day: date) -> bool:
    return day.weekday() >= 5 or (day.month, day.day) in CLOSED


def away_days(resident: SyntheticResident, start: date, end: date) -> frozenset[date]:
    """Days in [start, end) out of town. Trips start in a week of their own, so one that began
    the week before `start` still covers its days."""
    monday = start - timedelta(days=start.weekday() + 7)
    away: set[date] = set()
    while monday < end:
        r = rng(resident.seed, resident.index, "trip", monday.isoformat())
        if r.random() < TRIP_PER_WEEK:
            first = monday + timedelta(days=r.randrange(7))
            for offset in range(r.randint(2, 6)):
                day = first + timedelta(days=offset)
                if start <= day < end:
                    away.add(day)
        monday += timedelta(days=7)
    return frozenset(away)


def _minutes(r: random.Random, mean: float, sd: float, low: int, high: int) -> int:
    return int(min(high, max(low, r.gauss(mean, sd))))


def _outing(r: random.Random, resident: SyntheticResident, day: date) -> Outing:
    places = [(code, w) for code, w in OUTINGS if not same_place(code, resident.home_station)]
    destination = r.choices([code for code, _ in places], weights=[w for _, w in places])[0]
    _, _, ride = best_ride(resident.home_station, destination)
    if resident.age_in(day.year) >= 65:
        leave = _minutes(r, 10 * 60 + 30, 60, 9 * 60, 14 * 60)
    else:
        leave = _minutes(r, 12 * 60 + 30, 90, 9 * 60 + 30, 17 * 60)
    stay = r.randint(90, 300)
    back = min(LAST_RIDE, leave + ride_minutes(ride) + stay)
    return Outing(destination, leave, back)


def plan_day(resident: SyntheticResident, day: date, *, away: bool) -> DayPlan:
    r = rng(resident.seed, resident.index, "day", day.isoformat())
    sick = r.random() < SICK
    phone_forgotten = r.random() < PHONE_FORGOTTEN
    commute = resident.commute
    works = False
    leave_home = leave_work = 0
    if commute is not None:
        attends = commute.work_days / 5 * (1 - LEAVE)
        works = not (day_off(day) or away or sick) and r.random() < attends
        leave_home = _minutes(r, commute.leave_home, 8, 7 * 60, 8 * 60 + 59)
        leave_work = _minutes(r, commute.leave_work, 20, 17 * 60, 21 * 60)
    chance = 0.22 if day_off(day) else 0.10
    if resident.age_in(day.year) >= 65:
        chance *= 1.3
    outing = None
    if not (works or away or sick) and r.random() < chance:
        outing = _outing(r, resident, day)
    return DayPlan(day, away, sick, phone_forgotten, works, leave_home, leave_work, outing)


def plans(resident: SyntheticResident, start: date, days: int) -> Iterator[DayPlan]:
    away = away_days(resident, start, start + timedelta(days=days))
    for n in range(days):
        day = start + timedelta(days=n)
        yield plan_day(resident, day, away=day in away)
