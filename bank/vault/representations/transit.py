"""Transit representations: raw taps, rides (entry and exit paired), rides counted per month."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bank.vault.rules.transit import Ride, TapIn, pair_rides


class TapRecord(Protocol):
    """An opened tap (the card as its last four digits: the full number is never stored)."""

    @property
    def operator(self) -> str: ...
    @property
    def tap_id(self) -> str: ...
    @property
    def card_last4(self) -> str: ...
    @property
    def tap_type(self) -> str: ...
    @property
    def tapped_at(self) -> datetime: ...
    @property
    def station(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def fare_yen(self) -> int | None: ...
    @property
    def fare_product(self) -> str: ...


@dataclass(frozen=True)
class Tap:
    """`transit.taps`: one tap as the operator sent it, the card as its last four digits."""

    operator: str
    tap_id: str
    card_last4: str
    tap_type: str
    tapped_at: datetime
    station: str
    line: str
    fare_yen: int | None
    fare_product: str


@dataclass(frozen=True)
class MonthlyRides:
    """`transit.monthly_rides`: how many rides began in a month (local time), and how many of
    them were complete (entry and exit); no times, stations, lines or fares."""

    month: str  # 2026-11
    rides: int
    complete_rides: int


def taps(records: Iterable[TapRecord]) -> tuple[Tap, ...]:
    """Every tap, ordered by time, then operator and tap id."""
    out = (
        Tap(
            operator=r.operator, tap_id=r.tap_id, card_last4=r.card_last4, tap_type=r.tap_type,
            tapped_at=r.tapped_at, station=r.station, line=r.line, fare_yen=r.fare_yen,
            fare_product=r.fare_product,
        )
        for r in records
    )  # fmt: skip
    return tuple(sorted(out, key=lambda t: (t.tapped_at, t.operator, t.tap_id)))


def rides(records: Iterable[TapRecord]) -> tuple[Ride, ...]:
    """`transit.rides`: the taps paired into rides by `bank.vault.rules.transit.pair_rides` (per
    card and operator, an entry and the next exit within three hours; every tap in one ride)."""
    return tuple(
        pair_rides(
            TapIn(
                operator=r.operator, tap_id=r.tap_id, card_number=r.card_last4,
                tap_type=r.tap_type, tapped_at=r.tapped_at, station=r.station, line=r.line,
                fare_yen=r.fare_yen, fare_product=r.fare_product,
            )
            for r in records
        )
    )  # fmt: skip


def monthly_rides(records: Iterable[TapRecord], *, zone: ZoneInfo) -> tuple[MonthlyRides, ...]:
    """Rides counted by the month, in `zone`, of their first tap; ordered by month."""
    counted: Counter[str] = Counter()
    complete: Counter[str] = Counter()
    for ride in rides(records):
        first = ride.entered_at or ride.exited_at
        assert first is not None  # a ride has at least one tap
        local = first.astimezone(zone)
        month = f"{local.year:04d}-{local.month:02d}"
        counted[month] += 1
        complete[month] += ride.complete
    return tuple(MonthlyRides(m, counted[m], complete[m]) for m in sorted(counted))
