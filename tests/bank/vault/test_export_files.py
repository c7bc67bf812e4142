"""The export's files as a person and a program open them (pure): CSV with a byte order mark and
bilingual headers that round-trip through Python's csv module, times in the one stated zone,
station, line, ward and checkup item names beside their codes."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank import reference
from bank.package import ExportContext
from bank.vault import export_files as files
from bank.vault.checkups import CheckupPayload, ItemPayload
from bank.vault.export_files import (
    CHECKUP_COLUMNS,
    HOURS,
    STEP_COLUMNS,
    TAP_COLUMNS,
    Column,
)
from bank.vault.representations.transit import Tap
from bank.vault.rules.transit import SUBWAY
from bank.vault.steps import StepPayload, StoredStepDay
from bank.vault.unreadable import Unreadable

TOKYO = ZoneInfo("Asia/Tokyo")
CONTEXT = ExportContext(zone=TOKYO, generated_at=datetime(2026, 11, 30, 23, 15, 7, tzinfo=UTC))
# What "ISO 8601 in the stated zone, to the second" looks like; nothing else that reads as a time.
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
TIME_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:")


# --- reading as a program would ------------------------------------------------------------------


def read_csv(content: bytes) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """The (English, Japanese) header pairs and the rows keyed by the English names, read as a
    program would: the byte order mark stripped, then Python's csv module."""
    assert content.startswith(codecs.BOM_UTF8)
    text = content.decode("utf-8-sig")
    assert not text.startswith("\ufeff")  # one mark, not two
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    names = [tuple(cell.split(files.HEADER_SEPARATOR)) for cell in header]
    assert all(len(name) == 2 for name in names), header
    pairs = [(english, japanese) for english, japanese in names]
    keys = [english for english, _ in pairs]
    return pairs, [dict(zip(keys, row, strict=True)) for row in reader]


def read_csv_by_japanese(content: bytes) -> list[dict[str, str]]:
    """The rows keyed by the Japanese half of each header: what a person's column names are."""
    reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    return [
        {key.split(files.HEADER_SEPARATOR)[1]: value for key, value in row.items()}
        for row in reader
    ]


def cell(value: object) -> str:
    """What a CSV cell holds for a JSON value: the text of it, empty for null."""
    return "" if value is None else str(value)


def assert_instant(text: str, zone: ZoneInfo = TOKYO) -> datetime:
    """`text` is a time by the export's rule: ISO 8601 to the second, in `zone`'s offset."""
    assert INSTANT.match(text), text
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == zone.utcoffset(parsed.replace(tzinfo=None)), text
    return parsed


def assert_times_follow_the_rule(value: object, zone: ZoneInfo = TOKYO) -> int:
    """Every string in `value` (JSON, or CSV rows) that reads as a time follows the rule, and
    every one that reads as a date is a plain ISO date; how many times there were."""
    found = 0
    if isinstance(value, dict):
        return sum(assert_times_follow_the_rule(v, zone) for v in value.values())
    if isinstance(value, list):
        return sum(assert_times_follow_the_rule(v, zone) for v in value)
    if isinstance(value, str) and TIME_LIKE.match(value):
        assert_instant(value, zone)
        found = 1
    elif isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        date.fromisoformat(value)
    return found


# --- strategies ----------------------------------------------------------------------------------

# Any text PostgreSQL and the input guards let in (no NUL, no lone surrogates), with the
# characters CSV must quote and Japanese text made likely.
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30),
    st.text(st.sampled_from(',"\r\n ;/ 日付駅名札幌=+-@\ufeff\t'), max_size=12),
)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5)), TOKYO])
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=ZONES
)
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1))
STATION_CODES = [s.code for s in reference.stations()]

