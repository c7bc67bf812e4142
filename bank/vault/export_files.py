"""The export's files as a person opens them: CSV that Excel in Japan reads, JSON, one time rule.

- Times: ISO 8601 in the city's zone with the offset, to the second (`ExportContext.instant`);
  dates: calendar dates in that zone. `json_file` refuses anything else that is not JSON
  already, so no datetime reaches a file unformatted.
- CSV: UTF-8 with a byte order mark (Excel takes a CSV without one for Shift_JIS), CRLF line
  ends (RFC 4180), one header row whose cells name each column in English and Japanese,
  `day / 日付`: the part before " / " is the field's name in the JSON file of the same data.
- Codes have their names beside them: a subway station's code (N07) its station, line and ward
  names in Japanese and English, a checkup item's code its name in both.

Other packages' export hooks write their files with `csv_file` and `json_file` too.
"""

# ruff: noqa: RUF001 - Japanese text is written with full-width brackets, as Japanese readers expect

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bank import reference
from bank.package import ExportContext
from bank.vault.checkups import CheckupPayload
from bank.vault.representations.transit import TapRecord
from bank.vault.rules.transit import SUBWAY
from bank.vault.steps import StoredStepDay
from bank.vault.unreadable import Unreadable

BOM = "\ufeff"
HEADER_SEPARATOR = " / "


@dataclass(frozen=True)
class Column:
    key: str  # what a program reads: the JSON field holding the same value
    ja: str  # what a person in Japan reads

    @property
    def header(self) -> str:
        return f"{self.key}{HEADER_SEPARATOR}{self.ja}"


