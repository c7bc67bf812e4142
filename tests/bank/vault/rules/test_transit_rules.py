"""Transit rules (pure): every tap refusal, and pairing taps into rides."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from random import Random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bank.reference import stations
from bank.vault.rules import Refusal
from bank.vault.rules.transit import MAX_RIDE, Ride, TapIn, pair_rides, validate_tap

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=TOKYO)
PATH = "$.taps[0]"
CARD = "12345678901234567"
OTHER_CARD = "7654321098765432"
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + digit) for digit in range(10)))


def _tap(**fields: object) -> TapIn:
    base = TapIn(
        operator="sapporo-subway", tap_id="t1", card_number=CARD, tap_type="exit",
        tapped_at=NOW - timedelta(hours=1), station="N07", line="N", fare_yen=250,
        fare_product="stored_value",
    )  # fmt: skip
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def _bus(**fields: object) -> TapIn:
    return _tap(**{"operator": "jotetsu-bus", "station": "2_01", "line": "r10", **fields})


def _refusals(tap: TapIn) -> list[Refusal]:
    return validate_tap(tap, now=NOW, path=PATH)


def _fields(tap: TapIn) -> list[str]:
    return [refusal.field for refusal in _refusals(tap)]


# -- valid taps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tap",
    [
        _tap(),
        _tap(tap_type="entry", fare_yen=None),
        _tap(tap_type="entry", fare_yen=0),
        _tap(fare_product="commuter_pass", fare_yen=0),
        _tap(fare_product="commuter_pass", fare_yen=None),
        _tap(tap_type="entry", fare_product="commuter_pass", fare_yen=None),
        _tap(fare_yen=0),
        _tap(fare_yen=10_000),
        _tap(card_number="1234567890123456"),
        _tap(station="T19", line="T"),
        _tap(station="H01", line="H"),
        _tap(tapped_at=(NOW - timedelta(hours=1)).astimezone(UTC)),
        _bus(),
        _bus(station="sapporo:stop.1-A", line="ROUTE_10.x"),
        _tap(operator="jr", station="N07", line="N"),  # a GTFS id may look like a station code
    ],
)
def test_valid_taps_have_no_refusals(tap: TapIn) -> None:
    assert _refusals(tap) == []


def test_every_reference_station_is_valid_on_its_own_line() -> None:
    for station in stations():
        assert _refusals(_tap(station=station.code, line=station.code[0])) == []


# -- refusals ----------------------------------------------------------------------------------

OPERATOR_REASON = (
    "operator must be 2 to 40 lowercase letters, digits or hyphens, starting with a letter."
)


@pytest.mark.parametrize(
    "operator", ["", "s", "Sapporo-Subway", "sapporo/subway", "1bus", "-bus", "a" * 41, "バス"]
)
def test_operator_must_be_a_lowercase_slug(operator: str) -> None:
    tap = _tap(operator=operator, station="stop1", line="r1")
    assert _refusals(tap) == [Refusal(f"{PATH}.operator", OPERATOR_REASON)]


@pytest.mark.parametrize("operator", ["jr", "a" * 40, "sapporo-tram", "bus2"])
def test_operator_slugs_accepted(operator: str) -> None:
    assert _refusals(_tap(operator=operator, station="stop1", line="r1")) == []


@pytest.mark.parametrize("tap_id", ["", "x" * 65, "t\n1", "乗車1"])
def test_tap_id_must_be_1_to_64_printable_characters(tap_id: str) -> None:
    assert _refusals(_tap(tap_id=tap_id)) == [
        Refusal(f"{PATH}.tap_id", "tap_id must be 1 to 64 printable ASCII characters.")
    ]


@pytest.mark.parametrize(
    "card",
    [
        "123456789012345",  # 15
        "123456789012345678",  # 18
        "1234 5678 9012 3456",
        "1234-5678-9012-3456",
        "JE80123456789012",
        "12345678901234567".translate(FULL_WIDTH),
        "1234567890123456\n",
        "",
    ],
)
def test_card_number_must_be_16_or_17_digits(card: str) -> None:
    assert _refusals(_tap(card_number=card)) == [
        Refusal(f"{PATH}.card_number", "card_number must be 16 or 17 digits.")
    ]


@pytest.mark.parametrize("tap_type", ["", "in", "Entry", "single"])
def test_tap_type_must_be_entry_or_exit(tap_type: str) -> None:
    assert _refusals(_tap(tap_type=tap_type)) == [
        Refusal(f"{PATH}.tap_type", "tap_type must be entry or exit.")
    ]


def test_tapped_at_must_carry_an_offset() -> None:
    assert _refusals(_tap(tapped_at=datetime(2025, 6, 15, 11, 0))) == [
        Refusal(f"{PATH}.tapped_at", "tapped_at must carry a UTC offset (e.g. +09:00).")
    ]


def test_tapped_at_may_be_five_minutes_ahead_but_no_more() -> None:
    assert _refusals(_tap(tapped_at=NOW + timedelta(minutes=5))) == []
    assert _refusals(_tap(tapped_at=NOW + timedelta(minutes=5, microseconds=1))) == [
        Refusal(f"{PATH}.tapped_at", "tapped_at is more than 5 minutes in the future.")
    ]


def test_tapped_at_may_be_400_days_old_but_no_more() -> None:
    assert _refusals(_tap(tapped_at=NOW - timedelta(days=400))) == []
    assert _refusals(_tap(tapped_at=NOW - timedelta(days=400, microseconds=1))) == [
        Refusal(f"{PATH}.tapped_at", "tapped_at is more than 400 days ago.")
    ]


def test_the_future_is_judged_across_time_zones() -> None:
    ahead = (NOW + timedelta(minutes=6)).astimezone(UTC)
    assert _fields(_tap(tapped_at=ahead)) == [f"{PATH}.tapped_at"]


@pytest.mark.parametrize("station", ["N17", "N00", "n07", "X01", "T20", "H15", "", "N7"])
def test_subway_stations_must_be_reference_codes(station: str) -> None:
    assert _refusals(_tap(station=station, line=station[:1] or "N")) == [
        Refusal(
            f"{PATH}.station",
            "station must be a subway station code as signed (N01-N16, T01-T19, H01-H14).",
        )
    ]


@pytest.mark.parametrize(
    ("station", "line"), [("N07", "T"), ("T09", "N"), ("H08", ""), ("N07", "Namboku"), ("N07", "n")]
)
def test_subway_line_must_be_the_stations_line_letter(station: str, line: str) -> None:
    assert _refusals(_tap(station=station, line=line)) == [
        Refusal(f"{PATH}.line", "line must be the station's line letter (N, T or H).")
    ]


@pytest.mark.parametrize("stop", ["", "a" * 65, "stop 1", "停留所", "2/01", "a\n"])
def test_other_operators_stations_must_be_gtfs_stop_ids(stop: str) -> None:
    assert _refusals(_bus(station=stop)) == [
        Refusal(
            f"{PATH}.station",
            "station must be a GTFS stop_id of 1 to 64 letters, digits or _ . : -",
        )
    ]


@pytest.mark.parametrize("route", ["", "a" * 65, "route 10", "系統10"])
def test_other_operators_lines_must_be_gtfs_route_ids(route: str) -> None:
    assert _refusals(_bus(line=route)) == [
        Refusal(
            f"{PATH}.line", "line must be a GTFS route_id of 1 to 64 letters, digits or _ . : -"
        )
    ]


@pytest.mark.parametrize("product", ["", "pass", "Stored_Value", "ic"])
def test_fare_product_must_be_known(product: str) -> None:
    assert _refusals(_tap(fare_product=product)) == [
        Refusal(f"{PATH}.fare_product", "fare_product must be stored_value or commuter_pass.")
    ]


RANGE = "fare_yen must be a whole number from 0 to 10,000."


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"fare_yen": -1}, RANGE),
        ({"fare_yen": 10_001}, RANGE),
        ({"fare_yen": 10**30}, RANGE),
        ({"fare_yen": True}, RANGE),
        ({"fare_yen": 250.0}, RANGE),
        ({"tap_type": "entry", "fare_yen": 250}, "fare_yen must be absent or 0 on entry: "
         "the fare is charged on exit."),
        ({"tap_type": "entry", "fare_yen": 1, "fare_product": "commuter_pass"},
         "fare_yen must be absent or 0 on entry: the fare is charged on exit."),
        ({"fare_product": "commuter_pass", "fare_yen": 1},
         "fare_yen must be 0 on a commuter_pass ride."),
        ({"fare_yen": None}, "fare_yen is required on an exit paid from stored value."),
    ],
)  # fmt: skip
def test_fares_are_charged_on_exit_and_never_on_a_pass(
    fields: dict[str, object], reason: str
) -> None:
    assert _refusals(_tap(**fields)) == [Refusal(f"{PATH}.fare_yen", reason)]


def test_several_refusals_come_together_in_field_order() -> None:
    tap = TapIn(
        operator="X", tap_id="", card_number="1", tap_type="?", tapped_at=datetime(2025, 1, 1),
        station="", line="", fare_yen=-5, fare_product="",
    )  # fmt: skip
    assert [r.field.removeprefix(PATH) for r in _refusals(tap)] == [
        ".operator", ".tap_id", ".card_number", ".tap_type", ".tapped_at", ".station", ".line",
        ".fare_product", ".fare_yen",
    ]  # fmt: skip


def test_card_numbers_do_not_appear_in_repr() -> None:
    assert CARD not in repr(_tap())
    (ride,) = pair_rides([_tap()])
    assert CARD not in repr(ride)


# -- pairing -----------------------------------------------------------------------------------

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=TOKYO)


def _entry(tap_id: str, minute: float, **fields: object) -> TapIn:
    at = T0 + timedelta(minutes=minute)
    defaults = {"tap_type": "entry", "tapped_at": at, "station": "N16", "line": "N"}
    return _tap(tap_id=tap_id, **{**defaults, "fare_yen": None, **fields})


def _exit(tap_id: str, minute: float, **fields: object) -> TapIn:
    at = T0 + timedelta(minutes=minute)
    defaults = {"tap_type": "exit", "tapped_at": at, "station": "T09", "line": "T"}
    return _tap(tap_id=tap_id, **{**defaults, "fare_yen": 340, **fields})


def _ids(rides: list[Ride]) -> list[tuple[str | None, str | None]]:
    return [(ride.entry_tap_id, ride.exit_tap_id) for ride in rides]


def test_an_entry_and_its_exit_make_a_complete_ride() -> None:
    (ride,) = pair_rides([_exit("b", 27), _entry("a", 0)])
    assert ride == Ride(
        operator="sapporo-subway", card=CARD, entered_at=T0, exited_at=T0 + timedelta(minutes=27),
        from_station="N16", to_station="T09", line_from="N", line_to="T", fare_yen=340,
        fare_product="stored_value", complete=True, entry_tap_id="a", exit_tap_id="b",
    )  # fmt: skip
    assert ride.minutes == 27.0


def test_an_entry_without_an_exit_is_an_incomplete_ride() -> None:
    (ride,) = pair_rides([_entry("a", 0)])
    assert (ride.complete, ride.exited_at, ride.to_station, ride.line_to) == (
        False,
        None,
        None,
        None,
    )
    assert (ride.entered_at, ride.from_station, ride.fare_yen, ride.minutes) == (
        T0,
        "N16",
        None,
        None,
    )


def test_an_exit_without_an_entry_is_an_incomplete_ride() -> None:
    (ride,) = pair_rides([_exit("b", 5)])
    assert (ride.complete, ride.entered_at, ride.from_station, ride.line_from) == (
        False,
        None,
        None,
        None,
    )
    assert (ride.to_station, ride.fare_yen, ride.minutes) == ("T09", 340, None)


def test_two_entries_in_a_row_leave_the_first_incomplete() -> None:
    rides = pair_rides([_entry("a", 0), _entry("b", 10), _exit("c", 30)])
    assert _ids(rides) == [("a", None), ("b", "c")]
    assert [ride.complete for ride in rides] == [False, True]


def test_two_exits_in_a_row_leave_the_second_incomplete() -> None:
    rides = pair_rides([_entry("a", 0), _exit("b", 20), _exit("c", 30)])
    assert _ids(rides) == [("a", "b"), (None, "c")]


def test_a_ride_may_last_three_hours_but_no_longer() -> None:
    assert _ids(pair_rides([_entry("a", 0), _exit("b", 180)])) == [("a", "b")]
    late = _exit("b", 0, tapped_at=T0 + MAX_RIDE + timedelta(seconds=1))
    assert _ids(pair_rides([_entry("a", 0), late])) == [("a", None), (None, "b")]


def test_taps_on_different_operators_never_pair() -> None:
    bus_exit = _exit("b", 20, operator="jotetsu-bus", station="2_01", line="r10")
    rides = pair_rides([_entry("a", 0), bus_exit])
    assert _ids(rides) == [("a", None), (None, "b")]
    assert [ride.operator for ride in rides] == ["sapporo-subway", "jotetsu-bus"]


def test_a_transfer_is_two_rides_even_with_clocks_out_of_step() -> None:
    # The bus reader's clock runs a minute behind the subway's gates.
    taps = [
        _entry("s1", 0),
        _exit("s2", 20),
        _entry("b1", 19, operator="jotetsu-bus", station="2_01", line="r10"),
        _exit("b2", 45, operator="jotetsu-bus", station="7_02", line="r10", fare_yen=210),
    ]
    assert _ids(pair_rides(taps)) == [("s1", "s2"), ("b1", "b2")]


def test_an_exit_and_an_entry_at_the_same_instant_close_then_open() -> None:
    taps = [_entry("a", 0), _entry("c", 20), _exit("b", 20), _exit("d", 40)]
    assert _ids(pair_rides(taps)) == [("a", "b"), ("c", "d")]


def test_an_exit_at_the_entrys_instant_does_not_pair() -> None:
    # Ordered by first tap, then card, operator and tap id.
    assert _ids(pair_rides([_entry("a", 0), _exit("b", 0)])) == [("a", None), (None, "b")]


def test_cards_pair_separately() -> None:
    taps = [
        _entry("a", 0),
        _entry("x", 1, card_number=OTHER_CARD),
        _exit("b", 20),
        _exit("y", 21, card_number=OTHER_CARD),
    ]
    rides = pair_rides(taps)
    assert _ids(rides) == [("a", "b"), ("x", "y")]
    assert [ride.card for ride in rides] == [CARD, OTHER_CARD]


def test_a_commuter_pass_ride_costs_nothing() -> None:
    pass_ = {"fare_product": "commuter_pass"}
    (ride,) = pair_rides([_entry("a", 0, **pass_), _exit("b", 20, fare_yen=0, **pass_)])
    assert (ride.fare_yen, ride.fare_product) == (0, "commuter_pass")


def test_pairing_refuses_unvalidated_tap_types() -> None:
    with pytest.raises(ValueError, match="tap_type"):
        pair_rides([_tap(tap_type="single")])


def test_no_taps_no_rides() -> None:
    assert pair_rides([]) == []


# -- properties --------------------------------------------------------------------------------

texts = st.text(max_size=80)
any_taps = st.builds(
    TapIn,
    operator=st.one_of(st.sampled_from(["sapporo-subway", "jotetsu-bus"]), texts),
    tap_id=texts,
    card_number=st.one_of(st.from_regex(r"[0-9]{15,18}", fullmatch=True), texts),
    tap_type=st.one_of(st.sampled_from(["entry", "exit"]), texts),
    tapped_at=st.datetimes(timezones=st.sampled_from([TOKYO, UTC, None])),
    station=st.one_of(st.sampled_from(["N07", "T09", "H14", "2_01"]), texts),
    line=st.one_of(st.sampled_from(["N", "T", "H", "r10"]), texts),
    fare_yen=st.one_of(st.none(), st.integers(min_value=-(10**30), max_value=10**30)),
    fare_product=st.one_of(st.sampled_from(["stored_value", "commuter_pass"]), texts),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(any_taps)
def test_validate_never_raises_and_refuses_under_the_path(tap: TapIn) -> None:
    refusals = validate_tap(tap, now=NOW, path=PATH)
    assert all(isinstance(r, Refusal) and r.field.startswith(PATH) for r in refusals)


@given(any_taps, st.one_of(st.from_regex(r"[0-9]{8,20}", fullmatch=True), st.text(min_size=8)))
def test_refusals_never_echo_the_card_number(tap: TapIn, card: str) -> None:
    refusals = _refusals(dataclasses.replace(tap, card_number=card))
    assert not any(card in refusal.reason for refusal in refusals)


@given(st.integers(min_value=10_001, max_value=10**40) | st.integers(max_value=-1))
def test_refusals_never_echo_the_fare(fare: int) -> None:
    (refusal,) = _refusals(_tap(fare_yen=fare))
    assert str(fare) not in refusal.reason
    assert f"{fare:,}" not in refusal.reason


CARDS = ("1111111111111111", "22222222222222222")
OPERATORS = ("sapporo-subway", "jotetsu-bus")


@st.composite
def journeys(draw: st.DrawFn) -> list[TapIn]:
    """Taps of one resident: few cards and operators, minutes apart, so that they interleave,
    collide at one instant and sometimes lie more than three hours apart."""
    count = draw(st.integers(min_value=0, max_value=40))
    taps = []
    for index in range(count):
        operator = draw(st.sampled_from(OPERATORS))
        subway = operator == "sapporo-subway"
        tap_type = draw(st.sampled_from(["entry", "exit"]))
        taps.append(
            TapIn(
                operator=operator,
                tap_id=f"t{index}",
                card_number=draw(st.sampled_from(CARDS)),
                tap_type=tap_type,
                tapped_at=T0 + timedelta(minutes=draw(st.integers(0, 24 * 60)) // 15 * 15),
                station="N07" if subway else "2_01",
                line="N" if subway else "r10",
                fare_yen=None if tap_type == "entry" else draw(st.integers(0, 1000)),
                fare_product="stored_value",
            )
        )
    return taps


@settings(max_examples=300)
@given(journeys())
def test_pair_rides_uses_every_tap_once_and_pairs_only_within_operator_and_card(
    taps: list[TapIn],
) -> None:
    assert all(_refusals(tap) == [] for tap in taps)
    by_id = {tap.tap_id: tap for tap in taps}
    rides = pair_rides(taps)
    used = Counter(i for ride in rides for i in (ride.entry_tap_id, ride.exit_tap_id) if i)
    assert used == Counter(tap.tap_id for tap in taps)  # tap ids are unique here
    for ride in rides:
        assert ride.complete == (ride.entry_tap_id is not None and ride.exit_tap_id is not None)
        if ride.entry_tap_id is not None:
            assert by_id[ride.entry_tap_id].tap_type == "entry"
        if ride.exit_tap_id is not None:
            assert by_id[ride.exit_tap_id].tap_type == "exit"
        if not ride.complete:
            continue
        assert ride.entry_tap_id is not None
        assert ride.exit_tap_id is not None
        entry, exit_ = by_id[ride.entry_tap_id], by_id[ride.exit_tap_id]
        assert entry.operator == exit_.operator == ride.operator
        assert entry.card_number == exit_.card_number == ride.card
        assert ride.entered_at is not None
        assert ride.exited_at is not None
        assert timedelta(0) < ride.exited_at - ride.entered_at <= MAX_RIDE
        assert ride.minutes is not None
        assert 0 < ride.minutes <= 180


@given(journeys(), st.randoms(use_true_random=False))
def test_pair_rides_does_not_depend_on_the_order_taps_arrive_in(
    taps: list[TapIn], rnd: Random
) -> None:
    shuffled = list(taps)
    rnd.shuffle(shuffled)
    assert pair_rides(shuffled) == pair_rides(taps)


def _next(tap: TapIn, taps: list[TapIn]) -> TapIn | None:
    """The tap after `tap` on its card and operator: by time, an exit before an entry at one
    instant, then by tap id."""
    group = sorted(
        (t for t in taps if (t.card_number, t.operator) == (tap.card_number, tap.operator)),
        key=lambda t: (t.tapped_at, t.tap_type != "exit", t.tap_id),
    )
    position = group.index(tap)
    return group[position + 1] if position + 1 < len(group) else None


@given(journeys())
def test_an_entry_stays_incomplete_only_when_no_exit_follows_within_three_hours(
    taps: list[TapIn],
) -> None:
    by_id = {tap.tap_id: tap for tap in taps}
    for ride in pair_rides(taps):
        if ride.complete or ride.entry_tap_id is None:
            continue
        entry = by_id[ride.entry_tap_id]
        after = _next(entry, taps)
        assert (
            after is None
            or after.tap_type == "entry"
            or after.tapped_at - entry.tapped_at > MAX_RIDE
        )