STEP_DAYS = st.builds(
    StoredStepDay,
    day=DAYS,
    source=TEXT,
    payload=st.builds(
        StepPayload,
        steps=st.integers(0, 100_000),
        hourly=st.none() | st.tuples(*[st.integers(0, 20_000)] * 24),
        method=TEXT,
        device_id=st.none() | TEXT,
    ),
    revision=st.integers(1, 50),
)
TAPS = st.builds(
    Tap,
    operator=st.sampled_from([SUBWAY, "jotetsu-bus"]) | TEXT,
    tap_id=TEXT,
    card_last4=st.from_regex(r"\A[0-9]{4}\Z"),
    tap_type=st.sampled_from(["entry", "exit"]),
    tapped_at=MOMENTS,
    station=st.sampled_from(STATION_CODES) | TEXT,
    line=st.sampled_from(["N", "T", "H"]) | TEXT,
    fare_yen=st.none() | st.integers(0, 10_000),
    fare_product=TEXT,
)
ITEM_CODES = [item.item for item in reference.checkup_items()]
CHECKUPS = st.builds(
    CheckupPayload,
    institution_code=TEXT,
    exam_id=TEXT,
    exam_date=DAYS,
    insurer_number=st.from_regex(r"\A[0-9]{8}\Z"),
    sex=st.sampled_from(["male", "female"]),
    fasting=st.none() | st.booleans(),
    items=st.lists(
        st.builds(
            ItemPayload,
            item=st.sampled_from(ITEM_CODES) | TEXT,
            value=st.floats(0, 1000, allow_nan=False) | st.sampled_from(["(-)", "(+)", "(2+)"]),
            unit=TEXT,
            jlac10=TEXT,
            loinc=TEXT,
        ),
        max_size=4,
    ).map(tuple),
)


# --- CSV -----------------------------------------------------------------------------------------


@given(rows=st.lists(st.lists(st.none() | TEXT | st.integers(), min_size=3, max_size=3)))
def test_any_rows_round_trip_through_the_csv_module_under_bilingual_headers(
    rows: list[list[object]],
) -> None:
    columns = (Column("day", "日付"), Column("note", "メモ"), Column("count", "件数"))
    content = files.csv_file(columns, rows)
    header, read = read_csv(content)
    assert header == [("day", "日付"), ("note", "メモ"), ("count", "件数")]
    assert [list(row.values()) for row in read] == [[cell(v) for v in row] for row in rows]
    by_japanese = read_csv_by_japanese(content)
    assert [row["日付"] for row in by_japanese] == [row["day"] for row in read]
    assert content.decode("utf-8-sig").startswith("day / 日付,note / メモ,count / 件数\r\n")


def test_every_header_has_an_english_key_and_its_japanese_name() -> None:
    for columns in (STEP_COLUMNS, TAP_COLUMNS, CHECKUP_COLUMNS):
        keys = [column.key for column in columns]
        assert len(set(keys)) == len(keys)
        for column in columns:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", column.key)
            assert files.HEADER_SEPARATOR not in column.ja
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", column.ja), column  # Japanese


@given(days=st.lists(STEP_DAYS, max_size=5))
def test_steps_round_trip_csv_and_json_alike(days: list[StoredStepDay]) -> None:
    header, rows = read_csv(files.steps_csv(days))
    assert [english for english, _ in header] == [column.key for column in STEP_COLUMNS]
    assert header[-24:] == [(f"h{h:02d}", f"{h}時台の歩数") for h in range(24)]
    as_json = json.loads(files.json_file([files.step_fields(day) for day in days]))
    assert len(rows) == len(as_json) == len(days)
    for row, fields, day in zip(rows, as_json, days, strict=True):
        assert date.fromisoformat(row["day"]) == day.day
        assert int(row["steps"]) == fields["steps"] == day.payload.steps
        assert row["device_id"] == cell(day.payload.device_id) == cell(fields["device_id"])
        assert row["platform"] == fields["platform"] == day.source
        hourly = [row[column.key] for column in HOURS]
        if day.payload.hourly is None:
            assert hourly == [""] * 24
            assert fields["hourly"] is None
        else:
            assert [int(count) for count in hourly] == list(day.payload.hourly) == fields["hourly"]


@given(taps=st.lists(TAPS, max_size=5))
def test_taps_round_trip_with_names_beside_codes_and_times_in_the_zone(taps: list[Tap]) -> None:
    header, rows = read_csv(files.taps_csv(taps, CONTEXT))
    assert [english for english, _ in header] == [column.key for column in TAP_COLUMNS]
    as_json = json.loads(files.json_file([files.tap_fields(tap, CONTEXT) for tap in taps]))
    for row, fields, tap in zip(rows, as_json, taps, strict=True):
        assert row == {key: cell(value) for key, value in fields.items()}  # CSV and JSON agree
        tapped_at = assert_instant(row["tapped_at"])
        assert tapped_at == tap.tapped_at.replace(microsecond=0)  # the same instant, to the second
        station = reference.station(tap.station) if tap.operator == SUBWAY else None
        if station is None:
            assert fields["station_ja"] is fields["ward_code"] is fields["ward_en"] is None
        else:
            ward = reference.ward(station.ward_code)
            assert ward is not None
            assert (row["station"], row["station_ja"], row["station_en"]) == (
                station.code, station.name_ja, station.name_en,
            )  # fmt: skip
            assert (row["ward_code"], row["ward_ja"], row["ward_en"]) == (
                ward.code, ward.name_ja, ward.name_en,
            )  # fmt: skip


