"""The city's reference tables (wards, subway stations, checkup items), bundled in the package.

Loaded once and cached; read-only. See bank/data/reference/README.md for where they come from.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Ward:
    code: str  # 全国地方公共団体コード, e.g. 01101
    name_ja: str
    name_en: str
    population: int


@dataclass(frozen=True)
class Station:
    code: str  # as signed in the station: N01, T09, H14
    line_ja: str
    line_en: str
    name_ja: str
    name_en: str
    ward_code: str


@dataclass(frozen=True)
class CheckupItem:
    item: str
    name_ja: str
    name_en: str
    unit: str
    jlac10: str
    loinc: str
    guidance_at: str  # as published, e.g. "85 (men) / 90 (women)"; parsed by the checkup rules
    referral_at: str
    direction: str  # high | low | "" (no judgement)


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("bank.data").joinpath("reference", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def wards() -> tuple[Ward, ...]:
    return tuple(
        Ward(r["municipality_code"], r["ward_ja"], r["ward_en"], int(r["population_2020_approx"]))
        for r in _rows("wards.csv")
    )


@functools.cache
def stations() -> tuple[Station, ...]:
    return tuple(
        Station(
            r["station_code"], r["line_ja"], r["line_en"], r["station_ja"], r["station_en"],
            r["ward_code"],
        )
        for r in _rows("subway_stations.csv")
    )  # fmt: skip


@functools.cache
def station_codes() -> frozenset[str]:
    return frozenset(s.code for s in stations())


@functools.cache
def checkup_items() -> tuple[CheckupItem, ...]:
    return tuple(
        CheckupItem(
            r["item"], r["name_ja"], r["name_en"], r["unit"], r["jlac10_verify"], r["loinc"],
            r["guidance_at"], r["referral_at"], r["direction"],
        )
        for r in _rows("checkup_items.csv")
    )  # fmt: skip


@functools.cache
def _stations_by_code() -> dict[str, Station]:
    return {s.code: s for s in stations()}


@functools.cache
def _wards_by_code() -> dict[str, Ward]:
    return {w.code: w for w in wards()}


def station(code: str) -> Station | None:
    """The subway station signed `code` (N07), or None for a code the reference lacks."""
    return _stations_by_code().get(code)


def ward(code: str) -> Ward | None:
    """The ward with municipality code `code` (01101), or None."""
    return _wards_by_code().get(code)
