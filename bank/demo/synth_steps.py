"""Synthetic daily steps with an hourly shape, shaped like what the resident's app pushes."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from bank.demo.synth_days import DayPlan, day_off, plans
from bank.demo.synth_people import SyntheticResident, rng
from bank.demo.synth_subway import best_ride, ride_minutes

# Sapporo's snow season (Dec-Mar) keeps people in; late spring and early autumn are best.
SEASON = {
    1: 0.80, 2: 0.80, 3: 0.88, 4: 0.98, 5: 1.05, 6: 1.05,
    7: 1.02, 8: 1.00, 9: 1.05, 10: 1.03, 11: 0.95, 12: 0.85,
}  # fmt: skip
OUTLIER = 0.004  # a hike, a marathon, a festival: 20,000-40,000 steps
OUTLIER_OLD = 0.001  # the same from 70 on
MANUAL = 0.01  # typed in by hand: a round number, no hourly counts
MAX_DAY = 45_000  # far inside the bank's 100,000 a day
MAX_HOUR = 12_000  # the programmes' flag level, far inside the bank's 20,000 an hour
NIGHT = 0.004  # weight of a sleeping hour next to ~0.12 for an idle waking one


@dataclass(frozen=True)
class StepDay:
    day: date
    steps: int
    hourly: tuple[int, ...] | None  # 24 counts from 00:00 local time; None for manual entries
    platform: str  # healthkit | health_connect | tracker
    method: str  # automatic | manual
    device_id: str | None


def steps_for(resident: SyntheticResident, start: date, days: int) -> Iterator[StepDay]:
    """One StepDay per day in [start, start + days), except days the phone stayed home."""
    return steps_of(resident, plans(resident, start, days))


def steps_of(resident: SyntheticResident, days: Iterable[DayPlan]) -> Iterator[StepDay]:
    for plan in days:
        if not plan.phone_forgotten:
            yield _step_day(resident, plan)


def _step_day(resident: SyntheticResident, plan: DayPlan) -> StepDay:
    profile = resident.steps_profile
    r = rng(resident.seed, resident.index, "steps", plan.day.isoformat())
    mean = profile.mean_steps * SEASON[plan.day.month]
    if day_off(plan.day):
        mean *= profile.weekend_factor
    if plan.works:
        mean *= 1.08  # walking to and from the station
    if plan.outing is not None:
        mean *= 1.25
    if plan.away:
        mean *= 1.2
    if plan.sick:
        mean *= 0.3
    ordinary = min(MAX_DAY, round(mean * r.lognormvariate(0.0, profile.variability)))
    chance = OUTLIER_OLD if resident.age_in(plan.day.year) >= 70 else OUTLIER
    extra = max(0, r.randint(20_000, 40_000) - ordinary) if r.random() < chance else 0
    weights = _weights(resident, plan, r)
    if r.random() < MANUAL:
        return StepDay(
            plan.day, round(ordinary + extra, -2), None, profile.platform, "manual",
            profile.device_id,
        )  # fmt: skip
    hourly = _allocate(ordinary, weights)
    if extra:
        centre, width = r.uniform(8.0, 14.0), r.uniform(1.5, 2.5)
        bump = [_bump(hour, centre, width) for hour in range(24)]
        hourly = [a + b for a, b in zip(hourly, _allocate(extra, bump), strict=True)]
    hourly = _cap(hourly, MAX_HOUR)
    return StepDay(
        plan.day, sum(hourly), tuple(hourly), profile.platform, "automatic", profile.device_id
    )


def _bump(hour: int, centre: float, width: float) -> float:
    return math.exp(-(((hour + 0.5 - centre) / width) ** 2) / 2)


def _weights(resident: SyntheticResident, plan: DayPlan, r: random.Random) -> list[float]:
    """Relative steps per hour: near zero asleep, an idle level awake, bumps where people walk.
    Commuters peak around their rides; days off start later and spread flatter."""
    shift = resident.steps_profile.wake_shift
    bumps: list[tuple[float, float, float]]  # (centre hour, width in hours, height)
    if plan.works and resident.commute is not None and resident.work_station is not None:
        _, _, ride = best_ride(resident.home_station, resident.work_station)
        leave, arrive = plan.leave_home / 60, (plan.leave_home + ride_minutes(ride)) / 60
        leave_work, home = plan.leave_work / 60, (plan.leave_work + ride_minutes(ride)) / 60
        wake, sleep, idle = leave - 1.0, 23.0 + shift / 2, 0.10
        bumps = [
            (leave - 0.1, 0.35, 1.0), (arrive + 0.1, 0.3, 0.8), (12.4, 0.5, 0.5),
            (leave_work - 0.1, 0.35, 0.9), (home + 0.1, 0.35, 0.8),
        ]  # fmt: skip
    elif day_off(plan.day) or plan.away:
        wake, sleep, idle = 8.0 + shift, 23.5 + shift, 0.15
        bumps = [
            (10.5 + shift, 1.5, 0.5), (13.5 + shift, 1.8, 0.6), (16.0 + shift, 1.5, 0.5),
            (19.0 + shift, 1.2, 0.25),
        ]  # fmt: skip
    else:
        wake, sleep, idle = 6.5 + shift, 22.5 + shift, 0.12
        bumps = [
            (9.5 + shift, 1.0, 0.5), (11.0 + shift, 1.0, 0.6), (15.0 + shift, 1.2, 0.6),
            (17.5, 1.0, 0.35),
        ]  # fmt: skip
    if plan.outing is not None:
        out, back = plan.outing.leave / 60, plan.outing.back / 60
        bumps += [(out - 0.2, 0.4, 0.8), ((out + back) / 2, (back - out) / 2.5, 1.0),
                  (back + 0.5, 0.5, 0.7)]  # fmt: skip
    walking = [0.0] * 24
    for centre, width, height in bumps:  # a bump is negligible beyond three widths
        for hour in range(max(0, int(centre - 3 * width)), min(24, int(centre + 3 * width) + 1)):
            walking[hour] += height * _bump(hour, centre, width)
    weights = []
    for hour in range(24):
        awake = wake <= hour + 0.5 < sleep
        weight = idle + walking[hour] if awake else NIGHT + 0.1 * walking[hour]
        weights.append(weight * (0.65 + 0.7 * r.random()))  # hour-to-hour noise
    return weights


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Whole steps per hour in proportion to `weights`, summing exactly to `total` (largest
    remainder)."""
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _cap(hourly: list[int], cap: int) -> list[int]:
    """No hour above `cap`: the excess moves to the neighbouring hours (the day keeps its total,
    which is far below 24 * cap)."""
    counts = list(hourly)
    while True:
        hour = max(range(24), key=counts.__getitem__)
        if counts[hour] <= cap:
            return counts
        excess, counts[hour] = counts[hour] - cap, cap
        neighbours = [h for h in (hour - 1, hour + 1) if 0 <= h < 24]
        for n, h in enumerate(neighbours):
            counts[h] += excess // len(neighbours) + (1 if n < excess % len(neighbours) else 0)
