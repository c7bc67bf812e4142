"""Rules for transit IC card taps (SAPICA; Kitaca and Suica interoperable): validation and rides.

Sapporo's gates and fare boxes charge on exit (the fare depends on where one leaves), so an entry
tap carries no fare and an exit tap carries what was charged. Commuter-pass rides cost nothing on
the pass; an excess fare beyond the pass's section is pushed as a stored_value exit.
"""

from __future__ import annotations

import functools
import re
import string
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bank.reference import stations
from bank.vault.rules import Refusal

SUBWAY = "sapporo-subway"  # the municipal subway: stations are the codes signed in stations
OPERATOR = re.compile(r"[a-z][a-z0-9-]{1,39}")  # a lowercase slug; never a "/" (natural keys)
MAX_TAP_ID = 64
# Assumption: operators push the number printed on the card, 16 or 17 digits without separators
# (bank.vault.links accepts the same numbers when a resident links a card).
CARD_NUMBER = re.compile(r"[0-9]{16,17}")
STOP_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")  # GTFS stop_id / route_id, e.g. GTFS-JP "2_01"
TAP_TYPES = frozenset({"entry", "exit"})
FARE_PRODUCTS = frozenset({"stored_value", "commuter_pass"})
MAX_FARE_YEN = 10_000  # city fares are a few hundred yen; this only catches garbage
MAX_AHEAD = timedelta(minutes=5)  # gate and reader clocks drift; more is a clock fault
OLDEST_TAP = timedelta(days=400)  # a year of history plus a month for late exports
MAX_RIDE = timedelta(hours=3)  # the longest journey inside one operator's network is far shorter
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


@dataclass(frozen=True)
class TapIn:
    operator: str
    tap_id: str  # unique per operator
    card_number: str = field(repr=False)  # personal: never echoed, never logged
    tap_type: str  # entry | exit
    tapped_at: datetime  # timezone-aware
    station: str  # subway: station code as signed (N07); other operators: GTFS stop_id
    line: str  # subway: N | T | H; other operators: GTFS route_id
    fare_yen: int | None  # charged on exit; None or 0 on entry
    fare_product: str  # stored_value | commuter_pass


@dataclass(frozen=True)
class Ride:
    """An entry and its exit; an incomplete ride has only one of them (the other side None)."""

    operator: str
    card: str = field(repr=False)  # the taps' card_number as given
    entered_at: datetime | None
    exited_at: datetime | None
    from_station: str | None
    to_station: str | None
    line_from: str | None
    line_to: str | None
    fare_yen: int | None  # the exit's fare (charged on exit); an entry-only ride: the entry's
    fare_product: str  # the exit's (the gate decides on exit); an entry-only ride: the entry's
    complete: bool
    entry_tap_id: str | None
    exit_tap_id: str | None

    @property
    def minutes(self) -> float | None:
        """Gate to gate; None for an incomplete ride."""
        if self.entered_at is None or self.exited_at is None:
            return None
        return (self.exited_at - self.entered_at).total_seconds() / 60


def validate_tap(tap: TapIn, *, now: datetime, path: str) -> list[Refusal]:
    """`now` is timezone-aware. Refusals name the field and the accepted range only."""
    refusals: list[Refusal] = []
    if not OPERATOR.fullmatch(tap.operator):
        refusals.append(
            Refusal(
                f"{path}.operator",
                "operator must be 2 to 40 lowercase letters, digits or hyphens, "
                "starting with a letter.",
            )
        )
    if not 1 <= len(tap.tap_id) <= MAX_TAP_ID or not set(tap.tap_id) <= _PRINTABLE:
        refusals.append(
            Refusal(
                f"{path}.tap_id", f"tap_id must be 1 to {MAX_TAP_ID} printable ASCII characters."
            )
        )
    if not CARD_NUMBER.fullmatch(tap.card_number):
        refusals.append(Refusal(f"{path}.card_number", "card_number must be 16 or 17 digits."))
    if tap.tap_type not in TAP_TYPES:
        refusals.append(Refusal(f"{path}.tap_type", "tap_type must be entry or exit."))
    refusals.extend(_time(tap.tapped_at, now, f"{path}.tapped_at"))
    refusals.extend(_place(tap, path))
    if tap.fare_product not in FARE_PRODUCTS:
        refusals.append(
            Refusal(f"{path}.fare_product", "fare_product must be stored_value or commuter_pass.")
        )
    refusals.extend(_fare(tap, f"{path}.fare_yen"))
    return refusals


def pair_rides(taps: Iterable[TapIn]) -> list[Ride]:
    """Pair validated taps into rides, every tap in exactly one ride; deterministic.

    Per card and operator, in time order (exits before entries at the same instant), an entry
    and the next tap form a complete ride when that tap is an exit within MAX_RIDE; otherwise the
    entry is an incomplete ride of its own, and so is an exit with no entry before it. Rides never
    span operators: a transfer is two rides. Rides come ordered by their first tap.
    """
    groups: dict[tuple[str, str], list[TapIn]] = defaultdict(list)
    for tap in taps:
        if tap.tap_type not in TAP_TYPES:
            raise ValueError("pair_rides takes validated taps: tap_type must be entry or exit.")
        groups[tap.card_number, tap.operator].append(tap)
    rides: list[Ride] = []
    for group in groups.values():
        rides.extend(_pair(sorted(group, key=_order)))
    return sorted(rides, key=_ride_order)


