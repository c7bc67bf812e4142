"""Rules for a specific health checkup (特定健診): validation, unit conversion and judgement.

Items, units, codes and judgement values come from the bundled reference (bank.reference). The
plausible ranges refuse what cannot be a measurement of someone walking into a screening (a unit
mix-up, a keying error, a forged push), never what is merely unhealthy: judging is `judge`'s job.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from bank.reference import CheckupItem, checkup_items
from bank.vault.rules import Refusal
from bank.vault.rules.judgement import URINE_LEVELS, finite

INSTITUTION_CODE = re.compile(r"[0-9]{10}")  # 医療機関コード (機関番号): ten digits
MEMBER_NUMBER = re.compile(r"[0-9A-Za-z-]{1,32}")
MAX_EXAM_ID = 64
OLDEST_EXAM_YEARS = 10  # insurers keep 特定健診 data five years; residents may bring older ones
SEXES = frozenset({"male", "female"})
# Spellings clinics use for the same results: minus sign, full-width hyphen, "+-", "1+".
URINE_ALIASES = {"\u2212": "-", "\uff0d": "-", "+-": "±", "1+": "+"}
URINE_UNITS = ("", "ordinal")  # besides the reference's own label; qualitative results carry none
BMI_TOLERANCE = 1.0  # kg/m2; a BMI from unrounded height and weight still falls well within
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


@dataclass(frozen=True)
class CheckupItemIn:
    item: str  # reference item code: height, weight, bmi, ..., urine_protein
    value: float | str = field(repr=False)  # a number, or for urine items one of URINE_LEVELS
    unit: str


@dataclass(frozen=True)
class CheckupIn:
    institution_code: str
    exam_id: str
    exam_date: date
    member_number: str = field(repr=False)  # personal: routes the record, is never stored in it
    sex: str  # male | female
    fasting: bool | None  # None: not recorded
    items: Sequence[CheckupItemIn]


@dataclass(frozen=True)
class NormalisedItem:
    item: str
    # In the reference unit, rounded as the standard reports; for urine items a level.
    value: float | str = field(repr=False)
    unit: str  # the reference unit
    jlac10: str
    loinc: str  # "" where the reference has none (urine)


@dataclass(frozen=True)
class NormalisedCheckup:
    institution_code: str
    exam_id: str
    exam_date: date
    sex: str
    fasting: bool | None
    items: tuple[NormalisedItem, ...]  # in the reference's item order


@dataclass(frozen=True)
class Unit:
    """A unit a clinic may send: reference value = sent value * scale + offset."""

    name: str  # compared case-insensitively
    scale: float = 1.0
    offset: float = 0.0

    def to_reference(self, value: float) -> float:
        return value * self.scale + self.offset

    def from_reference(self, value: float) -> float:
        return (value - self.offset) / self.scale


@dataclass(frozen=True)
class Measure:
    """A numeric item: plausible range and decimals in the reference unit, accepted units."""

    low: float
    high: float
    decimals: int  # as the standard's result format reports the item
    units: tuple[Unit, ...]  # the reference unit first


_MMHG = (Unit("mmHg"), Unit("mm[Hg]"))  # UCUM spells it mm[Hg]
_ENZYME = (Unit("U/L"), Unit("IU/L"), Unit("µkat/L", 60.0))  # 1 µkat/L = 60 U/L (Nordic labs)
_GLUCOSE = (Unit("mg/dL"), Unit("mmol/L", 18.016))  # glucose 180.16 g/mol
_CHOLESTEROL = (Unit("mg/dL"), Unit("mmol/L", 38.67))  # cholesterol 386.7 g/mol

MEASURES: Mapping[str, Measure] = {
    # Short-statured adults stand above 100 cm; the tallest living people are about 250 cm.
    "height": Measure(100, 250, 1, (Unit("cm"), Unit("m", 100.0))),
    # Below 20 kg no adult survives; clinic scales stop at 200-300 kg. Kilograms only.
    "weight": Measure(20, 300, 1, (Unit("kg"),)),
    # Starvation deaths occur around BMI 12-13; above 80 is beyond reported extremes.
    "bmi": Measure(10, 80, 1, (Unit("kg/m2"), Unit("kg/m²"))),
    # A tape at the navel of an adult reads at least 40 cm; 200 cm is the extreme of obesity.
    "waist": Measure(40, 200, 1, (Unit("cm"),)),
    # Below 60 mmHg is shock, not a screening; 300 is the top of a sphygmomanometer's scale.
    "sbp": Measure(60, 300, 0, _MMHG),
    # Below 30 the cuff cannot read it; above 200 is beyond hypertensive emergency.
    "dbp": Measure(30, 200, 0, _MMHG),
    # Hypobetalipoproteinaemia goes below 10 mg/dL, chylomicronaemia towards 10,000.
    "tg": Measure(5, 10_000, 0, (Unit("mg/dL"), Unit("mmol/L", 88.57))),
    # Tangier disease gives HDL near zero; CETP deficiency up to about 200.
    "hdl": Measure(1, 250, 0, _CHOLESTEROL),
    # PCSK9 inhibitors bring LDL below 10; homozygous FH reaches about 1,000.
    "ldl": Measure(1, 1000, 0, _CHOLESTEROL),
    # Assays read down to a few U/L; thousands mean acute liver failure, not a walk-in screening.
    "ast": Measure(1, 5000, 0, _ENZYME),
    "alt": Measure(1, 5000, 0, _ENZYME),
    # Cholestasis takes gamma-GT into the low thousands.
    "ggt": Measure(1, 5000, 0, _ENZYME),
    # Below 20 mg/dL one is unconscious; hyperosmolar states reach about 1,000.
    "fpg": Measure(20, 1000, 0, _GLUCOSE),
    # Haemolysis brings HbA1c near 3 %; assays report up to about 20 %. IFCC mmol/mol → NGSP %
    # by the master equation NGSP = 0.09148 * IFCC + 2.152.
    "hba1c": Measure(3.0, 20.0, 1, (Unit("%"), Unit("mmol/mol", 0.09148, 2.152))),
}


def validate_checkup(checkup: CheckupIn, *, today: date, path: str) -> list[Refusal]:
    """`today` is the city's local date. Refusals name the field and the accepted range only."""
    refusals: list[Refusal] = []
    if not INSTITUTION_CODE.fullmatch(checkup.institution_code):
        refusals.append(
            Refusal(f"{path}.institution_code", "institution_code must be exactly 10 digits.")
        )
    if not 1 <= len(checkup.exam_id) <= MAX_EXAM_ID or not set(checkup.exam_id) <= _PRINTABLE:
        refusals.append(
            Refusal(
                f"{path}.exam_id", f"exam_id must be 1 to {MAX_EXAM_ID} printable ASCII characters."
            )
        )
    if checkup.exam_date > today:
        refusals.append(Refusal(f"{path}.exam_date", "The exam date is in the future."))
    elif checkup.exam_date < _years_before(today, OLDEST_EXAM_YEARS):
        refusals.append(
            Refusal(
                f"{path}.exam_date",
                f"The exam date is more than {OLDEST_EXAM_YEARS} years ago.",
            )
        )
    if not MEMBER_NUMBER.fullmatch(checkup.member_number):
        refusals.append(
            Refusal(
                f"{path}.member_number",
                "member_number must be 1 to 32 letters, digits or hyphens.",
            )
        )
    if checkup.sex not in SEXES:
        refusals.append(Refusal(f"{path}.sex", "sex must be male or female."))
    refusals.extend(_items(checkup.items, f"{path}.items"))
    return refusals


