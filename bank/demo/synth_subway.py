"""The subway network of the synthetic city: routes, ride times and fare bands (approximations).

Sapporo's three lines (Namboku N, Tozai T, Toho H) meet at Odori (N07/T09/H08); Namboku and Toho
also meet at Sapporo (N06/H07). A route is counted in stations passed, taking the transfer that
passes fewest. Fares are charged by distance in km in reality; here the stations passed stand in
for distance (about 1 km a station) and map to the five IC fare bands 210/250/290/320/360 yen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bank.reference import Station, stations

# (first station passed, last station passed) → yen; stations passed is at least 1.
FARE_BANDS: tuple[tuple[int, int, int], ...] = (
    (1, 3, 210),
    (4, 7, 250),
    (8, 11, 290),
    (12, 16, 320),
    (17, 99, 360),
)
FARES = frozenset(fare for _, _, fare in FARE_BANDS)
MINUTES_PER_STATION = 2
MINUTES_PER_TRANSFER = 4
# Stations where two lines meet, as the pair of codes signed on each line.
TRANSFERS: tuple[tuple[str, str], ...] = (
    ("N07", "T09"),  # Odori
    ("N07", "H08"),
    ("T09", "H08"),
    ("N06", "H07"),  # Sapporo
)


@dataclass(frozen=True)
class Route:
    stations_passed: int
    transfers: int

    @property
    def fare_yen(self) -> int:
        return fare_for(self.stations_passed)


def line_of(code: str) -> str:
    return code[0]


def fare_for(stations_passed: int) -> int:
    for low, high, fare in FARE_BANDS:
        if low <= stations_passed <= high:
            return fare
    raise ValueError("A ride passes at least one station.")


@functools.cache
def by_code() -> dict[str, Station]:
    return {s.code: s for s in stations()}


@functools.cache
def codes_of_place(name_en: str) -> tuple[str, ...]:
    """Every code signed at one physical station (Odori has three)."""
    return tuple(s.code for s in stations() if s.name_en == name_en)


def same_place(a: str, b: str) -> bool:
    table = by_code()
    return table[a].name_en == table[b].name_en


def code_on_line(place_code: str, line: str) -> str:
    """The code of the station `place_code` stands for on `line`, if the line stops there."""
    for code in codes_of_place(by_code()[place_code].name_en):
        if line_of(code) == line:
            return code
    return place_code


def _number(code: str) -> int:
    return int(code[1:])


@functools.cache
def route(origin: str, destination: str) -> Route:
    """The shortest ride between two station codes (as tapped: each code on its own line)."""
    if same_place(origin, destination):
        raise ValueError("A ride goes between two different stations.")
    if line_of(origin) == line_of(destination):
        return Route(abs(_number(origin) - _number(destination)), 0)
    best: Route | None = None
    for a, b in TRANSFERS:
        for here, there in ((a, b), (b, a)):
            if line_of(here) == line_of(origin) and line_of(there) == line_of(destination):
                passed = abs(_number(origin) - _number(here))
                passed += abs(_number(there) - _number(destination))
                if best is None or passed < best.stations_passed:
                    best = Route(passed, 1)
    if best is None:
        raise ValueError("No transfer joins these lines.")  # every pair of lines meets
    return best


@functools.cache
def best_ride(origin: str, destination: str) -> tuple[str, str, Route]:
    """The codes to tap between two places and the ride: at Odori or Sapporo a rider enters on
    the line that goes their way, so (H07, N08) becomes (N06, N08) with no transfer."""
    options = [
        (route(a, b), a, b)
        for a in codes_of_place(by_code()[origin].name_en)
        for b in codes_of_place(by_code()[destination].name_en)
    ]
    ride, a, b = min(options, key=lambda o: (o[0].stations_passed, o[0].transfers, o[1], o[2]))
    return a, b, ride


def ride_minutes(ride: Route) -> int:
    return ride.stations_passed * MINUTES_PER_STATION + ride.transfers * MINUTES_PER_TRANSFER