def _pair(taps: list[TapIn]) -> list[Ride]:
    rides: list[Ride] = []
    entry: TapIn | None = None
    for tap in taps:
        if tap.tap_type == "entry":
            if entry is not None:
                rides.append(_ride(entry, None))
            entry = tap
        elif entry is not None and timedelta(0) < tap.tapped_at - entry.tapped_at <= MAX_RIDE:
            rides.append(_ride(entry, tap))
            entry = None
        else:
            if entry is not None:
                rides.append(_ride(entry, None))
                entry = None
            rides.append(_ride(None, tap))
    if entry is not None:
        rides.append(_ride(entry, None))
    return rides


def _ride(entry: TapIn | None, exit_: TapIn | None) -> Ride:
    last = exit_ if exit_ is not None else entry
    assert last is not None  # a ride has at least one tap
    return Ride(
        operator=last.operator,
        card=last.card_number,
        entered_at=None if entry is None else entry.tapped_at,
        exited_at=None if exit_ is None else exit_.tapped_at,
        from_station=None if entry is None else entry.station,
        to_station=None if exit_ is None else exit_.station,
        line_from=None if entry is None else entry.line,
        line_to=None if exit_ is None else exit_.line,
        fare_yen=last.fare_yen,
        fare_product=last.fare_product,
        complete=entry is not None and exit_ is not None,
        entry_tap_id=None if entry is None else entry.tap_id,
        exit_tap_id=None if exit_ is None else exit_.tap_id,
    )


def _order(tap: TapIn) -> tuple[datetime, int, str, str, str]:
    # At one instant an exit closes the ride before an entry opens the next.
    return tap.tapped_at, 0 if tap.tap_type == "exit" else 1, tap.tap_id, tap.station, tap.line


def _ride_order(ride: Ride) -> tuple[datetime, str, str, str]:
    first = ride.entered_at or ride.exited_at
    assert first is not None  # a ride has at least one tap
    return first, ride.card, ride.operator, ride.entry_tap_id or ride.exit_tap_id or ""


def _time(tapped_at: datetime, now: datetime, path: str) -> list[Refusal]:
    if tapped_at.tzinfo is None or tapped_at.utcoffset() is None:
        return [Refusal(path, "tapped_at must carry a UTC offset (e.g. +09:00).")]
    if tapped_at > now + MAX_AHEAD:
        return [Refusal(path, "tapped_at is more than 5 minutes in the future.")]
    if tapped_at < now - OLDEST_TAP:
        return [Refusal(path, f"tapped_at is more than {OLDEST_TAP.days} days ago.")]
    return []


@functools.cache
def _subway_lines() -> dict[str, str]:
    """Station code → line letter, from the reference (N07 → N)."""
    return {station.code: station.code[0] for station in stations()}


@functools.cache
def _subway_ranges() -> str:
    """ "N01-N16, T01-T19, H01-H14": the reference lists stations by line, then number."""
    by_line: dict[str, list[str]] = {}
    for station in stations():
        by_line.setdefault(station.code[0], []).append(station.code)
    return ", ".join(f"{codes[0]}-{codes[-1]}" for codes in by_line.values())


def _place(tap: TapIn, path: str) -> list[Refusal]:
    if tap.operator != SUBWAY:
        return [
            Refusal(
                f"{path}.{name}",
                f"{name} must be a GTFS {kind} of 1 to 64 letters, digits or _ . : -",
            )
            for name, kind, value in (("station", "stop_id", tap.station),
                                      ("line", "route_id", tap.line))
            if not STOP_ID.fullmatch(value)
        ]  # fmt: skip
    line = _subway_lines().get(tap.station)
    if line is None:
        return [
            Refusal(
                f"{path}.station",
                f"station must be a subway station code as signed ({_subway_ranges()}).",
            )
        ]
    if tap.line != line:
        return [Refusal(f"{path}.line", "line must be the station's line letter (N, T or H).")]
    return []


def _fare(tap: TapIn, path: str) -> list[Refusal]:
    fare = tap.fare_yen
    if fare is not None and (type(fare) is not int or not 0 <= fare <= MAX_FARE_YEN):
        return [Refusal(path, f"fare_yen must be a whole number from 0 to {MAX_FARE_YEN:,}.")]
    if tap.tap_type == "entry" and fare:
        return [
            Refusal(path, "fare_yen must be absent or 0 on entry: the fare is charged on exit.")
        ]
    if tap.tap_type == "exit" and tap.fare_product == "commuter_pass" and fare:
        return [Refusal(path, "fare_yen must be 0 on a commuter_pass ride.")]
    if tap.tap_type == "exit" and tap.fare_product == "stored_value" and fare is None:
        return [Refusal(path, "fare_yen is required on an exit paid from stored value.")]
    return []