def normalise(checkup: CheckupIn) -> NormalisedCheckup:
    """A valid checkup (no refusals) in the reference units, with each item's codes."""
    given = {entry.item: entry for entry in checkup.items}
    items: list[NormalisedItem] = []
    for reference in checkup_items():
        entry = given.get(reference.item)
        if entry is None:
            continue
        value = _normalised_value(entry)
        if value is None:
            raise ValueError(f"{reference.item} does not validate; normalise valid checkups only.")
        items.append(
            NormalisedItem(reference.item, value, reference.unit, reference.jlac10, reference.loinc)
        )
    return NormalisedCheckup(
        institution_code=checkup.institution_code,
        exam_id=checkup.exam_id,
        exam_date=checkup.exam_date,
        sex=checkup.sex,
        fasting=checkup.fasting,
        items=tuple(items),
    )


# --- items ----------------------------------------------------------------------------------


@functools.cache
def _reference() -> dict[str, CheckupItem]:
    return {item.item: item for item in checkup_items()}


def accepted_units(item: str) -> tuple[str, ...]:
    """The unit spellings accepted for an item, the reference unit first."""
    measure = MEASURES.get(item)
    if measure is not None:
        return tuple(unit.name for unit in measure.units)
    return (_reference()[item].unit, *URINE_UNITS)


