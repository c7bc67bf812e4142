"""Synthetic subway taps: an entry and an exit per ride, as the operator pushes them."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bank.demo.synth_days import DayPlan, plans
from bank.demo.synth_people import SyntheticResident, rng
from bank.demo.synth_subway import best_ride, line_of, ride_minutes

OPERATOR = "sapporo-subway"
TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class Tap:
    operator: str
    tap_id: str
    card_number: str
    tap_type: str  # entry | exit
    tapped_at: datetime  # aware, Asia/Tokyo
    station: str  # code as signed: N07, T09, H08
    line: str  # N | T | H
    fare_yen: int | None  # on exits only
    fare_product: str  # commuter_pass | stored_value


def taps_for(resident: SyntheticResident, start: date, days: int) -> Iterator[Tap]:
    """Taps in [start, start + days): commutes on working days, outings, nothing when away."""
    return taps_of(resident, plans(resident, start, days))


def taps_of(resident: SyntheticResident, days: Iterable[DayPlan]) -> Iterator[Tap]:
    for plan in days:
        rides: list[tuple[str, str, int, bool]] = []  # (from, to, minute of entry, commute)
        if plan.works and resident.work_station is not None:
            rides += [
                (resident.home_station, resident.work_station, plan.leave_home, True),
                (resident.work_station, resident.home_station, plan.leave_work, True),
            ]
        if plan.outing is not None:
            rides += [
                (resident.home_station, plan.outing.destination, plan.outing.leave, False),
                (plan.outing.destination, resident.home_station, plan.outing.back, False),
            ]
        r = rng(resident.seed, resident.index, "taps", plan.day.isoformat())
        for number, (origin, destination, minute, commute) in enumerate(rides):
            yield from _ride(resident, plan.day, number, origin, destination, minute, commute, r)


def tap_id(resident: SyntheticResident, day: date, ride: int, tap_type: str) -> str:
    """Opaque, deterministic and (at 96 bits) unique in practice; names no card or resident."""
    label = f"{resident.seed}|{resident.index}|{day.isoformat()}|{ride}|{tap_type}"
    return "t" + hashlib.blake2b(label.encode(), digest_size=12).hexdigest()


def _ride(
    resident: SyntheticResident,
    day: date,
    number: int,
    origin: str,
    destination: str,
    minute: int,
    commute: bool,
    r: random.Random,
) -> Iterator[Tap]:
    entry_code, exit_code, route = best_ride(origin, destination)
    pass_ride = commute and resident.commute is not None and resident.commute.commuter_pass
    product = "commuter_pass" if pass_ride else "stored_value"
    entered = datetime.combine(day, time(minute // 60, minute % 60, r.randrange(60)), TOKYO)
    # Gate to platform, the wait and platform to gate take one to four minutes in all.
    left = entered + timedelta(minutes=ride_minutes(route), seconds=r.randint(60, 240))
    for tap_type, code, at, fare in (
        ("entry", entry_code, entered, None),
        ("exit", exit_code, left, 0 if pass_ride else route.fare_yen),
    ):
        yield Tap(
            operator=OPERATOR,
            tap_id=tap_id(resident, day, number, tap_type),
            card_number=resident.card_number,
            tap_type=tap_type,
            tapped_at=at,
            station=code,
            line=line_of(code),
            fare_yen=fare,
            fare_product=product,
        )