@given(exams=st.lists(CHECKUPS, max_size=3))
def test_checkups_round_trip_one_row_per_item_with_item_names(exams: list[CheckupPayload]) -> None:
    as_json = json.loads(files.json_file([files.checkup_fields(exam) for exam in exams]))
    header, rows = read_csv(files.checkups_csv([files.checkup_fields(exam) for exam in exams]))
    assert [english for english, _ in header] == [column.key for column in CHECKUP_COLUMNS]
    expected = [(exam, item) for exam in as_json for item in exam["items"]]
    assert len(rows) == len(expected)
    names = {item.item: item for item in reference.checkup_items()}
    for row, (exam, item) in zip(rows, expected, strict=True):
        assert row["exam_date"] == exam["exam_date"]
        assert row["item"] == item["item"]
        assert row["value"] == cell(item["value"])
        named = names.get(item["item"])
        assert row["item_ja"] == ("" if named is None else named.name_ja)
        assert row["item_en"] == ("" if named is None else named.name_en)


def test_every_subway_station_has_its_station_line_and_ward_names_in_both_languages() -> None:
    for station in reference.stations():
        tap = Tap(SUBWAY, "t", "0042", "entry", CONTEXT.generated_at, station.code,
                  station.code[0], 250, "stored_value")  # fmt: skip
        fields = files.tap_fields(tap, CONTEXT)
        ward = reference.ward(station.ward_code)
        assert ward is not None, station
        assert fields["station_ja"] == station.name_ja
        assert fields["station_en"] == station.name_en
        assert (fields["line_ja"], fields["line_en"]) == (station.line_ja, station.line_en)
        assert (fields["ward_ja"], fields["ward_en"]) == (ward.name_ja, ward.name_en)
        # Another operator's stop with the same id is not the subway's station.
        bus = files.tap_fields(dataclasses.replace(tap, operator="jotetsu-bus"), CONTEXT)
        assert bus["station"] == station.code
        assert bus["station_ja"] is bus["ward_ja"] is bus["line_ja"] is None


# --- times ---------------------------------------------------------------------------------------


@given(moment=MOMENTS, zone=st.sampled_from([TOKYO, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")]))
def test_an_instant_is_iso_8601_to_the_second_in_the_zone(moment: datetime, zone: ZoneInfo) -> None:
    context = ExportContext(zone=zone, generated_at=CONTEXT.generated_at)
    written = context.instant(moment)
    parsed = assert_instant(written, zone)
    assert parsed == moment.replace(microsecond=0)


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="aware"):
        CONTEXT.instant(datetime(2026, 11, 30, 8, 15))


def test_json_files_refuse_a_time_not_written_by_the_rule() -> None:
    with pytest.raises(TypeError):
        files.json_file({"at": CONTEXT.generated_at})


def test_the_readme_states_the_one_time_rule_and_the_csv_format() -> None:
    text = files.readme(CONTEXT, {"steps": []})
    assert "Made / 作成日時: 2026-12-01T08:15:07+09:00" in text
    assert "Every time is ISO 8601 in Asia/Tokyo time with its offset from UTC" in text
    assert "日時はすべて ISO 8601 形式の Asia/Tokyo の時刻" in text
    assert "calendar date in Asia/Tokyo: 2026-12-01" in text
    assert "UTF-8 with a byte order mark" in text
    assert '"day / 日付"' in text
    assert "none was left out" in text
    assert assert_times_follow_the_rule(re.findall(r"\d{4}-\d{2}-\d{2}T[\d:+]+", text)) >= 2
    left_out = {"steps": [Unreadable("steps", date(2026, 11, 3), "healthkit", 2)], "checkups": []}
    assert "1 stored record(s) do not open and were left out (steps 1)" in files.readme(
        CONTEXT, left_out
    )