def csv_file(columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> bytes:
    """A CSV file: BOM, the bilingual header row, then the rows (None as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.header for column in columns])
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return (BOM + buffer.getvalue()).encode("utf-8")


def json_file(value: object) -> bytes:
    """A JSON file (UTF-8, no BOM: RFC 8259 forbids one); times must be strings already."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _row(columns: Sequence[Column], fields: Mapping[str, object]) -> list[object]:
    return [fields[column.key] for column in columns]


# --- steps ---------------------------------------------------------------------------------------

HOURS = tuple(Column(f"h{hour:02d}", f"{hour}時台の歩数") for hour in range(24))
STEP_COLUMNS = (
    Column("day", "日付"),
    Column("platform", "記録元"),
    Column("steps", "歩数"),
    Column("method", "計測方法"),
    Column("device_id", "端末ID"),
    Column("revision", "改訂番号"),
    *HOURS,
)


def step_fields(day: StoredStepDay) -> dict[str, Any]:
    """A day of steps as steps.json holds it (hourly counts as one list)."""
    payload = day.payload
    return {
        "day": day.day.isoformat(),
        "platform": day.source,
        "steps": payload.steps,
        "method": payload.method,
        "device_id": payload.device_id,
        "revision": day.revision,
        "hourly": None if payload.hourly is None else list(payload.hourly),
    }


def steps_csv(days: Iterable[StoredStepDay]) -> bytes:
    def row(day: StoredStepDay) -> list[object]:
        fields = step_fields(day)
        hourly = fields.pop("hourly") or [None] * len(HOURS)
        return [*_row(STEP_COLUMNS[: -len(HOURS)], fields), *hourly]

    return csv_file(STEP_COLUMNS, (row(day) for day in days))


# --- transit taps --------------------------------------------------------------------------------

TAP_COLUMNS = (
    Column("tapped_at", "日時"),
    Column("operator", "事業者"),
    Column("tap_id", "記録ID"),
    Column("card_last4", "カード番号下4桁"),
    Column("tap_type", "入場・出場"),
    Column("station", "駅番号"),
    Column("station_ja", "駅名"),
    Column("station_en", "駅名（英語）"),
    Column("ward_code", "区コード"),
    Column("ward_ja", "区名"),
    Column("ward_en", "区名（英語）"),
    Column("line", "路線記号"),
    Column("line_ja", "路線名"),
    Column("line_en", "路線名（英語）"),
    Column("fare_yen", "運賃（円）"),
    Column("fare_product", "運賃種別"),
)


@functools.cache
def _subway_lines() -> dict[str, tuple[str, str]]:
    return {s.code[0]: (s.line_ja, s.line_en) for s in reference.stations()}


def tap_fields(tap: TapRecord, context: ExportContext) -> dict[str, Any]:
    """A tap as transit_taps.json and .csv hold it: the subway's station codes with the station,
    ward and line names beside them; other operators' stops (GTFS ids) without names (None)."""
    station = reference.station(tap.station) if tap.operator == SUBWAY else None
    ward = None if station is None else reference.ward(station.ward_code)
    line = _subway_lines().get(tap.line) if tap.operator == SUBWAY else None
    return {
        "tapped_at": context.instant(tap.tapped_at),
        "operator": tap.operator,
        "tap_id": tap.tap_id,
        "card_last4": tap.card_last4,
        "tap_type": tap.tap_type,
        "station": tap.station,
        "station_ja": None if station is None else station.name_ja,
        "station_en": None if station is None else station.name_en,
        "ward_code": None if station is None else station.ward_code,
        "ward_ja": None if ward is None else ward.name_ja,
        "ward_en": None if ward is None else ward.name_en,
        "line": tap.line,
        "line_ja": None if line is None else line[0],
        "line_en": None if line is None else line[1],
        "fare_yen": tap.fare_yen,
        "fare_product": tap.fare_product,
    }


def taps_csv(taps: Iterable[TapRecord], context: ExportContext) -> bytes:
    return csv_file(TAP_COLUMNS, (_row(TAP_COLUMNS, tap_fields(tap, context)) for tap in taps))


# --- checkups ------------------------------------------------------------------------------------

CHECKUP_COLUMNS = (
    Column("exam_date", "受診日"),
    Column("institution_code", "医療機関コード"),
    Column("exam_id", "健診番号"),
    Column("item", "検査項目コード"),
    Column("item_ja", "検査項目"),
    Column("item_en", "検査項目（英語）"),
    Column("value", "結果"),
    Column("unit", "単位"),
    Column("jlac10", "JLAC10コード"),
    Column("loinc", "LOINCコード"),
)


@functools.cache
def _items() -> dict[str, reference.CheckupItem]:
    return {item.item: item for item in reference.checkup_items()}


def checkup_fields(exam: CheckupPayload) -> dict[str, Any]:
    """A checkup as checkups.json holds it: every item with its name in Japanese and English."""
    items = []
    for item in exam.items:
        named = _items().get(item.item)
        items.append(
            {
                "item": item.item,
                "item_ja": None if named is None else named.name_ja,
                "item_en": None if named is None else named.name_en,
                "value": item.value,
                "unit": item.unit,
                "jlac10": item.jlac10,
                "loinc": item.loinc,
            }
        )
    return {
        "institution_code": exam.institution_code,
        "exam_id": exam.exam_id,
        "exam_date": exam.exam_date.isoformat(),
        "insurer_number": exam.insurer_number,
        "sex": exam.sex,
        "fasting": exam.fasting,
        "items": items,
    }


def checkups_csv(exams: Iterable[dict[str, Any]]) -> bytes:
    """One row per item of each checkup as `checkup_fields` gave it."""
    return csv_file(
        CHECKUP_COLUMNS,
        (_row(CHECKUP_COLUMNS, {**exam, **item}) for exam in exams for item in exam["items"]),
    )


# --- the README ----------------------------------------------------------------------------------

_README = """\
Your data at the city information bank / 市情報銀行に預けたあなたのデータ

Made / 作成日時: {generated_at}

Files / ファイル
  account.json              your account (id, dates, language)
                            アカウント（ID、日時、表示言語）
  links.json                your linked transit cards and insurer memberships, numbers masked (a
                            link whose label does not open shows "unreadable": true and no number)
                            登録した交通系ICカードと保険の加入者情報（番号は一部のみ。表示できない
                            ものは "unreadable": true で番号なし）
  steps.json, steps.csv     daily steps by source platform (in the CSV, h00..h23 are the hours)
                            記録元ごとの1日の歩数（CSVの h00〜h23 は時間帯ごとの歩数）
  transit_taps.json, .csv   IC card taps sent by transit operators, station codes with the
                            station, line and ward names in Japanese and English
                            交通事業者から届いたICカードの入出場記録（駅番号に駅名・路線名・区名を
                            日本語と英語で併記）
  checkups.json, .csv       health checkup results, item codes with their names (the CSV has one
                            row per item)
                            健診結果（検査項目コードに項目名を併記。CSVは1項目1行）
  unreadable.json           how many stored records of each file were left out because they do not
                            open (tampered or moved; the bank's operators are alerted), and which
                            開けなかったため含めなかった記録の数と一覧（改ざんや移動によるもので、
                            銀行の運用担当者に通知されています）

Times and dates / 日時と日付
  Every time is ISO 8601 in {zone} time with its offset from UTC, to the second:
  {example}. Every date (a day of steps, an exam date, a day in
  unreadable.json) is a calendar date in {zone}: {example_date}.
  日時はすべて ISO 8601 形式の {zone} の時刻で、UTCからの時差を付けて秒まで記載しています
  （例: {example}）。日付（歩数の日、受診日など）はすべて {zone} の
  暦日です（例: {example_date}）。

CSV files / CSVファイル
  UTF-8 with a byte order mark, comma-separated, CRLF line ends, one header row. Each header
  names its column in English and Japanese, "day / 日付"; the English part, before " / ", is the
  name of the same field in the JSON file. Excel drops the leading zeros of number-like codes
  (a ward code 01101, card digits 0042) when a CSV is opened by double-clicking: to keep them,
  open it from Data > From Text/CSV and set those columns to Text. The JSON files keep them.
  UTF-8（BOM付き）、カンマ区切り、改行はCRLF、見出しは1行です。見出しは列名を英語と日本語で
  並べたもの（「day / 日付」）で、「 / 」より前の英語名は、JSONファイルの同じ項目の名前です。
  Excelでダブルクリックして開くと、先頭が0のコード（区コード 01101、カード番号の 0042 など）の
  0が消えます。残すには［データ］→［テキストまたはCSVから］で開き、その列を「文字列」に
  してください。JSONファイルでは常にそのまま残ります。

Consents and points will be added here when those services open.
同意とポイントは、それらのサービスの開始後にここに加わります。
"""


def readme(context: ExportContext, left_out: Mapping[str, Sequence[Unreadable]]) -> str:
    """README.txt: what each file holds, the time rule, how the CSV files are written, and how
    many records were left out."""
    generated_at = context.instant(context.generated_at)
    text = _README.format(
        generated_at=generated_at,
        zone=context.zone.key,
        example=generated_at,
        example_date=context.generated_at.astimezone(context.zone).date().isoformat(),
    )
    return text + _left_out_note(left_out)


def _left_out_note(left_out: Mapping[str, Sequence[Unreadable]]) -> str:
    counts = {name: len(records) for name, records in left_out.items() if records}
    if not counts:
        return (
            "\nEvery stored record opened: none was left out.\n"
            "保管している記録はすべて開けました。\n"
        )
    listed = ", ".join(f"{name} {count}" for name, count in counts.items())
    total = sum(counts.values())
    return (
        f"\n{total} stored record(s) do not open and were left out ({listed}): "
        f"see unreadable.json.\n開けなかった記録 {total} 件を含めていません（{listed}）。"
        "unreadable.json をご覧ください。\n"
    )


def unreadable_fields(left_out: Mapping[str, Sequence[Unreadable]]) -> dict[str, Any]:
    return {
        name: {
            "left_out": len(records),
            "records": [{"day": r.day.isoformat(), "key": r.row_key} for r in records],
        }
        for name, records in left_out.items()
    }