def _items(items: Sequence[CheckupItemIn], path: str) -> list[Refusal]:
    known = _reference()
    if not 1 <= len(items) <= len(known):
        return [Refusal(path, f"items must have 1 to {len(known)} entries, each item once.")]
    refusals: list[Refusal] = []
    seen: set[str] = set()
    values: dict[str, float] = {}
    paths: dict[str, str] = {}
    for index, entry in enumerate(items):
        at = f"{path}[{index}]"
        if entry.item not in known:
            refusals.append(Refusal(f"{at}.item", f"item must be one of {', '.join(known)}."))
            continue
        if entry.item in seen:
            refusals.append(Refusal(f"{at}.item", f"{entry.item} may appear only once."))
            continue
        seen.add(entry.item)
        item_refusals = _item(entry, at)
        refusals.extend(item_refusals)
        value = _normalised_value(entry)
        if not item_refusals and isinstance(value, float):
            values[entry.item], paths[entry.item] = value, f"{at}.value"
    refusals.extend(_consistency(values, paths))
    return refusals


def _item(entry: CheckupItemIn, at: str) -> list[Refusal]:
    measure = MEASURES.get(entry.item)
    if measure is None:
        return _urine(entry, at)
    refusals: list[Refusal] = []
    unit = _unit(measure, entry.unit)
    if unit is None:
        names = ", ".join(u.name for u in measure.units)
        refusals.append(Refusal(f"{at}.unit", f"unit for {entry.item} must be one of {names}."))
    number = None if isinstance(entry.value, str) else finite(entry.value)
    if number is None:
        refusals.append(Refusal(f"{at}.value", f"{entry.item} must be a finite number."))
    elif unit is not None and not measure.low <= unit.to_reference(number) <= measure.high:
        refusals.append(Refusal(f"{at}.value", _range(entry.item, measure, unit)))
    return refusals


def _urine(entry: CheckupItemIn, at: str) -> list[Refusal]:
    refusals: list[Refusal] = []
    if entry.unit.strip().casefold() not in {u.casefold() for u in accepted_units(entry.item)}:
        refusals.append(
            Refusal(
                f"{at}.unit",
                f"unit for {entry.item} must be empty, ordinal or {_reference()[entry.item].unit}.",
            )
        )
    if _urine_level(entry.value) is None:
        refusals.append(
            Refusal(f"{at}.value", f"{entry.item} must be one of {', '.join(URINE_LEVELS)}.")
        )
    return refusals


def _consistency(values: Mapping[str, float], paths: Mapping[str, str]) -> list[Refusal]:
    refusals: list[Refusal] = []
    if "sbp" in values and "dbp" in values and not values["dbp"] < values["sbp"]:
        refusals.append(Refusal(paths["dbp"], "dbp must be lower than sbp."))
    if {"height", "weight", "bmi"} <= values.keys():
        computed = values["weight"] / (values["height"] / 100) ** 2
        if abs(values["bmi"] - computed) > BMI_TOLERANCE:
            refusals.append(
                Refusal(
                    paths["bmi"],
                    f"bmi must be within {BMI_TOLERANCE} kg/m2 of weight / height² "
                    "(kg and metres).",
                )
            )
    return refusals


def _range(item: str, measure: Measure, unit: Unit) -> str:
    low, high = (f"{bound:.{measure.decimals}f}" for bound in (measure.low, measure.high))
    reference = f"{low} to {high} {measure.units[0].name}"
    if unit.scale == 1.0 and unit.offset == 0.0:
        return f"{item} must be {reference}."
    # Stated inwards (low up, high down), so that a value at a stated bound is accepted.
    low = f"{_significant(unit.from_reference(measure.low), up=True):g}"
    high = f"{_significant(unit.from_reference(measure.high), up=False):g}"
    return f"{item} must be {low} to {high} {unit.name} ({reference})."


def _significant(value: float, *, up: bool, digits: int = 4) -> float:
    if value == 0:
        return 0.0
    factor = 10.0 ** (digits - 1 - math.floor(math.log10(abs(value))))
    scaled = round(value * factor, 6)  # no ulp may push an exact bound to the next digit
    return (math.ceil(scaled) if up else math.floor(scaled)) / factor


def _normalised_value(entry: CheckupItemIn) -> float | str | None:
    """The value in the reference unit, rounded; None when it does not convert or is invalid."""
    measure = MEASURES.get(entry.item)
    if measure is None:
        return _urine_level(entry.value)
    unit = _unit(measure, entry.unit)
    number = None if isinstance(entry.value, str) else finite(entry.value)
    if unit is None or number is None:
        return None
    converted = unit.to_reference(number)
    if not measure.low <= converted <= measure.high:
        return None
    return float(round(converted, measure.decimals))


def _unit(measure: Measure, name: str) -> Unit | None:
    wanted = name.strip().casefold()
    return next((unit for unit in measure.units if unit.name.casefold() == wanted), None)


def _urine_level(value: float | str) -> str | None:
    if not isinstance(value, str):
        return None
    level = URINE_ALIASES.get(value.strip(), value.strip())
    return level if level in URINE_LEVELS else None


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)
